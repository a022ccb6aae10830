"""Sizes, estimates and caps for the commands that launch warms (``estimate``,
``prewarm``, ``warm``): where sizes come from (``--stack`` or ``--bucket``, then
``--origin-url``), the estimate table, and the refusal when a launch is over a cap.

The flags are added at every start of the CLI; the estimate, the price table, the size
lookups (botocore) and rich are imported only when a command sizes a launch."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from edgefill import operations
from edgefill.commands import aws_flags, values
from edgefill.console import EXIT_FAILED, err, escape, out, spinner
from edgefill.deployment import required
from edgefill.operations import OperatorError
from edgefill.sizes import human_size

if TYPE_CHECKING:
    from edgefill.cost_estimate import Estimate
    from edgefill.object_sizes import SizeLookup

SHOWN_UNKNOWN = 10  # unknown sizes listed one by one; the rest are counted


@dataclass(frozen=True, slots=True)
class SizeSource:
    """The bucket sizes are read from, and the defaults the stack gives."""

    bucket: str
    prefix: str
    region: str | None
    targets: tuple[str, ...] = ()
    encodings: tuple[str, ...] = ()


def add_size_flags(parser: argparse.ArgumentParser, with_stack: bool) -> None:
    """``--bucket``/``--key-prefix``/``--origin-url``/``--prices`` (and, for a command
    without the deployment flags, ``--stack``/``--region``/``--endpoint-url``)."""
    if with_stack:
        aws_flags.add_to(parser, "stack whose bucket holds the objects")
    group = parser.add_argument_group("where sizes come from")
    group.add_argument(
        "--bucket", type=values.bucket, help="the regional bucket (instead of --stack)"
    )
    group.add_argument(
        "--key-prefix", type=values.key_prefix, default="", help="key prefix in --bucket"
    )
    group.add_argument(
        "--origin-url", type=values.origin_url, help="full origin to HEAD for what the bucket lacks"
    )
    group.add_argument(
        "--prices",
        metavar="FILE",
        type=values.readable_file,
        help="JSON prices replacing the built-in",
    )


def add_cap_flags(parser: argparse.ArgumentParser, with_stack: bool) -> None:
    caps = parser.add_argument_group("caps (sizes from --stack or --bucket)")
    caps.add_argument(
        "--max-bytes",
        type=values.size,
        metavar="SIZE",
        help="refuse if the warms could move more: bytes, or 50GB, 1.5TiB (GB = 10^9, GiB = 2^30)",
    )
    caps.add_argument(
        "--max-usd", type=values.dollars, metavar="USD", help="refuse if it could cost more"
    )
    add_size_flags(parser, with_stack)


def size_source(args: argparse.Namespace) -> SizeSource:
    if args.stack and args.bucket:
        raise OperatorError("pass --stack or --bucket, not both")
    if args.bucket:
        return SizeSource(args.bucket, args.key_prefix, args.region)
    if not args.stack:
        raise OperatorError("sizes need --stack NAME or --bucket BUCKET")
    # Across regions, a launch is sized once: the objects are the same in every bucket,
    # read from the default region's (or --region's); its targets are every region's.
    views = aws_flags.regions(args)
    default = aws_flags.deployment(args).default_region
    region, stack = next(((r, v) for r, v in views if r == default), views[0])
    targets = [
        target
        for _, view in views
        for target in operations.split_list([view.parameters.get("PrewarmTargets", "")]) or ()
    ]
    return SizeSource(
        bucket=required(stack, "BucketName"),
        prefix=stack.parameters.get("KeyPrefix", ""),
        region=stack.output("BucketRegion") or region,
        targets=tuple(dict.fromkeys(targets)),
        encodings=tuple(
            operations.split_list([stack.parameters.get("PrewarmEncodings", "")]) or ()
        ),
    )


def look_up_sizes(
    args: argparse.Namespace, source: SizeSource, uris: Sequence[str]
) -> list[SizeLookup]:
    from edgefill.object_sizes import MAX_WORKERS, bucket_sizes, with_origin_fallback

    session = aws_flags.session(args, source.region)
    # One pooled connection per HeadObject in flight.
    from botocore.config import Config

    config = Config(
        retries={"max_attempts": 3, "mode": "standard"},
        connect_timeout=5,
        max_pool_connections=MAX_WORKERS,
    )
    s3 = session.client("s3", endpoint_url=args.endpoint_url, config=config)
    with spinner(f"reading {len(set(uris))} sizes"):
        found = bucket_sizes(s3, source.bucket, uris, source.prefix)
        return with_origin_fallback(found, args.origin_url)


def launch_estimate(
    args: argparse.Namespace,
    source: SizeSource,
    uris: Sequence[str],
    targets: Sequence[str],
    encodings: Sequence[str],
    message_bytes: Sequence[int] = (),
) -> tuple[Estimate, list[SizeLookup]]:
    from edgefill.cost_estimate import estimate
    from edgefill.object_sizes import check_origin_url
    from edgefill.pricing import load_prices

    prices = load_prices(args.prices)  # bad input is refused before any AWS call
    if args.origin_url is not None:
        check_origin_url(args.origin_url)
    sizes = look_up_sizes(args, source, uris)
    result = estimate([s.size for s in sizes], targets, encodings, prices, message_bytes)
    return result, sizes


def print_estimate(result: Estimate, sizes: Sequence[SizeLookup]) -> None:
    from rich.table import Table

    table = Table(title=f"estimate: {result.paths} paths, {result.warms} warms (upper bounds)")
    for column in ("target", "geography", "warms", "bytes", "USD"):
        table.add_column(column, justify="left" if column in ("target", "geography") else "right")
    for name, target in result.by_target.items():
        geography = target.geography if target.geography_known else f"{target.geography} (?)"
        table.add_row(
            escape(name),
            escape(geography),
            str(target.warms),
            human_size(target.bytes),
            f"{target.usd:.4f}",
        )
    if result.workers_usd:
        table.add_row("prewarm worker + SQS", "", "", "", f"{result.workers_usd:.4f}")
    table.add_row(
        "total", "", str(result.warms), human_size(result.bytes), f"{result.usd:.4f}", style="bold"
    )
    out.print(table)
    if any(not t.geography_known for t in result.by_target.values()):
        err.print("(?) target not in the geography table: priced at the dearest geography")
    unknown = [s for s in sizes if s.size is None]
    for lookup in unknown[:SHOWN_UNKNOWN]:
        err.print(f"[yellow]size unknown[/yellow] {escape(lookup.uri)}: {escape(lookup.problem)}")
    if len(unknown) > SHOWN_UNKNOWN:
        err.print(f"... and {len(unknown) - SHOWN_UNKNOWN} more paths of unknown size")
    err.print(f"prices as of {result.prices.as_of}: {result.prices.source}", markup=False)


def refuse_over_caps(
    args: argparse.Namespace,
    uris: Sequence[str],
    targets: Sequence[str],
    encodings: Sequence[str],
    message_bytes: Sequence[int] = (),
) -> int | None:
    """None when no cap is set or the launch is under them; else print the estimate and
    why, and return the exit code (nothing is sent). Empty ``targets``/``encodings`` mean
    the stack's defaults (then all four encodings)."""
    from edgefill.spend_caps import cap_problems

    if args.max_bytes is None and args.max_usd is None:
        return None
    source = size_source(args)
    targets = list(targets) or list(source.targets)
    if not targets:
        raise OperatorError("the caps need the targets: pass --targets")
    encodings = list(encodings) or list(source.encodings or values.ENCODINGS)
    result, sizes = launch_estimate(args, source, uris, targets, encodings, message_bytes)
    problems = cap_problems(result, args.max_bytes, args.max_usd)
    if not problems:
        err.print(f"under the caps: {human_size(result.bytes)}, ${result.usd:.4f}")
        return None
    print_estimate(result, sizes)
    for problem in problems:
        err.print(f"[red]refused:[/red] {escape(problem)}")
    err.print("nothing sent")
    return EXIT_FAILED
