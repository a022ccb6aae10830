"""``edgefill warm``: run the prewarm worker's engine from this machine now (no Lambda).

The engine, the DNS resolver, the worker's settings and rich are imported only when the
command runs, so ``--help`` and the other commands never load them; a run imports only what
it uses (issue 23): the engine and its edge client, never the Lambda handler's module
(Powertools, SQS, the dead-letter queue), the playlist expansion only with ``--expand``,
and rich's progress bar only when stderr is a terminal. The settings are the
worker's (``WarmContext.for_config``): ``--concurrency``/``EDGEFILL_CONCURRENCY`` and
``EDGEFILL_REQUEST_ATTEMPTS`` apply here as in Lambda.

Ctrl-C (``edgefill.interrupts``): the engine's ``cancel`` event is set, so no task starts
and none is retried; the command waits at most 2 s for the requests in flight, then prints
what was done ("583 of 6 400 warmed; 0 failed; stopped by the operator"; with ``--json``
the partial report with ``"interrupted": true``) and exits 130. When the engine has not
returned by then, the report is the command's own tally of the results that came in.
"""

from __future__ import annotations

import argparse
import json
import threading
from typing import Any

from edgefill import console
from edgefill.commands import sizing
from edgefill.commands.edge_flags import (
    add_edge_flags,
    from_stack,
    prewarm_config,
    targets_and_encodings,
)
from edgefill.commands.path_flags import add_paths
from edgefill.console import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, err, out
from edgefill.edge_grid import NOT_RUN, EdgeGrid, print_grid, warm_state
from edgefill.interrupts import abandon, report_stopped, run_stoppable
from edgefill.operations import read_paths
from edgefill.sizes import human_size

SHOWN_FAILURES = 20
# warm's own flags (argparse dest → the worker's variable), beyond the shared edge flags.
WARM_FLAGS = {
    "warm_http": "EDGEFILL_WARM_HTTP",
    "streams": "EDGEFILL_WARM_STREAMS",
    "streams_per_edge": "EDGEFILL_WARM_STREAMS_PER_EDGE",
}


def register(commands: Any) -> None:
    warm = commands.add_parser(
        "warm",
        help="warm paths at edges from this machine now (no Lambda)",
        description="Runs the prewarm worker's engine here. Settings default to the "
        "EDGEFILL_* variables the worker reads; flags override them. Ends with a table per "
        "target and a grid of targets × encodings. Ctrl-C stops at once: no new request, "
        "at most 2 s for those in flight, a partial report, exit 130.",
    )
    add_paths(warm)
    add_edge_flags(warm)
    warm.add_argument("--json", action="store_true", help="print the report as JSON")
    sizing.add_cap_flags(warm, with_stack=True)
    warm.add_argument(
        "--expand",
        action="store_true",
        help="playlists and manifests (HLS, DASH) also warm what they reference",
    )
    warm.add_argument(
        "--http1.1",
        dest="warm_http",
        action="store_const",
        const="1.1",
        help="HTTP/1.1 keep-alive only (default: HTTP/2 to each edge that offers it)",
    )
    warm.add_argument("--streams", help="HTTP/2 streams in flight in total (default 128)")
    warm.add_argument(
        "--streams-per-edge",
        help="HTTP/2 streams on one edge at once (default 100; never above the edge's limit)",
    )
    warm.set_defaults(run=run_warm)


class WarmTally:
    """What the command saw of a run, result by result (the engine calls ``record`` one
    result at a time): the grid, and a report of its own for when the engine does not
    return within the grace of a Ctrl-C. ``freeze`` ends it: results of requests still
    in flight afterwards are not counted in the report being printed."""

    def __init__(self, plan: Any) -> None:
        from prewarm_worker.engine import WarmReport

        self.report = WarmReport(tasks=plan.size)
        self.grid = EdgeGrid.of(plan.targets, plan.encodings)
        self._lock = threading.Lock()
        self._frozen = False

    def record(self, result: Any) -> None:
        with self._lock:
            if self._frozen:
                return
            self.report.record(result)
            self.grid.add(result.task.target, result.task.encoding, warm_state(result))

    def freeze(self) -> None:
        with self._lock:
            self._frozen = True

    def not_run(self, tasks: Any) -> None:
        """Tasks the engine left out (a Ctrl-C, a byte cap)."""
        for task in tasks:
            self.grid.add(task.target, task.encoding, NOT_RUN)


