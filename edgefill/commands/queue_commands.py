"""The commands that work on the queues: ``prewarm`` and ``backfill`` (send validated v1
messages), ``status`` (depth of each queue and DLQ) and ``redrive`` (DLQ → queue).

They import neither moto, the lab's servers nor the warm engine."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from typing import Any

from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from edgefill import operations
from edgefill.commands import aws_flags, sizing
from edgefill.console import EXIT_FAILED, EXIT_OK, err, out, print_note
from edgefill.operations import OperatorError
from edgefill.prewarm_hosts import check_prewarm_host, stack_allowed_hosts
from edgefill.stack import read_stack
from shared.dead_letters import NO_REASON
from shared.messages import ENCODINGS
from shared.queues import MAX_BATCH, SendReport, send_messages


def register(commands: Any) -> None:
    aws = aws_flags.parent()
    prewarm = commands.add_parser(
        "prewarm",
        parents=[aws],
        help="queue prewarm messages for paths",
        description="Queue prewarm messages: the prewarm worker warms each path at each "
        "target's edge for each encoding.",
    )
    add_paths(prewarm)
    prewarm.add_argument(
        "--targets", action="append", help="regions or POP codes, comma-separated (repeatable)"
    )
    prewarm.add_argument(
        "--encodings", action="append", help=f"comma-separated, from {', '.join(ENCODINGS)}"
    )
    prewarm.add_argument("--host", help="viewer Host to warm (default: the worker's)")
    prewarm.add_argument(
        "--paths-per-message", type=int, default=operations.DEFAULT_PATHS_PER_MESSAGE
    )
    prewarm.add_argument("--dry-run", action="store_true", help="print the messages, send none")
    sizing.add_cap_flags(prewarm, with_stack=False)
    prewarm.add_argument(
        "--expand",
        action="store_true",
        help="playlists and manifests (HLS, DASH) also warm what they reference",
    )
    prewarm.set_defaults(run=run_prewarm)

    backfill = commands.add_parser(
        "backfill",
        parents=[aws],
        help="queue backfill messages for paths",
        description="Queue backfill messages: the backfill worker copies each path from the "
        "full origin into the regional bucket.",
    )
    add_paths(backfill)
    backfill.add_argument("--host", help="viewer Host recorded in the messages")
    backfill.add_argument("--dry-run", action="store_true", help="print the messages, send none")
    backfill.set_defaults(run=run_backfill)

    status = commands.add_parser(
        "status",
        parents=[aws],
        help="depth of each queue and DLQ",
        description="Visible, in-flight and delayed messages and the oldest message's age "
        "for each queue and dead-letter queue.",
    )
    status.add_argument("--json", action="store_true", help="print JSON instead of a table")
    status.set_defaults(run=run_status)

    redrive = commands.add_parser(
        "redrive",
        parents=[aws],
        help="move DLQ messages back to their queue",
        description="Count a dead-letter queue's messages by reason (the edgefill-refusal "
        "attribute a worker sets when it refuses a message for good), then move them back to "
        "the source queue (an SQS message move task).",
    )
    redrive.add_argument("--queue", choices=("backfill", "prewarm", "both"), default="both")
    redrive.add_argument("--wait", action="store_true", help="wait until the move task ends")
    redrive.add_argument("--dry-run", action="store_true", help="count the reasons, move nothing")
    redrive.set_defaults(run=run_redrive)


def add_paths(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="*", metavar="PATH", help="URI path, e.g. /img/a.jpg")
    parser.add_argument("--paths-file", help="file with one path a line (# comments allowed)")


# ---- sending ------------------------------------------------------------------------
def send_with_progress(sqs: Any, url: str, bodies: list[str], what: str) -> SendReport:
    """``send_messages`` ten at a time under a progress bar; failures keep their index."""
    total = SendReport()
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as progress:
        task = progress.add_task(f"sending {what}", total=len(bodies))
        for start in range(0, len(bodies), MAX_BATCH):
            report = send_messages(sqs, url, bodies[start : start + MAX_BATCH])
            total.sent += report.sent
            total.failed.extend(
                (start + index, code, reason) for index, code, reason in report.failed
            )
            progress.advance(task, min(MAX_BATCH, len(bodies) - start))
    return total


def _print_send_summary(
    what: str, url: str, bodies: list[str], report: SendReport, paths: int
) -> int:
    table = Table(title=escape(f"{what} messages → {url}"))
    for column in ("messages", "paths", "sent", "failed"):
        table.add_column(column, justify="right")
    table.add_row(str(len(bodies)), str(paths), str(report.sent), str(len(report.failed)))
    out.print(table)
    for index, code, reason in report.failed:
        err.print(f"[red]message {index + 1} not sent:[/red] {escape(f'{code}: {reason}')}")
    return EXIT_OK if report.ok else EXIT_FAILED


def _send_or_print(args: argparse.Namespace, role: str, bodies: list[str], paths: int) -> int:
    """Print the messages (``--dry-run``) or send them to the ``role`` queue with a summary."""
    if args.dry_run:
        for body in bodies:
            out.print(body, markup=False)
        err.print(f"dry run: {len(bodies)} {role} messages for {paths} paths, none sent")
        return EXIT_OK
    _, sqs, urls = aws_flags.resolve_queues(args)
    url = urls.require(role)
    report = send_with_progress(sqs, url, bodies, f"{role} messages")
    return _print_send_summary(role, url, bodies, report, paths)


def run_prewarm(args: argparse.Namespace) -> int:
    paths = operations.read_paths(args.paths, args.paths_file)
    bodies = operations.prewarm_bodies(
        paths,
        operations.split_list(args.targets),
        operations.split_list(args.encodings),
        args.host,
        args.paths_per_message,
        expand=args.expand,
    )
    refused = sizing.refuse_over_caps(
        args,
        [operations.as_uri(where, path) for where, path in paths],
        operations.split_list(args.targets) or [],
        operations.split_list(args.encodings) or [],
        [len(body.encode()) for body in bodies],
    )
    if refused is not None:
        return refused
    if args.host:
        _check_host(args)
    return _send_or_print(args, "prewarm", bodies, len(paths))


def _check_host(args: argparse.Namespace) -> None:
    """The worker's host rule, before anything is sent: against the stack's allowed hosts
    with ``--stack``; without it the CLI cannot know them and says so."""
    if not args.stack:
        if not args.dry_run:
            print_note(
                "--host is checked by the prewarm worker only (pass --stack to check it here): "
                "it must be the viewer host, the distribution domain or an allowed alias"
            )
        return
    session = operations.aws_session(args.region)
    cloudformation = operations.make_client(session, "cloudformation", args.endpoint_url)
    stack = read_stack(cloudformation, args.stack)
    check_prewarm_host(args.host, stack_allowed_hosts(stack), args.stack)


def run_backfill(args: argparse.Namespace) -> int:
    paths = operations.read_paths(args.paths, args.paths_file)
    bodies = operations.backfill_bodies(paths, args.host)
    return _send_or_print(args, "backfill", bodies, len(paths))


# ---- status and redrive -------------------------------------------------------------
def run_status(args: argparse.Namespace) -> int:
    session, sqs, urls = aws_flags.resolve_queues(args)
    cloudwatch = operations.make_client(session, "cloudwatch", args.endpoint_url)
    roles = [
        (role, getattr(urls, role.replace("-", "_")))
        for role in ("backfill", "backfill-dlq", "prewarm", "prewarm-dlq")
    ]
    known = [(role, url) for role, url in roles if url]
    if not known:
        raise OperatorError("no queue URLs: pass --stack NAME or --*-queue-url / --*-dlq-url")
    depths = [operations.queue_depth(sqs, cloudwatch, role, url) for role, url in known]
    dashboard = _dashboard_url(session, args)
    if args.json:
        out.print(json.dumps([asdict(depth) for depth in depths], indent=2), markup=False)
        if dashboard:
            err.print(f"dashboard: {dashboard}", markup=False)
        return EXIT_OK
    table = Table(title="edgefill queues")
    for column in ("queue", "visible", "in flight", "delayed", "oldest (s)"):
        table.add_column(column, justify="left" if column == "queue" else "right")
    for depth in depths:
        age = "—" if depth.oldest_age_seconds is None else f"{depth.oldest_age_seconds:.0f}"
        style = "red" if depth.role.endswith("dlq") and depth.visible else None
        table.add_row(
            depth.role,
            str(depth.visible),
            str(depth.in_flight),
            str(depth.delayed),
            age,
            style=style,
        )
    out.print(table)
    err.print("oldest: CloudWatch ApproximateAgeOfOldestMessage (— when it has no datapoint)")
    if dashboard:
        out.print(f"dashboard: {dashboard}", markup=False)
    return EXIT_OK


def _dashboard_url(session: Any, args: argparse.Namespace) -> str | None:
    """The stack's ``DashboardUrl`` output (``--stack`` only); a note when it has none."""
    if not args.stack:
        return None
    cloudformation = operations.make_client(session, "cloudformation", args.endpoint_url)
    url = read_stack(cloudformation, args.stack).output("DashboardUrl")
    if url is None:
        print_note(f"stack {args.stack!r} has no DashboardUrl output (deployed before it?)")
    return url


