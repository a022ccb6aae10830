"""``edgefill estimate``: what a prewarm launch would move and cost, before sending it.

Sizes come from the regional bucket (HeadObject, in parallel), with ``--origin-url`` as a
HEAD fallback for paths the bucket lacks; prices from the built-in dated table or
``--prices FILE``. Figures are upper bounds (see ``edgefill.cost_estimate``)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from edgefill import operations
from edgefill.commands import sizing, values
from edgefill.commands.path_flags import add_paths
from edgefill.console import EXIT_OK, out
from edgefill.operations import OperatorError


def register(commands: Any) -> None:
    estimate = commands.add_parser(
        "estimate",
        help="warms, bytes and dollars a prewarm would cost",
        description="Estimate a prewarm launch: warms, bytes (stored size × targets × "
        "encodings, an upper bound) and dollars by target and in total, from each path's "
        "size in the bucket and a dated public price table.",
    )
    add_paths(estimate)
    estimate.add_argument(
        "--targets", action="append", help="regions or POP codes (default: the stack's)"
    )
    estimate.add_argument(
        "--encodings", action="append", help=f"comma-separated, from {', '.join(values.ENCODINGS)}"
    )
    estimate.add_argument(
        "--paths-per-message",
        type=values.whole(1, values.MAX_PATHS, "a number of paths"),
        default=operations.DEFAULT_PATHS_PER_MESSAGE,
        metavar="N",
        help="as for prewarm: the messages' count and size price the queue and worker",
    )
    estimate.add_argument("--json", action="store_true", help="print the estimate as JSON")
    sizing.add_size_flags(estimate, with_stack=True)
    estimate.set_defaults(run=run_estimate)


def run_estimate(args: argparse.Namespace) -> int:
    from edgefill.commands.queue_commands import check_typed_targets

    check_typed_targets(args)
    source = sizing.size_source(args)
    targets = operations.split_list(args.targets) or list(source.targets)
    if not targets:
        raise OperatorError("no targets: pass --targets (or --stack with PrewarmTargets)")
    encodings = operations.split_list(args.encodings) or list(source.encodings or values.ENCODINGS)
    paths = operations.read_paths(args.paths, args.paths_file)
    # The very messages `edgefill prewarm` would send: same validation, same chunking.
    bodies = operations.prewarm_bodies(paths, targets, encodings, None, args.paths_per_message)
    uris = [operations.as_uri(where, path) for where, path in paths]
    result, sizes = sizing.launch_estimate(
        args, source, uris, targets, encodings, [len(body.encode()) for body in bodies]
    )
    if args.json:
        out.print(json.dumps(result.as_json(), indent=2), markup=False)
    else:
        sizing.print_estimate(result, sizes)
    return EXIT_OK
