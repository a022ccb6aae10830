"""``edgefill doctor --stack S [--canary PATH] [--json]``: is the deployment wired right?

Eleven checks (see ``edgefill.doctor.checks``), each pass or fail with a detail line and a
remedy line; ``--canary PATH`` then runs one object through the distribution. Exit 0 when
every check passes, 1 when any fails, 2 on bad input (an unknown stack, a bad PATH).

``edgefill edge-logs --stack S [--retention-days N [--create-missing]] [--regions R|all]``
is the fix of the ``edge-logs`` check: the edge function's log groups, one per region
where a replica ran, and their retention (``edgefill.edge_logs``)."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any, Final

from edgefill import operations
from edgefill.commands import aws_flags, values
from edgefill.console import EXIT_FAILED, EXIT_OK, escape, out, spinner
from edgefill.edge_logs import (
    DEFAULT_RETENTION_DAYS,
    RETENTION_DAYS,
    LogsFor,
    edge_function_name,
    edge_log_group,
    edge_regions,
    find_edge_log_groups,
    set_retention,
)
from edgefill.sizes import human_size
from edgefill.stack import StackInfo

if TYPE_CHECKING:
    from edgefill.doctor.checks import Check
    from edgefill.doctor.facts import Clients, Facts

# Seconds ``--canary`` waits for the copy in the bucket (handed to ``run_canary``): the
# help states it without importing ``edgefill.doctor``, whose checks and facts are loaded
# only when ``doctor`` runs (about 30 ms of imports at every start otherwise).
CANARY_WAIT: Final = 180.0


def register(commands: Any) -> None:
    doctor = commands.add_parser(
        "doctor",
        help="check that a deployed stack is wired right",
        description="Check a deployed stack and its distribution: stack state, origin group, "
        "failover criteria, origin-request association at the current version, the queue "
        "header, the bucket policy, methods and encodings, queues and DLQs, event sources, "
        "the viewer protocol of behaviours reaching the bucket, the retention of the edge "
        "function's log groups in every edge region. "
        "Exit 0 when every check passes, 1 when any fails, 2 on bad input.",
    )
    aws_flags.add_to(doctor, "the edgefill stack to check", stack_required=True)
    doctor.add_argument(
        "--distribution-id",
        type=values.distribution_id,
        help="the distribution (default: the stack's, or its parameter)",
    )
    doctor.add_argument(
        "--canary",
        metavar="PATH",
        help=f"GET PATH (at the full origin, not in the bucket) through the distribution and "
        f"wait up to {CANARY_WAIT:.0f}s for its copy in the bucket",
    )
    doctor.add_argument("--json", action="store_true", help='print [{"check", "ok", ...}]')
    doctor.set_defaults(run=run_doctor)

    logs = commands.add_parser(
        "edge-logs",
        help="list the edge function's log groups, or set their retention",
        description="Lambda@Edge logs in the region where each replica ran, to "
        "/aws/lambda/us-east-1.<function>, a group Lambda creates without retention (the "
        "stack cannot: CloudFormation creates resources in its own region only). List that "
        "group in every edge region with its retention; --retention-days N sets it wherever "
        "it exists (--create-missing also creates it, with that retention, where no replica "
        "has logged yet). Exit 0 done, 1 a region failed, 2 bad input.",
    )
    aws_flags.add_to(logs, "the edgefill stack", stack_required=True)
    logs.add_argument(
        "--regions",
        type=values.regions_or_all,
        help="comma-separated regions, or all (every region enabled in the account); "
        "default: the stack's DashboardEdgeRegions",
    )
    logs.add_argument(
        "--retention-days",
        type=values.one_of(RETENTION_DAYS, "a retention CloudWatch Logs offers, in days"),
        metavar="N",
        help=f"set this retention in days (CloudWatch's values: {DEFAULT_RETENTION_DAYS}, 90...)",
    )
    logs.add_argument(
        "--create-missing",
        action="store_true",
        help="with --retention-days: create the group where it does not exist yet",
    )
    logs.add_argument("--json", action="store_true", help="print JSON instead of a table")
    logs.set_defaults(run=run_edge_logs)


def make_clients(args: argparse.Namespace, stack: StackInfo, session: Any) -> Clients:
    from edgefill.doctor.facts import Clients

    endpoint = args.endpoint_url
    bucket_region = stack.output("BucketRegion") or session.region_name
    return Clients(
        cloudformation=operations.make_client(session, "cloudformation", endpoint),
        cloudfront=operations.make_client(session, "cloudfront", endpoint),
        s3=session.client("s3", region_name=bucket_region, endpoint_url=endpoint),
        sqs=operations.make_client(session, "sqs", endpoint),
        lambda_=operations.make_client(session, "lambda", endpoint),
        cloudwatch=operations.make_client(session, "cloudwatch", endpoint),
        logs=logs_in_regions(session, endpoint),
    )


def logs_in_regions(session: Any, endpoint: str | None) -> LogsFor:
    """A CloudWatch Logs client per region, each built once."""
    made: dict[str, Any] = {}

    def logs_for(region: str) -> Any:
        if region not in made:
            made[region] = session.client("logs", region_name=region, endpoint_url=endpoint)
        return made[region]

    return logs_for


def run_doctor(args: argparse.Namespace) -> int:
    from edgefill.doctor.checks import run_checks
    from edgefill.doctor.facts import gather
    from edgefill.doctor.regions import deployment_checks

    canary_uri = operations.as_uri("--canary", args.canary, copied=True) if args.canary else None
    found = aws_flags.deployment(args)
    if found.single_stack:  # a stack from before the split: one stack, every check once
        session = aws_flags.session(args)
        stack = found.edge
        clients = make_clients(args, stack, session)
        with spinner(f"reading stack {args.stack} and its distribution"):
            facts = gather(clients, stack, args.distribution_id)
        results = run_checks(facts)
    else:
        made: dict[str, Clients] = {}

        def facts_of(region: str, view: StackInfo) -> Facts:
            made[region] = make_clients(args, view, aws_flags.session(args, region))
            return gather(made[region], view, args.distribution_id, region=region)

        chosen = found.selected(args.region)
        with spinner(f"reading stack {args.stack}, its distribution and {len(chosen)} regions"):
            results, by_region = deployment_checks(found, facts_of, chosen)
        default = found.default_region if found.default_region in by_region else None
        region = default or next(iter(by_region), None)
        if canary_uri is not None and region is None:
            raise operations.OperatorError("--canary: no region's stack could be read")
        if region is not None:
            facts, clients = by_region[region], made[region]
    if not args.json:
        print_checks(results)
    if canary_uri is not None:
        results.append(canary(canary_uri, facts, clients))
        if not args.json:
            print_checks(results[-1:], start=len(results))
    if args.json:
        out.print(json.dumps([r.as_json() for r in results], indent=2), markup=False)
    return EXIT_OK if all(r.ok for r in results) else EXIT_FAILED


def canary(uri: str, facts: Facts, clients: Clients) -> Check:
    from edgefill.doctor.canary import http_fetch, run_canary
    from edgefill.doctor.checks import Check
    from shared.keys import InvalidKey, ObjectKey

    stack = facts.stack
    params = stack.parameters
    bucket = stack.output("BucketName")
    if not bucket or not params.get("FullOriginDomain"):
        return Check("canary", False, "the stack names no bucket or full origin", "")
    protocol = params.get("FullOriginProtocol") or "https"
    origin = f"{protocol}://{params['FullOriginDomain']}{params.get('FullOriginPath', '')}"
    try:
        key = ObjectKey.from_uri(uri.partition("?")[0], params.get("KeyPrefix", "")).key
    except InvalidKey as error:
        raise operations.OperatorError(f"--canary: {error}") from None
    host = viewer_host(facts)
    with spinner(f"canary {uri} via {host}") as status:
        return run_canary(
            uri,
            origin=http_fetch(origin),
            viewer=http_fetch(f"https://{host}"),
            s3=clients.s3,
            bucket=bucket,
            key=key,
            max_wait=CANARY_WAIT,
            progress=lambda waited: status.update(
                f"canary: waiting for {key} in the bucket ({waited:.0f}s of {CANARY_WAIT:.0f}s)"
            ),
        )


def viewer_host(facts: Facts) -> str:
    """The first alternate domain name that is a host (a wildcard alias ``*.example.com``
    names none) when the distribution has its own certificate, else its CloudFront
    domain."""
    config = facts.distribution if isinstance(facts.distribution, dict) else {}
    aliases = [str(alias) for alias in (config.get("Aliases") or {}).get("Items") or []]
    hosts = [alias for alias in aliases if "*" not in alias]
    certificate = config.get("ViewerCertificate") or {}
    if hosts and not certificate.get("CloudFrontDefaultCertificate", False):
        return hosts[0]
    return facts.stack.output("DistributionDomain") or ""


def run_edge_logs(args: argparse.Namespace) -> int:
    from rich.table import Table

    if args.create_missing and args.retention_days is None:
        raise operations.OperatorError("--create-missing: only with --retention-days N")
    session = aws_flags.session(args)
    stack = aws_flags.deployment(args).edge
    function = edge_function_name(stack)
    if function is None:
        raise operations.OperatorError(
            f"stack {args.stack!r} has no EdgeFunctionVersionArn output naming its edge function"
        )
    group = edge_log_group(function)
    regions = _regions(args, stack, session)
    logs_for = logs_in_regions(session, args.endpoint_url)
    with spinner(f"reading {group} in {len(regions)} regions"):
        found = find_edge_log_groups(logs_for, group, regions)
    if args.retention_days is None:
        rows = [_listed(region, state) for region, state in found.items()]
        failed = any(isinstance(state, str) for state in found.values())
    else:
        changes = set_retention(
            logs_for, group, found, args.retention_days, create_missing=args.create_missing
        )
        rows = [(c.region, c.action, c.detail) for c in changes]
        failed = any(c.action == "failed" for c in changes)
    if args.json:
        keys = ("region", "retention" if args.retention_days is None else "action", "detail")
        out.print(json.dumps([dict(zip(keys, row, strict=True)) for row in rows]), markup=False)
    else:
        table = Table(title=escape(group))
        for column in ("region", "retention" if args.retention_days is None else "action", ""):
            table.add_column(column)
        for row in rows:
            table.add_row(*(escape(cell) for cell in row))
        out.print(table)
    return EXIT_FAILED if failed else EXIT_OK


def _regions(args: argparse.Namespace, stack: StackInfo, session: Any) -> tuple[str, ...]:
    if not args.regions:
        return edge_regions(stack)
    if args.regions.strip() != "all":
        return tuple(operations.split_list([args.regions]) or ())
    ec2 = operations.make_client(session, "ec2", args.endpoint_url)
    try:
        return tuple(sorted(r["RegionName"] for r in ec2.describe_regions()["Regions"]))
    except Exception as error:  # noqa: BLE001 - any failure is the operator's to see
        raise operations.OperatorError(f"--regions all: DescribeRegions failed: {error}") from None


def _listed(region: str, state: Any) -> tuple[str, str, str]:
    if isinstance(state, str):
        return region, "error", state
    if state is None:
        return region, "—", "no group (no replica has logged here)"
    kept = "never expires" if state.retention_days is None else f"{state.retention_days} days"
    return region, kept, f"{human_size(state.stored_bytes)} stored"


def print_checks(results: list[Check], start: int = 1) -> None:
    from rich.table import Table

    table = Table(show_header=start == 1, title="edgefill doctor" if start == 1 else None)
    table.add_column("#", justify="right")
    table.add_column("check")
    table.add_column("", justify="center")
    table.add_column("detail")
    for number, result in enumerate(results, start):
        mark = "[green]✓[/green]" if result.ok else "[red]✗[/red]"
        name = f"{result.check} ({result.region})" if result.region else result.check
        table.add_row(str(number), escape(name), mark, escape(result.detail))
    out.print(table)
    for number, result in enumerate(results, start):
        if not result.ok and result.remedy:
            where = f" ({result.region})" if result.region else ""
            out.print(
                f"  {number} {escape(result.check + where)}: [bold]remedy:[/bold] "
                f"{escape(result.remedy)}"
            )
