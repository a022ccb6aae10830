"""``edgefill warm``: run the prewarm worker's engine from this machine now (no Lambda).

The engine, the DNS resolver and the worker's settings are imported only when the
command runs, so the other commands never load them."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from edgefill.commands import sizing
from edgefill.console import EXIT_FAILED, EXIT_OK, err, out
from edgefill.operations import OperatorError, read_paths, split_list

# ``edgefill warm`` flags → the prewarm worker's variables they stand for.
_WARM_FLAGS = {
    "distribution_domain": "EDGEFILL_DISTRIBUTION_DOMAIN",
    "viewer_host": "EDGEFILL_VIEWER_HOST",
    "resolver": "EDGEFILL_RESOLVER",
    "edge_port": "EDGEFILL_EDGE_PORT",
    "protocol": "EDGEFILL_PROTOCOL",
    "concurrency": "EDGEFILL_CONCURRENCY",
    "region_subnets": "EDGEFILL_REGION_SUBNETS",
    "allow_private_edges": "EDGEFILL_ALLOW_PRIVATE_EDGES",
}


def register(commands: Any) -> None:
    warm = commands.add_parser(
        "warm",
        help="warm paths at edges from this machine now (no Lambda)",
        description="Runs the prewarm worker's engine here. Settings default to the "
        "EDGEFILL_* variables the worker reads; flags override them.",
    )
    warm.add_argument("paths", nargs="*", metavar="PATH")
    warm.add_argument("--paths-file")
    warm.add_argument("--targets", action="append", help="regions or POP codes, comma-separated")
    warm.add_argument("--encodings", action="append", help="comma-separated encodings")
    warm.add_argument("--distribution-domain", help="dxxxx.cloudfront.net")
    warm.add_argument("--viewer-host", help="Host and SNI sent to edges")
    warm.add_argument("--resolver", help="DNS resolver host[:port] (default 8.8.8.8)")
    warm.add_argument("--edge-port", help="port edges answer on (lab)")
    warm.add_argument("--protocol", choices=("https", "http"))
    warm.add_argument("--concurrency", help="parallel requests")
    warm.add_argument("--region-subnets", help="JSON object region → client subnet")
    warm.add_argument(
        "--allow-private-edges",
        action="store_const",
        const="true",
        help="accept edges on private or loopback addresses (the lab only)",
    )
    warm.add_argument("--json", action="store_true", help="print the report as JSON")
    sizing.add_cap_flags(warm, with_stack=True)
    warm.set_defaults(run=run_warm)


# ---- warm -----------------------------------------------------------------------------
def run_warm(args: argparse.Namespace) -> int:
    from edgefill.operations import as_uri
    from prewarm_worker.engine import plan_from, warm
    from prewarm_worker.worker import build_runtime
    from shared.config import ConfigError, PrewarmConfig
    from shared.messages import ENCODINGS, MessageError, PrewarmMessage

    env = dict(os.environ)
    for flag, variable in _WARM_FLAGS.items():
        value = getattr(args, flag)
        if value is not None:
            env[variable] = str(value)
    env.pop("EDGEFILL_PREWARM_QUEUE_URL", None)  # nothing is re-enqueued from a terminal
    try:
        config = PrewarmConfig.from_env(env)
    except ConfigError as error:
        named = next((f for f, v in _WARM_FLAGS.items() if v == error.variable), None)
        option = f"--{named.replace('_', '-')}" if named else error.variable
        raise OperatorError(f"{option}: {error.reason}") from None
    paths = [as_uri(where, path) for where, path in read_paths(args.paths, args.paths_file)]
    targets: list[str] = split_list(args.targets) or list(config.targets)
    if not targets:
        raise OperatorError("no targets: pass --targets or set EDGEFILL_TARGETS")
    encodings = split_list(args.encodings) or list(config.encodings or ENCODINGS)
    try:  # the same rules as a prewarm message
        PrewarmMessage(
            paths=tuple(paths[:1000]), targets=tuple(targets), encodings=tuple(encodings)
        )
    except MessageError as error:
        raise OperatorError(f"--{error.field.split('[')[0]}: {error.reason}") from None
    refused = sizing.refuse_over_caps(args, paths, targets, encodings)
    if refused is not None:
        return refused
    runtime = build_runtime(config)
    plan = plan_from(paths, targets, encodings, config.viewer_host)
    with Progress(
        TextColumn("[bold]warming"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[failed]} failed"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as progress:
        task = progress.add_task("warm", total=plan.size, failed=0)
        failed = 0

        def advance(result: Any) -> None:
            nonlocal failed
            failed += 0 if result.ok else 1
            progress.update(task, advance=1, failed=failed)

        report = warm(plan, config, runtime.resolver, runtime.client, progress=advance)
    if args.json:
        summary = report.summary()
        summary["failures"] = [
            {
                "path": f.task.path,
                "target": f.task.target,
                "encoding": f.task.encoding,
                "status": f.status,
                "error": f.error,
            }
            for f in report.failures
        ]
        out.print(json.dumps(summary, indent=2), markup=False)
    else:
        _print_warm_table(report)
    return EXIT_OK if report.failed == 0 else EXIT_FAILED


def _print_warm_table(report: Any) -> None:
    table = Table(title=f"warm: {report.tasks} tasks in {report.seconds:.1f}s")
    for column in ("target", "edge", "ok", "failed", "hits", "misses", "bytes"):
        table.add_column(column, justify="left" if column in ("target", "edge") else "right")
    for target, totals in report.targets.items():
        table.add_row(
            target,
            totals.edge or f"[red]{totals.error or 'unresolved'}[/red]",
            str(totals.ok),
            str(totals.failed),
            str(totals.hits),
            str(totals.misses),
            str(totals.bytes),
            style="red" if totals.failed else None,
        )
    out.print(table)
    for failure in report.failures[:20]:
        err.print(
            f"[red]failed[/red] {failure.task.target} {failure.task.encoding} "
            f"{failure.task.path}: {failure.error or failure.status}"
        )
    if len(report.failures) > 20:
        err.print(f"... and {len(report.failures) - 20} more failures")