def run_redrive(args: argparse.Namespace) -> int:
    _, sqs, urls = aws_flags.resolve_queues(args)
    roles = ("backfill", "prewarm") if args.queue == "both" else (args.queue,)
    lab = args.endpoint_url is not None
    for role in roles:
        dlq, destination = urls.require(f"{role}-dlq"), urls.require(role)
        reasons = operations.dead_letter_reasons(sqs, dlq)
        _print_reasons(role, reasons)
        if args.dry_run or not (reasons.read or reasons.approximate):
            continue
        result = operations.redrive(sqs, dlq, destination, lab_fallback=lab, log=print_note)
        if result.task_handle:
            out.print(f"{role}: move task started ({result.task_handle})", markup=False)
            if args.wait:
                task = operations.wait_for_move_task(sqs, dlq)
                out.print(
                    f"{role}: move task {task.get('Status')}, "
                    f"{task.get('ApproximateNumberOfMessagesMoved', 0)} messages moved",
                    markup=False,
                )
                if task.get("Status") != "COMPLETED":
                    return EXIT_FAILED
        else:
            out.print(f"{role}: {result.moved} messages moved back ({result.method})")
    return EXIT_OK


def _print_reasons(role: str, reasons: operations.DeadLetterReasons) -> None:
    """The DLQ's messages by reason, before anything moves."""
    if not reasons.read:
        empty = not reasons.approximate
        out.print(
            f"{role}: the DLQ is empty, nothing to move"
            if empty
            else f"{role}: no message could be read (about {reasons.approximate}, in flight?)",
            markup=False,
        )
        return
    table = Table(title=escape(f"{role} DLQ by reason"))
    table.add_column("reason")
    table.add_column("messages", justify="right")
    for reason, count in reasons.counts.most_common():
        table.add_row(escape(reason), str(count))
    out.print(table)
    if reasons.sampled:
        print_note(
            f"{role}: counted {reasons.read} of about {reasons.approximate} messages "
            "(a sample: SQS cannot list a queue)"
        )
    if any(reason != NO_REASON for reason in reasons.counts):
        print_note(
            "refused messages come back refused unless their cause was fixed (the sender, "
            "the configuration); docs/BACKFILL.md and docs/PREWARM.md list each reason"
        )
