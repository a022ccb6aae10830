"""``edgefill warm``: run the prewarm worker's engine from this machine now (no Lambda).

The engine, the DNS resolver and the worker's settings are imported only when the
command runs, so the other commands never load them."""

from __future__ import annotations

import argparse
import json
from typing import Any

from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from edgefill.commands import sizing
from edgefill.commands.edge_flags import add_edge_flags, prewarm_config, targets_and_encodings
from edgefill.console import EXIT_FAILED, EXIT_OK, err, out
from edgefill.operations import read_paths


def register(commands: Any) -> None:
    warm = commands.add_parser(
        "warm",
        help="warm paths at edges from this machine now (no Lambda)",
        description="Runs the prewarm worker's engine here. Settings default to the "
        "EDGEFILL_* variables the worker reads; flags override them.",
    )
    warm.add_argument("paths", nargs="*", metavar="PATH")
    warm.add_argument("--paths-file")
    add_edge_flags(warm)
    warm.add_argument("--json", action="store_true", help="print the report as JSON")
    sizing.add_cap_flags(warm, with_stack=True)
    warm.add_argument(
        "--expand",
        action="store_true",
        help="playlists and manifests (HLS, DASH) also warm what they reference",
    )
    warm.set_defaults(run=run_warm)


# ---- warm -----------------------------------------------------------------------------
def run_warm(args: argparse.Namespace) -> int:
    from edgefill.operations import as_uri
    from prewarm_worker.engine import WarmContext, plan_from, warm
    from prewarm_worker.expand import expansion_summary, warm_tree
    from prewarm_worker.worker import build_runtime

    config = prewarm_config(args, unset=("EDGEFILL_PREWARM_QUEUE_URL",))  # no re-enqueue here
    paths = [as_uri(where, path) for where, path in read_paths(args.paths, args.paths_file)]
    targets, encodings = targets_and_encodings(args, paths, config)
    refused = sizing.refuse_over_caps(args, paths, targets, encodings)
    if refused is not None:
        return refused
    runtime = build_runtime(config)
    context = WarmContext(config, runtime.resolver, runtime.client)
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

        expansion = None
        if args.expand:  # video: the tree below each playlist too, in passes (bounded)
            progress.update(task, total=None)
            expansion = warm_tree(plan, context, progress=advance)
            report = expansion.report
        else:
            report = warm(plan, context, progress=advance)
    if args.json:
        summary = report.summary() | expansion_summary(expansion)
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
        manifests = expansion.summary()["manifests"] if expansion is not None else {}
        for path, counts in manifests.items():
            out.print(f"expanded {path}: {json.dumps(counts)}", markup=False)
    return EXIT_OK if report.failed == 0 else EXIT_FAILED


def _print_warm_table(report: Any) -> None:
    table = Table(title=f"warm: {report.tasks} tasks in {report.seconds:.1f}s")
    for column in ("target", "edge", "ok", "failed", "hits", "misses", "bytes"):
        table.add_column(column, justify="left" if column in ("target", "edge") else "right")
    for target, totals in report.targets.items():
        # Targets and errors (DNS names, resolver text) are shown as they are, never as markup.
        table.add_row(
            escape(target),
            escape(totals.edge)
            if totals.edge
            else f"[red]{escape(totals.error or 'unresolved')}[/red]",
            str(totals.ok),
            str(totals.failed),
            str(totals.hits),
            str(totals.misses),
            str(totals.bytes),
            style="red" if totals.failed else None,
        )
    out.print(table)
    for failure in report.failures[:20]:
        detail = f"{failure.task.target} {failure.task.encoding} {failure.task.path}: "
        err.print(f"[red]failed[/red] {escape(detail + str(failure.error or failure.status))}")
    if len(report.failures) > 20:
        err.print(f"... and {len(report.failures) - 20} more failures")
