"""The freshness commands: ``refresh`` (queue refresh messages), ``invalidate`` (CloudFront
invalidations in batches, ``--wait`` for them) and ``check`` (does every edge serve the
same version as the bucket?).

Exit status: 0 ok (every path consistent, every batch created or completed), 1 some work
failed (a message not sent, a batch refused or not completed in time, a path stale or in
error), 2 bad input (named in the error).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from rich.markup import escape
from rich.table import Table

from edgefill import operations
from edgefill.commands import aws_flags
from edgefill.commands.edge_flags import add_edge_flags, prewarm_config, targets_and_encodings
from edgefill.console import EXIT_FAILED, EXIT_OK, err, out
from edgefill.operations import OperatorError
from edgefill.stack import read_stack
from shared.messages import BackfillMessage, MessageError, format_time, to_json

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
    refresh.add_argument("paths", nargs="*", metavar="PATH", help="URI path, e.g. /index.html")
    refresh.add_argument("--paths-file", help="file with one path a line (# comments allowed)")
    refresh.add_argument("--host", help="viewer Host recorded in the messages")
    refresh.add_argument("--dry-run", action="store_true", help="print the messages, send none")
    refresh.set_defaults(run=run_refresh)

    invalidate = commands.add_parser(
        "invalidate",
        help="invalidate paths at CloudFront, in batches",
        description="CreateInvalidation for the paths, in batches of at most 3000 paths and "
        "15 wildcards; --wait follows each batch until it is Completed.",
    )
    invalidate.add_argument("paths", nargs="*", metavar="PATH", help="/index.html or /img/*")
    invalidate.add_argument("--paths-file", help="file with one path a line (# comments allowed)")
    where = invalidate.add_mutually_exclusive_group(required=True)
    where.add_argument("--stack", help="CloudFormation stack whose distribution to invalidate")
    where.add_argument("--distribution-id", help="the distribution (E2EXAMPLE1234)")
    invalidate.add_argument("--region", help="AWS region of the stack")
    invalidate.add_argument("--endpoint-url", help="AWS endpoint, e.g. the lab's moto server")
    invalidate.add_argument("--wait", action="store_true", help="wait until every batch completes")
    invalidate.add_argument(
        "--timeout", type=float, default=DEFAULT_WAIT_SECONDS, help="seconds --wait waits at most"
    )
    invalidate.set_defaults(run=run_invalidate)

    check = commands.add_parser(
        "check",
        help="compare the version each edge serves (and the bucket's copy)",
        description="HEAD each path at each target's edge for each encoding and compare "
        "versions (x-amz-meta-origin-etag, else ETag). Edge-finding flags as for warm.",
    )
    check.add_argument("paths", nargs="*", metavar="PATH")
    check.add_argument("--paths-file")
    add_edge_flags(check)  # edges are found as for warm
    bucket = check.add_mutually_exclusive_group()
    bucket.add_argument("--bucket", help="the regional bucket, to compare against its copy")
    bucket.add_argument("--stack", help="CloudFormation stack whose bucket to compare against")
    check.add_argument("--key-prefix", default=None, help="key prefix in --bucket")
    check.add_argument("--region", help="AWS region of the bucket or stack")
    check.add_argument("--endpoint-url", help="AWS endpoint, e.g. the lab's moto server")
    check.add_argument("--json", action="store_true", help="print the verdicts as JSON")
    check.set_defaults(run=run_check)


# ---- refresh ------------------------------------------------------------------------
def refresh_bodies(paths: list[tuple[str, str]], host: str | None) -> list[str]:
    """One validated refresh message body per path."""
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
    from edgefill.commands.queue_commands import send_with_progress

    paths = operations.read_paths(args.paths, args.paths_file)
    bodies = refresh_bodies(paths, args.host)
    if args.dry_run:
        for body in bodies:
            out.print(body, markup=False)
        err.print(f"dry run: {len(bodies)} refresh messages, none sent")
        return EXIT_OK
    _, sqs, urls = aws_flags.resolve_queues(args)
    url = urls.require("backfill")
    report = send_with_progress(sqs, url, bodies, "refresh messages")
    table = Table(title=f"refresh messages → {url}")
    for column in ("paths", "sent", "failed"):
        table.add_column(column, justify="right")
    table.add_row(str(len(bodies)), str(report.sent), str(len(report.failed)))
    out.print(table)
    for index, code, reason in report.failed:
        err.print(f"[red]message {index + 1} not sent:[/red] {code}: {reason}", markup=False)
    return EXIT_OK if report.ok else EXIT_FAILED


# ---- invalidate ---------------------------------------------------------------------
def run_invalidate(args: argparse.Namespace) -> int:
    from edgefill import invalidations

    paths = invalidations.invalidation_paths(operations.read_paths(args.paths, args.paths_file))
    if args.timeout <= 0:
        raise OperatorError("--timeout must be positive")
    distribution_id = args.distribution_id
    if distribution_id is not None and not _is_distribution_id(distribution_id):
        # Bad input is named before any credential or network is needed.
        raise OperatorError(f"--distribution-id: {distribution_id!r} is not a distribution ID")
    session = operations.aws_session(args.region or "us-east-1")
    if args.stack:
        cloudformation = operations.make_client(session, "cloudformation", args.endpoint_url)
        stack = read_stack(cloudformation, args.stack)
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
    # CloudFront's API lives in us-east-1 whatever the stack's region.
    cloudfront = session.client(
        "cloudfront", region_name="us-east-1", endpoint_url=args.endpoint_url
    )

    def created(batch: Any) -> None:
        if batch.error:
            err.print(
                f"[red]batch of {len(batch.paths)} paths refused:[/red] {escape(batch.error)}"
            )
        else:
            err.print(
                f"invalidation {batch.invalidation_id}: {len(batch.paths)} paths, {batch.status}",
                markup=False,
            )

    run = invalidations.create(cloudfront, distribution_id, paths, on_batch=created)
    completed = True
    if args.wait and any(b.invalidation_id for b in run.batches):
        completed = _wait_with_progress(cloudfront, run, args.timeout, invalidations.wait)
    table = Table(title=f"invalidations of {distribution_id}")
    for column in ("invalidation", "paths", "status"):
        table.add_column(column)
    for batch in run.batches:
        status = batch.status or ""
        table.add_row(
            batch.invalidation_id or "—", str(len(batch.paths)), escape(batch.error or status)
        )
    out.print(table)
    if not completed:
        err.print(f"[red]not every batch completed within {args.timeout:.0f}s[/red]")
    return EXIT_OK if run.ok and completed else EXIT_FAILED


def _wait_with_progress(
    cloudfront: Any, run: Any, timeout: float, wait: Callable[..., bool]
) -> bool:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    total = sum(1 for b in run.batches if b.invalidation_id)
    with Progress(
        TextColumn("[bold]invalidations completed"),
        BarColumn(),
        MofNCompleteColumn(),
        console=err,
        transient=True,
    ) as progress:
        task = progress.add_task("wait", total=total)
        return wait(
            cloudfront,
            run,
            timeout,
            on_progress=lambda r: progress.update(task, completed=r.completed),
        )


def _is_distribution_id(value: object) -> bool:
    import re

    return isinstance(value, str) and re.fullmatch(r"[A-Z0-9]{5,32}", value) is not None


# ---- check --------------------------------------------------------------------------
def run_check(args: argparse.Namespace) -> int:
    from edgefill import edge_check
    from prewarm_worker.worker import build_runtime
    from shared.edns import resolve_edges

    config = prewarm_config(args, unset=("EDGEFILL_PREWARM_QUEUE_URL", "EDGEFILL_DISTRIBUTION_ID"))
    read = operations.read_paths(args.paths, args.paths_file)
    paths = [operations.as_uri(where, path) for where, path in read]
    targets, encodings = targets_and_encodings(args, paths, config)
    bucket_version = _bucket_versions(args)
    runtime = build_runtime(config)
    resolution = resolve_edges(targets, config, runtime.resolver)
    edges = {t: (e.address if (e := resolution.edges.get(t)) else None) for t in targets}
    errors = {t: error.reason for t, error in resolution.errors.items()}
    verdicts = edge_check.check(
        paths, edges, errors, encodings, config.viewer_host, runtime.client, bucket_version
    )
    consistent = all(v.verdict == "consistent" for v in verdicts)
    if args.json:
        document = {"consistent": consistent, "paths": [v.as_dict() for v in verdicts]}
        out.print(json.dumps(document, indent=2), markup=False)
    else:
        _print_check(verdicts)
    return EXIT_OK if consistent else EXIT_FAILED


def _bucket_versions(args: argparse.Namespace) -> Callable[[str], BucketVersion] | None:
    """A function giving the bucket copy's version of a URI (``NO_COPY`` when the bucket
    has none), when --bucket/--stack ask."""
    if not args.bucket and not args.stack:
        return None
    from botocore.exceptions import ClientError

    from edgefill.edge_check import NO_COPY
    from shared.keys import InvalidKey, ObjectKey

    session = operations.aws_session(args.region)
    bucket, prefix = args.bucket, args.key_prefix or ""
    if args.stack:
        cloudformation = operations.make_client(session, "cloudformation", args.endpoint_url)
        stack = read_stack(cloudformation, args.stack)
        bucket = stack.output("BucketName")
        prefix = args.key_prefix or stack.parameters.get("KeyPrefix", "")
        if not bucket:
            raise OperatorError(f"stack {args.stack!r} has no BucketName output")
        bucket_region = stack.output("BucketRegion")
        if bucket_region and bucket_region != session.region_name:
            session = operations.aws_session(bucket_region)  # an existing bucket elsewhere
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
