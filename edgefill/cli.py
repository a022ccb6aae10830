"""``edgefill``: the operator's command line, against real AWS or the lab.

Commands: ``prewarm``, ``backfill`` (send validated v1 messages), ``warm`` (run the warm
engine from this machine), ``status`` (queue depths), ``redrive`` (DLQ → queue),
``lab up`` (the local lab) and ``demo`` (the narrated lab scenario behind ``make demo``).
Queue URLs come from ``--stack NAME`` (CloudFormation outputs) or explicit flags.

Exit status: 0 done, 1 some work failed (messages not sent, warms failed, a demo
expectation unmet), 2 bad input or configuration (named in the error).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from edgefill import cli_lab, operations
from edgefill.operations import OperatorError, QueueUrls
from shared.messages import ENCODINGS
from shared.queues import MAX_BATCH, SendReport, region_from_queue_url, send_messages

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except OperatorError as error:
        err.print(f"[red]edgefill: error:[/red] {error}")
        return EXIT_USAGE
    except NoCredentialsError:
        err.print("[red]edgefill: error:[/red] no AWS credentials found (set AWS_PROFILE or keys)")
        return EXIT_USAGE
    except (ClientError, BotoCoreError) as error:
        err.print(f"[red]edgefill: error:[/red] AWS call failed: {error}")
        return EXIT_FAILED
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130


def build_parser() -> argparse.ArgumentParser:
    aws = argparse.ArgumentParser(add_help=False)
    group = aws.add_argument_group("where the queues are")
    group.add_argument("--stack", help="CloudFormation stack whose outputs name the queues")
    group.add_argument("--region", help="AWS region (default: AWS_REGION / profile)")
    group.add_argument("--endpoint-url", help="AWS endpoint, e.g. the lab's moto server")
    group.add_argument("--backfill-queue-url", dest="backfill")
    group.add_argument("--prewarm-queue-url", dest="prewarm")
    group.add_argument("--backfill-dlq-url", dest="backfill_dlq")
    group.add_argument("--prewarm-dlq-url", dest="prewarm_dlq")

    parser = argparse.ArgumentParser(
        prog="edgefill",
        description="Keep a CloudFront distribution's regional S3 origin filled and edges warm.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    prewarm = commands.add_parser("prewarm", parents=[aws], help="queue prewarm messages for paths")
    _add_paths(prewarm)
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
    prewarm.set_defaults(run=run_prewarm)

    backfill = commands.add_parser(
        "backfill", parents=[aws], help="queue backfill messages for paths"
    )
    _add_paths(backfill)
    backfill.add_argument("--host", help="viewer Host recorded in the messages")
    backfill.add_argument("--dry-run", action="store_true", help="print the messages, send none")
    backfill.set_defaults(run=run_backfill)

    status = commands.add_parser("status", parents=[aws], help="depth of each queue and DLQ")
    status.add_argument("--json", action="store_true", help="print JSON instead of a table")
    status.set_defaults(run=run_status)

    redrive = commands.add_parser(
        "redrive", parents=[aws], help="move DLQ messages back to their queue"
    )
    redrive.add_argument("--queue", choices=("backfill", "prewarm", "both"), default="both")
    redrive.add_argument("--wait", action="store_true", help="wait until the move task ends")
    redrive.set_defaults(run=run_redrive)

    cli_lab.add_commands(commands, aws)
    return parser


def _add_paths(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="*", metavar="PATH", help="URI path, e.g. /img/a.jpg")
    parser.add_argument("--paths-file", help="file with one path a line (# comments allowed)")


# ---- queues -------------------------------------------------------------------------
def resolve_queues(args: argparse.Namespace) -> tuple[Any, Any, QueueUrls]:
    """(session, sqs client, queue URLs) for the command's flags."""
    region = args.region
    flags = QueueUrls(args.backfill, args.prewarm, args.backfill_dlq, args.prewarm_dlq)
    if region is None:
        for url in (flags.backfill, flags.prewarm, flags.backfill_dlq, flags.prewarm_dlq):
            if url:
                try:
                    region = region_from_queue_url(url)
                except ValueError as error:
                    raise OperatorError(str(error)) from None
                break
    session = operations.aws_session(region)
    from_stack = None
    if args.stack:
        cloudformation = operations.make_client(session, "cloudformation", args.endpoint_url)
        from_stack = operations.stack_queue_urls(cloudformation, args.stack)
    urls = operations.merge_queue_urls(from_stack, flags)
    return session, operations.make_client(session, "sqs", args.endpoint_url), urls


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
    table = Table(title=f"{what} messages → {url}")
    for column in ("messages", "paths", "sent", "failed"):
        table.add_column(column, justify="right")
    table.add_row(str(len(bodies)), str(paths), str(report.sent), str(len(report.failed)))
    out.print(table)
    for index, code, reason in report.failed:
        err.print(f"[red]message {index + 1} not sent:[/red] {code}: {reason}")
    return EXIT_OK if report.ok else EXIT_FAILED


def _send_or_print(args: argparse.Namespace, role: str, bodies: list[str], paths: int) -> int:
    """Print the messages (``--dry-run``) or send them to the ``role`` queue with a summary."""
    if args.dry_run:
        for body in bodies:
            out.print(body, markup=False)
        err.print(f"dry run: {len(bodies)} {role} messages for {paths} paths, none sent")
        return EXIT_OK
    _, sqs, urls = resolve_queues(args)
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
    )
    return _send_or_print(args, "prewarm", bodies, len(paths))


def run_backfill(args: argparse.Namespace) -> int:
    paths = operations.read_paths(args.paths, args.paths_file)
    bodies = operations.backfill_bodies(paths, args.host)
    return _send_or_print(args, "backfill", bodies, len(paths))


def run_status(args: argparse.Namespace) -> int:
    session, sqs, urls = resolve_queues(args)
    cloudwatch = operations.make_client(session, "cloudwatch", args.endpoint_url)
    roles = [
        (role, getattr(urls, role.replace("-", "_")))
        for role in ("backfill", "backfill-dlq", "prewarm", "prewarm-dlq")
    ]
    known = [(role, url) for role, url in roles if url]
    if not known:
        raise OperatorError("no queue URLs: pass --stack NAME or --*-queue-url / --*-dlq-url")
    depths = [operations.queue_depth(sqs, cloudwatch, role, url) for role, url in known]
    if args.json:
        out.print(json.dumps([asdict(depth) for depth in depths], indent=2), markup=False)
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
    return EXIT_OK


def run_redrive(args: argparse.Namespace) -> int:
    _, sqs, urls = resolve_queues(args)
    roles = ("backfill", "prewarm") if args.queue == "both" else (args.queue,)
    lab = args.endpoint_url is not None
    for role in roles:
        dlq, destination = urls.require(f"{role}-dlq"), urls.require(role)
        result = operations.redrive(
            sqs,
            dlq,
            destination,
            lab_fallback=lab,
            log=lambda line: err.print(f"[yellow]note:[/yellow] {line}"),
        )
        if result.task_handle:
            out.print(f"{role}: move task started ({result.task_handle})")
            if args.wait:
                task = operations.wait_for_move_task(sqs, dlq)
                out.print(
                    f"{role}: move task {task.get('Status')}, "
                    f"{task.get('ApproximateNumberOfMessagesMoved', 0)} messages moved"
                )
                if task.get("Status") != "COMPLETED":
                    return EXIT_FAILED
        else:
            out.print(f"{role}: {result.moved} messages moved back ({result.method})")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
