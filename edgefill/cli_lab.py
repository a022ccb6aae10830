"""The commands that run something on this machine: ``warm``, ``lab up`` and ``demo``.

Kept apart from ``edgefill.cli`` so that the messaging commands never import moto, the
lab's servers or the warm engine.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import threading
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from edgefill.operations import OperatorError, read_paths, split_list

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

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


def add_commands(commands: Any, aws: argparse.ArgumentParser) -> None:
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
    warm.set_defaults(run=run_warm)

    lab = commands.add_parser("lab", help="the local lab")
    lab_commands = lab.add_subparsers(dest="lab_command", required=True, metavar="COMMAND")
    up = lab_commands.add_parser("up", help="start the lab and wait for Ctrl-C")
    up.add_argument("--edge-port", type=int, default=0, help="port for every POP (default: free)")
    up.add_argument(
        "--large-mib", type=int, default=256, help="size of the generated trailer (0: none)"
    )
    up.add_argument("--no-pollers", action="store_true", help="leave the queues unconsumed")
    up.set_defaults(run=run_lab_up)

    demo = commands.add_parser("demo", help="run the narrated lab scenario (make demo)")
    demo.set_defaults(run=run_demo)


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
    return 0 if report.failed == 0 else 1


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


# ---- lab up ---------------------------------------------------------------------------
def run_lab_up(args: argparse.Namespace) -> int:
    from edgefill.lab import catalog
    from edgefill.lab.lab import Lab, LabError, LabSettings

    stop = threading.Event()
    # Ctrl-C (also when a shell started us with SIGINT ignored) and SIGTERM both stop.
    previous = {
        number: signal.signal(number, lambda *_: stop.set())
        for number in (signal.SIGINT, signal.SIGTERM)
    }
    lab = Lab(LabSettings(edge_port=args.edge_port, pollers=not args.no_pollers))
    try:
        try:
            lab.start()
        except LabError as error:
            raise OperatorError(str(error)) from None
        objects = catalog.seed(lab.origin, large_bytes=args.large_mib * 1024 * 1024)
        _print_lab(lab, [o.uri for o in objects])
        with contextlib.suppress(KeyboardInterrupt):
            while not stop.wait(0.5):  # a timed wait lets the signal handler run promptly
                pass
        err.print("stopping the lab…")
    finally:
        lab.stop()
        for number, handler in previous.items():
            signal.signal(number, handler)
    err.print("lab stopped; nothing left running")
    return 0


def _print_lab(lab: Any, uris: list[str]) -> None:
    info = lab.describe()
    table = Table(title="edgefill lab", show_header=False)
    table.add_row("S3 + SQS (moto)", info["moto"])
    table.add_row("bucket", info["bucket"])
    table.add_row("full origin", info["origin"])
    table.add_row("DNS (EDNS client subnet)", info["dns"])
    table.add_row("lab CA bundle", info["ca_bundle"])
    table.add_row("distribution", f"{info['distribution_domain']} / {info['viewer_host']}")
    for pop in info["pops"]:
        table.add_row(
            f"POP {pop['code']}", f"{pop['address']}:{info['edge_port']} ({pop['region']})"
        )
    for name, url in info["queues"].items():
        table.add_row(name, url)
    out.print(table)
    first = info["pops"][0]
    host, port = info["viewer_host"], info["edge_port"]
    queues = info["queues"]
    out.print("\n[bold]Try it[/bold] (another terminal):", markup=True)
    lines = [
        f"curl -sS -D- -o /dev/null --cacert {info['ca_bundle']} "
        f"--resolve {host}:{port}:{first['address']} https://{host}:{port}{uris[4]}",
        f"export AWS_ACCESS_KEY_ID=lab AWS_SECRET_ACCESS_KEY=lab AWS_REGION=us-east-1 "
        f"REQUESTS_CA_BUNDLE={info['ca_bundle']}",
        f'Q="--endpoint-url {info["moto"]}'
        f" --backfill-queue-url {queues['BackfillQueue']}"
        f" --prewarm-queue-url {queues['PrewarmQueue']}"
        f" --backfill-dlq-url {queues['BackfillDLQ']}"
        f' --prewarm-dlq-url {queues["PrewarmDLQ"]}"',
        "edgefill status $Q",
        f"edgefill prewarm $Q --targets ap-northeast-1,FRA56-P1 {uris[3]} {uris[5]}",
        f"edgefill backfill $Q {uris[6]}",
        f"edgefill warm --distribution-domain {info['distribution_domain']} --viewer-host {host} "
        f"--resolver {info['dns']} --edge-port {port} "
        f"--region-subnets '{json.dumps(lab.settings.subnets)}' --allow-private-edges "
        f"--targets sa-east-1 {uris[2]}",
        "edgefill redrive $Q",
    ]
    for line in lines:
        out.print(line, markup=False)
    out.print("\nCtrl-C stops everything.", markup=False)


# ---- demo -----------------------------------------------------------------------------
def run_demo(args: argparse.Namespace) -> int:
    from edgefill.demo import run_demo as demo

    return demo()
