"""The freshness commands: ``refresh`` (queue refresh messages), ``invalidate`` (CloudFront
invalidations in batches, ``--wait`` for them) and ``check`` (does every edge serve the
same version as the bucket?).

Exit status: 0 ok (every path consistent, every batch created or completed), 1 some work
failed (a message not sent, a batch refused or not completed in time, a path stale or in
error), 2 bad input (named in the error).

CloudFront's invalidation batches (botocore), the message models and rich's tables and bars
are imported by the functions that use them: the parser is built at every start of the CLI.
"""

from __future__ import annotations

import argparse
import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from edgefill import console, operations
from edgefill.commands import aws_flags, values
from edgefill.commands.edge_flags import (
    add_edge_flags,
    from_stack,
    prewarm_config,
    targets_and_encodings,
)
from edgefill.commands.path_flags import add_paths, add_skip_sent
from edgefill.console import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, err, escape, out
from edgefill.deployment import required
from edgefill.edge_grid import check_grid, print_grid
from edgefill.interrupts import abandon, report_stopped, run_stoppable
from edgefill.operations import OperatorError

if TYPE_CHECKING:
    from edgefill.edge_check import BucketVersion

DEFAULT_WAIT_SECONDS: Final = 1800


def register(commands: Any) -> None:
    aws = aws_flags.parent()
    refresh = commands.add_parser(
        "refresh",
        parents=[aws],
        help="queue refresh messages: revalidate copies against the origin",
        description="Queue backfill messages with mode refresh: the backfill worker asks the "
        "origin whether each copy changed, then keeps, replaces or deletes it, and "
        "invalidates what it replaced or deleted.",
    )
    add_paths(refresh, "/index.html")
    refresh.add_argument("--host", type=values.host, help="viewer Host recorded in the messages")
    refresh.add_argument("--dry-run", action="store_true", help="print the messages, send none")
    add_skip_sent(refresh)
    refresh.add_argument("--json", action="store_true", help="print the report as JSON")
    refresh.set_defaults(run=run_refresh)

    invalidate = commands.add_parser(
        "invalidate",
        help="invalidate paths at CloudFront, in batches",
        description="CreateInvalidation for the paths, in batches of at most 3000 paths and "
        "15 wildcards; --wait follows each batch until it is Completed. Pass --stack or "
        "--distribution-id. Ctrl-C creates no further batch and stops waiting (exit 130); "
        "the batches created go on at CloudFront.",
    )
    add_paths(invalidate, "/index.html or /img/*")
    aws_flags.add_to(invalidate, "CloudFormation stack whose distribution to invalidate")
    invalidate.add_argument(
        "--distribution-id",
        type=values.distribution_id,
        help="the distribution (E2EXAMPLE1234), instead of --stack",
    )
    invalidate.add_argument("--wait", action="store_true", help="wait until every batch completes")
    invalidate.add_argument(
        "--timeout",
        type=values.seconds,
        default=DEFAULT_WAIT_SECONDS,
        help="seconds --wait waits at most",
    )
    invalidate.add_argument("--json", action="store_true", help="print the batches as JSON")
    invalidate.set_defaults(run=run_invalidate)

    check = commands.add_parser(
        "check",
        help="compare the version each edge serves (and the bucket's copy)",
        description="HEAD each path at each target's edge for each encoding and compare "
        "versions (x-amz-meta-origin-etag, else ETag). Edge-finding flags as for warm. Ends with a "
        "table per path and a grid of targets × encodings (hit, miss, failed, inconsistent).",
    )
    add_paths(check)
    add_edge_flags(check)  # edges are found as for warm
    aws_flags.add_to(check, "CloudFormation stack whose bucket to compare against")
    check.add_argument(
        "--bucket", type=values.bucket, help="the regional bucket to compare against (or --stack)"
    )
    check.add_argument(
        "--key-prefix", type=values.key_prefix, default=None, help="key prefix in --bucket"
    )
    check.add_argument("--json", action="store_true", help="print the verdicts as JSON")
    check.set_defaults(run=run_check)


# ---- refresh ------------------------------------------------------------------------
def refresh_bodies(paths: list[tuple[str, str]], host: str | None) -> list[str]:
    """One validated refresh message body per path."""
    from shared.messages import BackfillMessage, MessageError, format_time, to_json

    now = format_time(datetime.now(UTC))
    bodies = []
    for where, path in paths:
        uri, _, query = operations.as_uri(where, path).partition("?")
        try:
            message = BackfillMessage(uri=uri, query=query, host=host, at=now, mode="refresh")
        except MessageError as error:
            raise OperatorError(f"{where}: path {path[:80]!r}: {error}") from None
        bodies.append(to_json(message))
    return bodies


