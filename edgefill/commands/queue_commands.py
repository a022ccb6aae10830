"""The commands that work on the queues: ``prewarm`` and ``backfill`` (send validated v1
messages), ``status`` (depth of each queue and DLQ) and ``redrive`` (DLQ → queue).

They import neither moto, the lab's servers nor the warm engine; rich's bars and tables and
the worker's host rules (its settings model) only where a command uses them, as the parser
is built at every start of the CLI."""

from __future__ import annotations

import argparse
import json
import os
import threading
from dataclasses import dataclass, field
from typing import Any, Final

from edgefill import console, operations
from edgefill.commands import aws_flags, sizing, values
from edgefill.commands.path_flags import add_paths, add_skip_sent
from edgefill.console import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    err,
    escape,
    out,
    print_note,
)
from edgefill.interrupts import abandon, report_stopped, run_stoppable
from edgefill.operations import OperatorError
from edgefill.sent_journal import SentJournal, message_paths

SHOWN_NOT_SENT: Final = 10  # paths listed one by one; --json lists every one


def register(commands: Any) -> None:
    aws = aws_flags.parent()
    prewarm = commands.add_parser(
        "prewarm",
        parents=[aws],
        help="queue prewarm messages for paths",
        description="Queue prewarm messages: the prewarm worker warms each path at each "
        "target's edge for each encoding. Ctrl-C stops sending at once and reports which "
        "messages were sent (exit 130); --skip-sent FILE makes a rerun send only the rest.",
    )
    add_paths(prewarm)
    prewarm.add_argument(
        "--targets", action="append", help="regions or POP codes, comma-separated (repeatable)"
    )
    prewarm.add_argument(
        "--encodings", action="append", help=f"comma-separated, from {', '.join(values.ENCODINGS)}"
    )
    prewarm.add_argument(
        "--host", type=values.host, help="viewer Host to warm (default: the worker's)"
    )
    prewarm.add_argument(
        "--paths-per-message",
        type=values.whole(1, values.MAX_PATHS, "a number of paths"),
        default=operations.DEFAULT_PATHS_PER_MESSAGE,
        metavar="N",
    )
    prewarm.add_argument("--dry-run", action="store_true", help="print the messages, send none")
    add_skip_sent(prewarm)
    prewarm.add_argument("--json", action="store_true", help="print the report as JSON")
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
        "full origin into the regional bucket. Ctrl-C stops sending at once (exit 130).",
    )
    add_paths(backfill)
    backfill.add_argument("--host", type=values.host, help="viewer Host recorded in the messages")
    backfill.add_argument("--dry-run", action="store_true", help="print the messages, send none")
    add_skip_sent(backfill)
    backfill.add_argument("--json", action="store_true", help="print the report as JSON")
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
    redrive.add_argument("--json", action="store_true", help="print JSON instead of tables")
    redrive.set_defaults(run=run_redrive)


# ---- sending ------------------------------------------------------------------------
@dataclass
class SendOutcome:
    """What a stoppable send did, message by message (indices into the bodies)."""

    messages: int
    sent: list[int] = field(default_factory=list)
    failed: list[tuple[int, str, str]] = field(default_factory=list)
    in_flight: list[int] = field(default_factory=list)  # a batch not answered when stopped
    interrupted: bool = False
    finished: bool = True  # False: a batch was still in flight after the grace

    def not_sent(self) -> list[int]:
        """Messages certainly not on the queue: failed, or never tried."""
        done = set(self.sent) | set(self.in_flight)
        return [index for index in range(self.messages) if index not in done]


def send_stoppable(
    sqs: Any, url: str, bodies: list[str], what: str, journal: SentJournal | None = None
) -> SendOutcome:
    """``send_messages`` ten at a time under a progress bar, until done or Ctrl-C (then no
    new batch starts; the one in flight gets the grace of ``edgefill.interrupts``). Each
    batch's accepted paths go to ``journal`` before the next batch starts."""
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn

    from shared.queues import MAX_BATCH, send_messages

    outcome = SendOutcome(len(bodies))
    lock = threading.Lock()
    stop = threading.Event()

    def work() -> None:
        for start in range(0, len(bodies), MAX_BATCH):
            if stop.is_set():
                return
            batch = list(range(start, min(start + MAX_BATCH, len(bodies))))
            with lock:
                outcome.in_flight = batch
            report = send_messages(sqs, url, bodies[start : start + MAX_BATCH])
            refused = {start + index for index, _, _ in report.failed}
            accepted = [index for index in batch if index not in refused]
            if journal is not None:
                journal.record(path for index in accepted for path in message_paths(bodies[index]))
            with lock:
                outcome.sent += accepted
                outcome.failed += [(start + i, code, reason) for i, code, reason in report.failed]
                outcome.in_flight = []
            progress.advance(task, len(batch))

    with console.progress_bar(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    ) as progress:
        task = progress.add_task(f"sending {what}", total=len(bodies))
        stopped = run_stoppable(work, stop)
    with lock:  # a copy: a batch still in flight must not change the report being printed
        return SendOutcome(
            outcome.messages,
            list(outcome.sent),
            list(outcome.failed),
            list(outcome.in_flight),
            interrupted=stopped.interrupted,
            finished=stopped.finished,
        )


