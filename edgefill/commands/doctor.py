"""``edgefill doctor --stack S [--canary PATH] [--json]``: is the deployment wired right?

Nine checks (see ``edgefill.doctor.checks``), each pass or fail with a detail line and a
remedy line; ``--canary PATH`` then runs one object through the distribution. Exit 0 when
every check passes, 1 when any fails, 2 on bad input (an unknown stack, a bad PATH)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from rich.markup import escape
from rich.table import Table

from edgefill import operations
from edgefill.console import EXIT_FAILED, EXIT_OK, err, out
from edgefill.doctor.canary import MAX_WAIT, http_fetch, run_canary
from edgefill.doctor.checks import Check, run_checks
from edgefill.doctor.facts import Clients, Facts, gather
from edgefill.stack import StackInfo, read_stack
from shared.keys import InvalidKey, ObjectKey


def register(commands: Any) -> None:
    doctor = commands.add_parser(
        "doctor",
        help="check that a deployed stack is wired right",
        description="Check a deployed stack and its distribution: stack state, origin group, "
        "failover criteria, origin-request association at the current version, the queue "
        "header, the bucket policy, methods and encodings, queues and DLQs, event sources. "
        "Exit 0 when every check passes, 1 when any fails, 2 on bad input.",
    )
    doctor.add_argument("--stack", required=True, help="the edgefill stack to check")
    doctor.add_argument("--region", help="the stack's region (default: AWS_REGION / profile)")
    doctor.add_argument("--endpoint-url", help="AWS endpoint, e.g. the lab's moto server")
    doctor.add_argument(
        "--distribution-id", help="the distribution (default: the stack's, or its parameter)"
    )
    doctor.add_argument(
        "--canary",
        metavar="PATH",
        help=f"GET PATH (at the full origin, not in the bucket) through the distribution and "
        f"wait up to {MAX_WAIT:.0f}s for its copy in the bucket",
    )
    doctor.add_argument("--json", action="store_true", help='print [{"check", "ok", ...}]')
    doctor.set_defaults(run=run_doctor)


def make_clients(args: argparse.Namespace, stack: StackInfo, session: Any) -> Clients:
    endpoint = args.endpoint_url
    bucket_region = stack.output("BucketRegion") or session.region_name
    return Clients(
        cloudformation=operations.make_client(session, "cloudformation", endpoint),
        cloudfront=operations.make_client(session, "cloudfront", endpoint),
        s3=session.client("s3", region_name=bucket_region, endpoint_url=endpoint),
        sqs=operations.make_client(session, "sqs", endpoint),
        lambda_=operations.make_client(session, "lambda", endpoint),
        cloudwatch=operations.make_client(session, "cloudwatch", endpoint),
    )


def run_doctor(args: argparse.Namespace) -> int:
    canary_uri = operations.as_uri("--canary", args.canary, copied=True) if args.canary else None
    session = operations.aws_session(args.region)
    stack = read_stack(
        operations.make_client(session, "cloudformation", args.endpoint_url), args.stack
    )
    clients = make_clients(args, stack, session)
    with err.status(f"reading stack {args.stack} and its distribution"):
        facts = gather(clients, stack, args.distribution_id)
    results = run_checks(facts)
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
    with err.status(f"canary {uri} via {host}") as status:
        return run_canary(
            uri,
            origin=http_fetch(origin),
            viewer=http_fetch(f"https://{host}"),
            s3=clients.s3,
            bucket=bucket,
            key=key,
            progress=lambda waited: status.update(
                f"canary: waiting for {key} in the bucket ({waited:.0f}s of {MAX_WAIT:.0f}s)"
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


def print_checks(results: list[Check], start: int = 1) -> None:
    table = Table(show_header=start == 1, title="edgefill doctor" if start == 1 else None)
    table.add_column("#", justify="right")
    table.add_column("check")
    table.add_column("", justify="center")
    table.add_column("detail")
    for number, result in enumerate(results, start):
        mark = "[green]✓[/green]" if result.ok else "[red]✗[/red]"
        table.add_row(str(number), result.check, mark, escape(result.detail))
    out.print(table)
    for number, result in enumerate(results, start):
        if not result.ok and result.remedy:
            out.print(f"  {number} {result.check}: [bold]remedy:[/bold] {escape(result.remedy)}")