def run_refresh(args: argparse.Namespace) -> int:
    from edgefill.commands.queue_commands import paths_to_send, send_or_print

    paths = paths_to_send(args)
    if paths is None:
        return EXIT_OK
    bodies = refresh_bodies(paths, args.host)
    return send_or_print(args, "backfill", bodies, len(paths), what="refresh")


# ---- invalidate ---------------------------------------------------------------------
def run_invalidate(args: argparse.Namespace) -> int:
    from edgefill import invalidations
    from shared.invalidations import batches

    if bool(args.stack) == bool(args.distribution_id):
        raise OperatorError("pass --stack NAME or --distribution-id ID (one of them)")
    paths = invalidations.invalidation_paths(operations.read_paths(args.paths, args.paths_file))
    # CloudFront's API lives in us-east-1 whatever the stack's region.
    session = aws_flags.session(args, fallback_region="us-east-1")
    distribution_id = args.distribution_id
    if args.stack:
        stack = aws_flags.deployment(args).checked_edge()
        distribution_id = stack.output("DistributionId") or stack.parameters.get(
            "ExistingDistributionId"
        )
        if not distribution_id:
            raise OperatorError(
                f"stack {args.stack!r} names no distribution (no DistributionId output, "
                "no ExistingDistributionId): pass --distribution-id"
            )
    if not _is_distribution_id(distribution_id):
        raise OperatorError(f"--distribution-id: {distribution_id!r} is not a distribution ID")
    cloudfront = session.client(
        "cloudfront", region_name="us-east-1", endpoint_url=args.endpoint_url
    )
    planned = sum(1 for _ in batches(paths))
    created: list[Any] = []

    def on_batch(batch: Any) -> None:
        created.append(batch)
        if batch.error:
            err.print(
                f"[red]batch of {len(batch.paths)} paths refused:[/red] {escape(batch.error)}"
            )
        elif not args.json:
            err.print(
                f"invalidation {batch.invalidation_id}: {len(batch.paths)} paths, {batch.status}",
                markup=False,
            )

    stop = threading.Event()
    completed: list[bool] = []

    def work() -> Any:
        run = invalidations.create(cloudfront, distribution_id, paths, on_batch=on_batch, stop=stop)
        if args.wait and any(b.invalidation_id for b in run.batches):
            completed.append(_wait_with_progress(cloudfront, run, args.timeout, stop))
        return run

    stopped = run_stoppable(work, stop)
    run = stopped.value or invalidations.InvalidationRun(distribution_id, list(created))
    done = all(completed) if args.wait else True
    code = _report_invalidations(args, run, paths, planned, stopped.interrupted, done)
    if not stopped.finished:
        abandon(code)
    return code


def _report_invalidations(
    args: argparse.Namespace,
    run: Any,
    paths: list[str],
    planned: int,
    interrupted: bool,
    completed: bool,
) -> int:
    from rich.table import Table

    made = [b for b in run.batches if b.invalidation_id]
    in_batches = {path for b in made for path in b.paths}
    not_created = [path for path in paths if path not in in_batches]
    if args.json:
        document = {
            "distributionId": run.distribution_id,
            "batches": [
                {
                    "id": b.invalidation_id,
                    "paths": len(b.paths),
                    "status": b.status,
                    "error": b.error,
                }
                for b in run.batches
            ],
            "completed": completed and bool(made) and len(made) == len(run.batches),
            "interrupted": interrupted,
            "notCreatedPaths": not_created,
        }
        out.print(json.dumps(document, indent=2), markup=False)
    else:
        table = Table(title=f"invalidations of {run.distribution_id}")
        for column in ("invalidation", "paths", "status"):
            table.add_column(column)
        for batch in run.batches:
            status = batch.error or batch.status or "not created"
            table.add_row(
                batch.invalidation_id or "—", console.count(len(batch.paths)), escape(status)
            )
        out.print(table)
    if interrupted:
        paths_made = f" ({console.count(len(in_batches))} of {console.count(len(paths))} paths)"
        report_stopped(len(made), planned, "batches created", detail=paths_made)
        err.print("the invalidations created go on at CloudFront", markup=False)
        return EXIT_INTERRUPTED
    if not completed:
        err.print(f"[red]not every batch completed within {args.timeout:.0f}s[/red]")
    return EXIT_OK if run.ok and completed else EXIT_FAILED


def _wait_with_progress(cloudfront: Any, run: Any, timeout: float, stop: threading.Event) -> bool:
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn

    from edgefill.invalidations import wait

    total = sum(1 for b in run.batches if b.invalidation_id)
    with console.progress_bar(
        TextColumn("[bold]invalidations completed"), BarColumn(), MofNCompleteColumn()
    ) as progress:
        task = progress.add_task("wait", total=total)
        return wait(
            cloudfront,
            run,
            timeout,
            on_progress=lambda r: progress.update(task, completed=r.completed),
            stop=stop,
        )