def send_report(
    what: str, url: str, bodies: list[str], outcome: SendOutcome, as_json: bool, journal: str | None
) -> int:
    """The report of a send (table or JSON); the exit code (130 when interrupted)."""
    paths = [message_paths(body) for body in bodies]
    total_paths = sum(len(p) for p in paths)
    not_sent = [path for index in outcome.not_sent() for path in paths[index]]
    in_flight = [path for index in outcome.in_flight for path in paths[index]]
    if as_json:
        out.print(json.dumps(send_document(url, bodies, outcome), indent=2), markup=False)
    else:
        _print_send_table(what, url, bodies, outcome, total_paths)
        if not_sent or in_flight:
            _print_not_sent(not_sent, in_flight, journal)
    if outcome.interrupted:
        sent_paths = sum(len(paths[index]) for index in outcome.sent)
        of_paths = f" ({console.count(sent_paths)} of {console.count(total_paths)} paths)"
        report_stopped(
            len(outcome.sent), len(bodies), f"{what} messages sent", len(outcome.failed), of_paths
        )
        return EXIT_INTERRUPTED
    return EXIT_OK if not outcome.failed else EXIT_FAILED


def send_document(url: str, bodies: list[str], outcome: SendOutcome) -> dict[str, Any]:
    """The JSON report of one send."""
    paths = [message_paths(body) for body in bodies]
    return {
        "queue": url,
        "messages": len(bodies),
        "paths": sum(len(p) for p in paths),
        "sent": len(outcome.sent),
        "failed": len(outcome.failed),
        "inFlight": len(outcome.in_flight),
        "interrupted": outcome.interrupted,
        "failures": [
            {"message": index + 1, "code": code, "reason": reason}
            for index, code, reason in outcome.failed
        ],
        "notSentPaths": [path for index in outcome.not_sent() for path in paths[index]],
        "inFlightPaths": [path for index in outcome.in_flight for path in paths[index]],
    }


def _print_send_table(
    what: str, url: str, bodies: list[str], outcome: SendOutcome, paths: int
) -> None:
    from rich.table import Table

    table = Table(title=escape(f"{what} messages → {url}"))
    for column in ("messages", "paths", "sent", "failed"):
        table.add_column(column, justify="right")
    table.add_row(
        console.count(len(bodies)),
        console.count(paths),
        console.count(len(outcome.sent)),
        console.count(len(outcome.failed)),
    )
    out.print(table)
    for index, code, reason in outcome.failed:
        err.print(f"[red]message {index + 1} not sent:[/red] {escape(f'{code}: {reason}')}")


def _print_not_sent(not_sent: list[str], in_flight: list[str], journal: str | None) -> None:
    """Which paths are not on the queue, so that a rerun can send them."""
    for path in not_sent[:SHOWN_NOT_SENT]:
        err.print(f"not sent: {path}", markup=False)
    if len(not_sent) > SHOWN_NOT_SENT:
        err.print(
            f"… and {console.count(len(not_sent) - SHOWN_NOT_SENT)} more (--json lists them all)"
        )
    for path in in_flight[:SHOWN_NOT_SENT]:
        err.print(f"unknown (its batch was in flight): {path}", markup=False)
    if journal:
        err.print(f"sent paths are listed in {journal}: the same command again sends the rest")
    else:
        err.print("--skip-sent FILE records what is sent, so that a rerun sends only the rest")


def send_or_print(
    args: argparse.Namespace,
    role: str,
    bodies: list[str],
    paths: int,
    what: str | None = None,
    per_region: dict[str, list[str]] | None = None,
) -> int:
    """Print the messages (``--dry-run``) or send them to the ``role`` queue of each
    region the command works in (``per_region``: other bodies for some regions; a region
    it leaves out gets none), then report: by region with ``--stack`` on an edge stack."""
    what = what or role
    if args.dry_run:
        return _print_dry_run(args, bodies, paths, what)
    queues = aws_flags.regional_queues(args)
    grouped = aws_flags.keyed_by_region(args)
    journal = SentJournal(args.skip_sent) if args.skip_sent else None
    code = EXIT_OK
    documents: dict[str, Any] = {}
    for region, _, sqs, urls in queues:
        sending = bodies if per_region is None or region is None else per_region.get(region, [])
        if not sending:
            continue
        url = _require(args, region, urls, role)
        if grouped and not args.json:
            out.print(f"[bold]region {escape(str(region))}[/bold]")
        outcome = send_stoppable(sqs, url, sending, what, journal)
        if grouped and args.json:
            documents[str(region)] = send_document(url, sending, outcome)
            region_code = _send_code(outcome)
            if outcome.interrupted:
                report_stopped(len(outcome.sent), len(sending), f"{what} messages sent")
        else:
            region_code = send_report(what, url, sending, outcome, args.json, args.skip_sent)
        code = max(code, region_code) if region_code != EXIT_INTERRUPTED else region_code
        if not outcome.finished:
            if documents:
                out.print(json.dumps(documents, indent=2), markup=False)
            abandon(code)  # a batch is still in flight: its thread is not waited for
        if outcome.interrupted:
            break
    if grouped and args.json:
        out.print(json.dumps(documents, indent=2), markup=False)
    return code