# ---- warm -----------------------------------------------------------------------------
def run_warm(args: argparse.Namespace) -> int:
    from edgefill.operations import as_uri
    from prewarm_worker import engine
    from shared.edge_http2 import edge_client_for
    from shared.edns import EdgeResolver

    from_stack(args)  # --stack: the distribution domain and viewer host
    # No re-enqueue from here; the HTTP/2 stream flags are warm's own.
    config = prewarm_config(args, unset=("EDGEFILL_PREWARM_QUEUE_URL",), more_flags=WARM_FLAGS)
    paths = [as_uri(where, path) for where, path in read_paths(args.paths, args.paths_file)]
    targets, encodings = targets_and_encodings(args, paths, config)
    refused = sizing.refuse_over_caps(args, paths, targets, encodings)
    if refused is not None:
        return refused
    # What the worker's runtime would hold for this config (no queue, so no SQS client).
    resolver = EdgeResolver(config.resolver_host, config.resolver_port)
    stop = threading.Event()
    context = engine.WarmContext.for_config(config, resolver, edge_client_for(config), cancel=stop)
    plan = engine.plan_from(paths, targets, encodings, config.viewer_host)
    tally = WarmTally(plan)
    with _progress_display() as progress:
        bar = progress.add_task("warm", total=plan.size, failed=0)

        def advance(result: Any) -> None:
            tally.record(result)
            progress.update(bar, advance=1, failed=tally.report.failed)

        def work() -> Any:
            if args.expand:  # video: the tree below each playlist too, in passes (bounded)
                from prewarm_worker.expand import warm_tree

                progress.update(bar, total=None)
                return warm_tree(plan, context, progress=advance)
            return engine.warm(plan, context, progress=advance)

        stopped = run_stoppable(work, stop)
        tally.freeze()
    expansion = stopped.value if args.expand else None
    if stopped.finished and stopped.value is not None:
        report = expansion.report if expansion is not None else stopped.value
        tally.not_run([*report.cancelled, *report.capped])
    else:
        report = tally.report  # the engine is still busy: what came in, and nothing after
    code = EXIT_OK if report.failed == 0 else EXIT_FAILED
    if stopped.interrupted:
        code = EXIT_INTERRUPTED
    if args.json:
        summary = report.summary()
        if expansion is not None:
            from prewarm_worker.expand import expansion_summary

            summary |= expansion_summary(expansion)
        summary["interrupted"] = stopped.interrupted
        summary["notDone"] = max(0, report.tasks - report.ok - report.failed)
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
        print_grid(tally.grid, f"warm: {console.plural(len(set(plan.paths)), 'path')}")
    if stopped.interrupted:
        report_stopped(report.ok, report.tasks, "warmed", report.failed)
    if not stopped.finished:
        abandon(code)
    return code


def _progress_display() -> Any:
    """The warm's progress bar on a terminal; where nothing live shows, its silent twin."""
    if not console.shows_live():
        return console.SilentProgress()
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn

    return console.progress_bar(
        TextColumn("[bold]warming"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[failed]} failed"),
        TimeElapsedColumn(),
    )


def _print_warm_table(report: Any) -> None:
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"warm: {console.count(report.tasks)} tasks in {report.seconds:.1f}s")
    for column in ("target", "POP", "edge", "ok", "failed", "hits", "misses", "bytes"):
        table.add_column(column, justify="left" if column in ("target", "POP", "edge") else "right")
    for target, totals in report.targets.items():
        # Targets and errors (DNS names, resolver text) are shown as they are, never as markup.
        table.add_row(
            escape(target),
            escape(totals.pop or "—"),
            escape(totals.edge)
            if totals.edge
            else f"[red]{escape(totals.error or 'unresolved')}[/red]",
            console.count(totals.ok),
            console.count(totals.failed),
            console.count(totals.hits),
            console.count(totals.misses),
            human_size(totals.bytes),
            style="red" if totals.failed else None,
        )
    out.print(table)
    for failure in report.failures[:SHOWN_FAILURES]:
        detail = f"{failure.task.target} {failure.task.encoding} {failure.task.path}: "
        err.print(f"[red]failed[/red] {escape(detail + str(failure.error or failure.status))}")
    if len(report.failures) > SHOWN_FAILURES:
        err.print(f"... and {len(report.failures) - SHOWN_FAILURES} more failures")