def _is_distribution_id(value: object) -> bool:
    return isinstance(value, str) and values.DISTRIBUTION_ID.fullmatch(value) is not None


# ---- check --------------------------------------------------------------------------
def run_check(args: argparse.Namespace) -> int:
    """Edges against the bucket: with ``--stack`` on an edge stack, against each region's
    bucket in turn (``--region R``: R's), grouped by region (``--json`` keyed by it)."""
    from edgefill import edge_check
    from prewarm_worker.worker import build_runtime
    from shared.edns import resolve_edges

    if args.stack and args.bucket:
        raise OperatorError("pass --stack or --bucket, not both")
    from_stack(args)
    config = prewarm_config(args, unset=("EDGEFILL_PREWARM_QUEUE_URL", "EDGEFILL_DISTRIBUTION_ID"))
    read = operations.read_paths(args.paths, args.paths_file)
    paths = [operations.as_uri(where, path) for where, path in read]
    targets, encodings = targets_and_encodings(args, paths, config)
    references = _references(args)
    runtime = build_runtime(config)
    resolution = resolve_edges(targets, config, runtime.resolver)
    edges = {t: (e.address if (e := resolution.edges.get(t)) else None) for t in targets}
    errors = {t: error.reason for t, error in resolution.errors.items()}
    grouped = bool(args.stack) and aws_flags.keyed_by_region(args)
    documents: dict[str, Any] = {}
    every = True
    for region, bucket_version in references:
        verdicts = edge_check.check(
            paths, edges, errors, encodings, config.viewer_host, runtime.client, bucket_version
        )
        consistent = all(v.verdict == "consistent" for v in verdicts)
        every = every and consistent
        document = {"consistent": consistent, "paths": [v.as_dict() for v in verdicts]}
        if args.json and grouped:
            documents[str(region)] = document
        elif args.json:
            out.print(json.dumps(document, indent=2), markup=False)
        else:
            title = f"check: {console.plural(len(paths), 'path')}"
            if grouped:
                out.print(f"[bold]region {escape(str(region))}[/bold]")
                title += f" against the bucket in {region}"
            _print_check(verdicts)
            print_grid(check_grid(verdicts, targets, encodings), title)
    if args.json and grouped:
        out.print(json.dumps(documents, indent=2), markup=False)
    return EXIT_OK if every else EXIT_FAILED


def _references(
    args: argparse.Namespace,
) -> list[tuple[str | None, Callable[[str], BucketVersion] | None]]:
    """(region, the bucket copy's version of a URI) for each bucket to compare against:
    ``--bucket``'s, each selected region's (``--stack``), or none."""
    if args.bucket:
        return [(None, _bucket_versions(args, args.bucket, args.key_prefix or "", None))]
    if not args.stack:
        return [(None, None)]
    return [
        (
            region,
            _bucket_versions(
                args,
                required(view, "BucketName"),
                args.key_prefix or view.parameters.get("KeyPrefix", ""),
                view.output("BucketRegion") or region,
            ),
        )
        for region, view in aws_flags.regions(args)
    ]


def _bucket_versions(
    args: argparse.Namespace, bucket: str, prefix: str, region: str | None
) -> Callable[[str], BucketVersion]:
    """A function giving the bucket copy's version of a URI (``NO_COPY`` when the bucket
    has none)."""
    from botocore.exceptions import ClientError

    from edgefill.edge_check import NO_COPY
    from shared.keys import InvalidKey, ObjectKey

    session = aws_flags.session(args, region)
    s3 = operations.make_client(session, "s3", args.endpoint_url)

    def version(uri: str) -> BucketVersion:
        try:
            key = ObjectKey.from_uri(uri.partition("?")[0], prefix).key
            head = s3.head_object(Bucket=bucket, Key=key)
        except ClientError as error:
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            return NO_COPY if status == 404 else None
        except InvalidKey:
            return None
        metadata = {k.lower(): v for k, v in (head.get("Metadata") or {}).items()}
        return metadata.get("origin-etag") or head.get("ETag")

    return version


def _print_check(verdicts: list[Any]) -> None:
    from rich.table import Table

    table = Table(title="edgefill check")
    for column in ("path", "verdict", "reference version", "edges", "differing"):
        table.add_column(column, overflow="fold")
    for verdict in verdicts:
        style = {"consistent": "green", "stale": "yellow", "error": "red"}[verdict.verdict]
        # Paths and versions come from outside (an edge's headers): printed literally.
        table.add_row(
            escape(verdict.path),
            f"[{style}]{verdict.verdict}[/{style}]",
            escape(str(verdict.reference)) if verdict.bucket_copy is not False else "no copy",
            str(len(verdict.edges)),
            escape("\n".join(verdict.differing[:10])) or "—",
        )
    out.print(table)