def _require(args: argparse.Namespace, region: str | None, urls: Any, role: str) -> str:
    """The ``role`` queue's URL; without it, exit 2 naming the stack output it lacks."""
    if args.stack and region is not None and not getattr(urls, role.replace("-", "_")):
        found = aws_flags.deployment(args)
        name = found.edge.name if found.single_stack else found.regional_name
        output = operations.STACK_OUTPUTS[role]
        raise OperatorError(f"stack {name!r} in {region} has no {output} output")
    return str(urls.require(role))


def _print_dry_run(args: argparse.Namespace, bodies: list[str], paths: int, what: str) -> int:
    if args.json:
        documents = [json.loads(body) for body in bodies]
        out.print(json.dumps({"dryRun": True, "messages": documents}, indent=2), markup=False)
    else:
        for body in bodies:
            out.print(body, markup=False)
    err.print(f"dry run: {len(bodies)} {what} messages for {paths} paths, none sent")
    return EXIT_OK


def _send_code(outcome: SendOutcome) -> int:
    if outcome.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_OK if not outcome.failed else EXIT_FAILED


def route_targets(
    targets: list[str], regions: list[str], default_region: str
) -> dict[str, list[str]]:
    """Which region's prewarm worker warms each target: a region of the deployment warms
    its own edges (from beside them), every other target (a POP, another region) is
    warmed from the default region; each target once."""
    home = default_region if default_region in regions else regions[0]
    routed: dict[str, list[str]] = {}
    for target in targets:
        routed.setdefault(target if target in regions else home, []).append(target)
    return routed


def check_typed_targets(args: argparse.Namespace) -> None:
    """``--targets`` as the worker will resolve them (``edgefill.targets``)."""
    from edgefill.targets import check_targets, worker_regions

    typed = operations.split_list(args.targets)
    if typed:
        check_targets(typed, worker_regions(os.environ.get("EDGEFILL_REGION_SUBNETS")))


def paths_to_send(args: argparse.Namespace) -> list[tuple[str, str]] | None:
    """The paths of the command, less those ``--skip-sent`` lists; None when none is left."""
    paths = operations.read_paths(args.paths, args.paths_file)
    if not args.skip_sent:
        return paths
    left = SentJournal(args.skip_sent).skip(paths)
    if len(left) < len(paths):
        print_note(f"--skip-sent: {len(paths) - len(left)} of {len(paths)} paths already sent")
    if not left:
        err.print("nothing left to send", markup=False)
        return None
    return left


def run_prewarm(args: argparse.Namespace) -> int:
    check_typed_targets(args)
    paths = paths_to_send(args)
    if paths is None:
        return EXIT_OK
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
    per_region = None
    targets = operations.split_list(args.targets)
    if targets and args.stack and not args.dry_run and aws_flags.keyed_by_region(args):
        found = aws_flags.deployment(args)
        routed = route_targets(targets, found.selected(args.region), found.default_region)
        per_region = {
            region: operations.prewarm_bodies(
                paths,
                chosen,
                operations.split_list(args.encodings),
                args.host,
                args.paths_per_message,
                expand=args.expand,
            )
            for region, chosen in routed.items()
        }
    return send_or_print(args, "prewarm", bodies, len(paths), per_region=per_region)


def _check_host(args: argparse.Namespace) -> None:
    """The worker's host rule, before anything is sent: against the stack's allowed hosts
    with ``--stack``; without it the CLI cannot know them and says so."""
    from edgefill.prewarm_hosts import check_prewarm_host, stack_allowed_hosts

    if not args.stack:
        if not args.dry_run:
            print_note(
                "--host is checked by the prewarm worker only (pass --stack to check it here): "
                "it must be the viewer host, the distribution domain or an allowed alias"
            )
        return
    edge = aws_flags.deployment(args).checked_edge()
    check_prewarm_host(args.host, stack_allowed_hosts(edge), args.stack)


