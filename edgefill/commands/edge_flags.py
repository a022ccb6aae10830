"""The flags that say how to find and ask edges, shared by ``edgefill warm`` and
``edgefill check``, and the prewarm settings, targets and encodings they come to.

Each flag stands for one of the prewarm worker's variables; the worker's settings are
read as it reads them (``PrewarmConfig``), with the flags laid over the environment. The
config and message models are imported only when a command runs."""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final

from edgefill.operations import OperatorError, split_list

if TYPE_CHECKING:
    from shared.config import PrewarmConfig

# flag (argparse dest) → the prewarm worker's variable it stands for.
EDGE_FLAGS: Final = {
    "distribution_domain": "EDGEFILL_DISTRIBUTION_DOMAIN",
    "viewer_host": "EDGEFILL_VIEWER_HOST",
    "resolver": "EDGEFILL_RESOLVER",
    "edge_port": "EDGEFILL_EDGE_PORT",
    "protocol": "EDGEFILL_PROTOCOL",
    "concurrency": "EDGEFILL_CONCURRENCY",
    "region_subnets": "EDGEFILL_REGION_SUBNETS",
    "allow_private_edges": "EDGEFILL_ALLOW_PRIVATE_EDGES",
}
# The accepted form of each, added to the worker's reason when a value is refused.
ACCEPTED: Final = {
    "distribution_domain": "a host name such as d111111abcdef8.cloudfront.net",
    "viewer_host": "a host name such as cdn.example.com",
    "resolver": "an IP address[:port] such as 8.8.8.8 or 127.0.0.1:5353",
    "edge_port": "a port from 1 to 65535",
    "concurrency": "a whole number from 1 to 256",
    "streams": "a whole number from 1 to 1024",
    "streams_per_edge": "a whole number from 1 to 1000",
    "region_subnets": 'a JSON object such as {"us-east-1": "198.51.100.0/24"}',
}


def add_edge_flags(parser: Any) -> None:
    """``--targets``, ``--encodings`` and the flags of EDGE_FLAGS, on ``parser``."""
    parser.add_argument("--targets", action="append", help="regions or POP codes, comma-separated")
    parser.add_argument(
        "--encodings", action="append", help="comma-separated, from br+gzip, gzip, br, identity"
    )
    parser.add_argument("--distribution-domain", help="dxxxx.cloudfront.net")
    parser.add_argument("--viewer-host", help="Host and SNI sent to edges")
    parser.add_argument("--resolver", help="DNS resolver host[:port] (default 8.8.8.8)")
    parser.add_argument("--edge-port", help="port edges answer on (lab)")
    parser.add_argument("--protocol", choices=("https", "http"))
    parser.add_argument("--concurrency", help="parallel requests")
    parser.add_argument("--region-subnets", help="JSON object region → client subnet")
    parser.add_argument(
        "--allow-private-edges",
        action="store_const",
        const="true",
        help="accept edges on private or loopback addresses (the lab only)",
    )


def from_stack(args: argparse.Namespace) -> None:
    """With ``--stack``: the distribution domain and the viewer host of the edge stack's
    outputs, where the flags do not name them (a flag given wins)."""
    if not getattr(args, "stack", None):
        return
    from edgefill.commands import aws_flags
    from edgefill.deployment import required

    edge = aws_flags.deployment(args).checked_edge()
    if args.distribution_domain is None:
        args.distribution_domain = required(edge, "DistributionDomain")
    if args.viewer_host is None:
        args.viewer_host = edge.output("ViewerHost") or edge.parameters.get("ViewerHost")


def prewarm_config(
    args: argparse.Namespace, unset: Iterable[str], more_flags: Mapping[str, str] | None = None
) -> PrewarmConfig:
    """The worker's settings from the environment with the flags laid over it and the
    ``unset`` variables removed; a bad value is an OperatorError naming its flag (or its
    variable, when it came from the environment). ``more_flags`` are a command's own
    flags (dest → variable) beyond EDGE_FLAGS (``warm``'s HTTP/2 streams)."""
    from shared.config import ConfigError, PrewarmConfig

    flags = {**EDGE_FLAGS, **(more_flags or {})}
    env = dict(os.environ)
    for flag, variable in flags.items():
        value = getattr(args, flag)
        if value is not None:
            env[variable] = str(value)
    for variable in unset:
        env.pop(variable, None)
    try:
        return PrewarmConfig.from_env(env)
    except ConfigError as error:
        named = next((f for f, v in flags.items() if v == error.variable), None)
        option = f"--{named.replace('_', '-')}" if named else error.variable
        form = f" (expected {ACCEPTED[named]})" if named in ACCEPTED else ""
        raise OperatorError(f"{option}: {error.reason}{form}") from None


def targets_and_encodings(
    args: argparse.Namespace, paths: list[str], config: PrewarmConfig
) -> tuple[list[str], list[str]]:
    """The targets and encodings of the flags, else of the settings, checked with the
    rules of a prewarm message (against the first 1,000 paths); a region target must have
    a client subnet (the built-in table, EDGEFILL_REGION_SUBNETS, --region-subnets)."""
    from edgefill.targets import check_targets
    from shared.edns import REGION_SUBNETS
    from shared.messages import ENCODINGS, MessageError, PrewarmMessage

    typed = split_list(args.targets)
    targets: list[str] = typed or list(config.targets)
    if not targets:
        raise OperatorError("no targets: pass --targets or set EDGEFILL_TARGETS")
    regions = set(REGION_SUBNETS) | {region for region, _ in config.region_subnets}
    adding = "--region-subnets or EDGEFILL_REGION_SUBNETS adds one"
    check_targets(targets, regions, "--targets" if typed else "EDGEFILL_TARGETS", adding)
    encodings: list[str] = split_list(args.encodings) or list(config.encodings or ENCODINGS)
    try:  # the same rules as a prewarm message
        PrewarmMessage(
            paths=tuple(paths[:1000]), targets=tuple(targets), encodings=tuple(encodings)
        )
    except MessageError as error:
        raise OperatorError(f"--{error.field.split('[')[0]}: {error.reason}") from None
    return targets, encodings