def run_backfill(args: argparse.Namespace) -> int:
    paths = paths_to_send(args)
    if paths is None:
        return EXIT_OK
    bodies = operations.backfill_bodies(paths, args.host)
    return send_or_print(args, "backfill", bodies, len(paths))


# ---- status and redrive -------------------------------------------------------------
def run_status(args: argparse.Namespace) -> int:
    """Each region's queues (``--stack`` on an edge stack: grouped, ``--json`` keyed by
    region); the flags' queues otherwise."""
    grouped = aws_flags.keyed_by_region(args)
    documents: dict[str, Any] = {}
    for region, session, sqs, urls in aws_flags.regional_queues(args):
        cloudwatch = aws_flags.client(args, session, "cloudwatch")
        roles = [
            (role, getattr(urls, role.replace("-", "_")))
            for role in ("backfill", "backfill-dlq", "prewarm", "prewarm-dlq")
        ]
        known = [(role, url) for role, url in roles if url]
        if not known:
            raise OperatorError("no queue URLs: pass --stack NAME or --*-queue-url / --*-dlq-url")
        depths = [operations.queue_depth(sqs, cloudwatch, role, url) for role, url in known]
        dashboard = _dashboard_url(args, region)
        rows = [depth.as_json() for depth in depths]
        if args.json and grouped:
            documents[str(region)] = {"queues": rows, "dashboardUrl": dashboard}
        elif args.json:
            out.print(json.dumps(rows, indent=2), markup=False)
            if dashboard:
                err.print(f"dashboard: {dashboard}", markup=False)
        else:
            _print_status(depths, dashboard, f" in {region}" if grouped else "")
    if args.json and grouped:
        out.print(json.dumps(documents, indent=2), markup=False)
    elif not args.json:
        err.print("oldest: CloudWatch ApproximateAgeOfOldestMessage (— when it has no datapoint)")
    return EXIT_OK


def _print_status(depths: list[operations.QueueDepth], dashboard: str | None, where: str) -> None:
    from rich.table import Table

    table = Table(title=escape(f"edgefill queues{where}"))
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
    if dashboard:
        out.print(f"dashboard: {dashboard}", markup=False)


def _dashboard_url(args: argparse.Namespace, region: str | None) -> str | None:
    """The region's ``DashboardUrl`` output (``--stack`` only); a note when it has none."""
    if not args.stack or region is None:
        return None
    found = aws_flags.deployment(args)
    url = found.view(region).output("DashboardUrl")
    if url is None:
        print_note(
            f"stack {found.regional_name!r} has no DashboardUrl output (deployed before it?)"
        )
    return url


def run_redrive(args: argparse.Namespace) -> int:
    _, sqs, urls = aws_flags.resolve_queues(args)
    roles = ("backfill", "prewarm") if args.queue == "both" else (args.queue,)
    lab = args.endpoint_url is not None
    say = _Say(args.json)
    code = EXIT_OK
    for role in roles:
        dlq, destination = urls.require(f"{role}-dlq"), urls.require(role)
        reasons = operations.dead_letter_reasons(sqs, dlq)
        row: dict[str, Any] = {
            "queue": role,
            "dlq": dlq,
            "reasons": dict(reasons.counts.most_common()),
            "read": reasons.read,
            "approximate": reasons.approximate,
            "method": None,
            "moved": None,
            "taskHandle": None,
            "taskStatus": None,
        }
        say.rows.append(row)
        if not args.json:
            _print_reasons(role, reasons)
        if args.dry_run or not (reasons.read or reasons.approximate):
            continue
        result = operations.redrive(sqs, dlq, destination, lab_fallback=lab, log=print_note)
        row.update(method=result.method, moved=result.moved, taskHandle=result.task_handle)
        if result.task_handle:
            say(f"{role}: move task started ({result.task_handle})")
            if args.wait:
                task = operations.wait_for_move_task(sqs, dlq)
                moved = task.get("ApproximateNumberOfMessagesMoved", 0)
                row.update(taskStatus=task.get("Status"), moved=moved)
                say(f"{role}: move task {task.get('Status')}, {moved} messages moved")
                if task.get("Status") != "COMPLETED":
                    code = EXIT_FAILED
                    break
        else:
            say(f"{role}: {result.moved} messages moved back ({result.method})")
    if args.json:
        out.print(json.dumps(say.rows, indent=2), markup=False)
    return code


class _Say:
    """Lines for the table form; with ``--json`` the rows are printed at the end instead."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.rows: list[dict[str, Any]] = []

    def __call__(self, line: str) -> None:
        if not self.as_json:
            out.print(line, markup=False)


def _print_reasons(role: str, reasons: operations.DeadLetterReasons) -> None:
    """The DLQ's messages by reason, before anything moves."""
    from rich.table import Table

    from shared.dead_letters import NO_REASON

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
    for reason, messages in reasons.counts.most_common():
        table.add_row(escape(reason), str(messages))
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
