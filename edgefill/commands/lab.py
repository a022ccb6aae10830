"""The commands that run the local lab: ``lab up`` (start it and wait for Ctrl-C) and
``demo`` (the narrated scenario behind ``make demo``).

The lab and the demo are imported only when a command runs. The demo runs operator
commands through the ``operator`` callable the CLI's entry point injects (``args.operator``),
so the demo never imports the CLI back."""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import threading
from typing import Any

from edgefill.commands import values
from edgefill.console import EXIT_OK, err, out
from edgefill.json_keys import camel_case
from edgefill.operations import OperatorError


def register(commands: Any) -> None:
    lab = commands.add_parser(
        "lab",
        help="the local lab",
        description="The local lab: moto as S3 and SQS, a full origin, HTTPS POPs and an "
        "EDNS DNS server, all on loopback.",
    )
    lab_commands = lab.add_subparsers(dest="lab_command", required=True, metavar="COMMAND")
    up = lab_commands.add_parser(
        "up",
        help="start the lab and wait for Ctrl-C",
        description="Start the lab, seed the full origin, print its endpoints and the "
        "commands to try once, and run until Ctrl-C or SIGTERM. The handlers' logs (JSON "
        "lines, EMF metrics) go to a log file named in the table; --verbose shows them here.",
    )
    up.add_argument(
        "--edge-port",
        type=values.whole(0, 65535, "a port"),
        default=0,
        help="port for every POP (default: a free one)",
    )
    up.add_argument(
        "--large-mib",
        type=values.whole(0, 4096, "a size in MiB"),
        default=256,
        help="size of the generated trailer (0: none)",
    )
    up.add_argument("--no-pollers", action="store_true", help="leave the queues unconsumed")
    up.add_argument("--verbose", action="store_true", help="show the handlers' logs here")
    up.add_argument(
        "--json", action="store_true", help="print the endpoints as JSON (then wait as well)"
    )
    up.set_defaults(run=run_lab_up)

    demo = commands.add_parser(
        "demo",
        help="run the narrated lab scenario (make demo)",
        description="Run the whole pipeline in the lab, narrated and checked; exit 1 if any "
        "expectation fails. The handlers' logs go to a log file named at the end.",
    )
    demo.add_argument("--verbose", action="store_true", help="show the handlers' logs here")
    demo.add_argument(
        "--through",
        type=values.whole(1, 10, "a scene number"),
        default=10,
        metavar="N",
        help="stop after scene N (1-10; each scene builds on the ones before it)",
    )
    demo.add_argument(
        "--json", action="store_true", help="narrate on stderr, print the checks as JSON"
    )
    demo.set_defaults(run=run_demo)


# ---- lab up ---------------------------------------------------------------------------
def run_lab_up(args: argparse.Namespace) -> int:
    from edgefill.lab import catalog
    from edgefill.lab.handler_logs import handler_logs
    from edgefill.lab.lab import Lab, LabError, LabSettings

    stop = threading.Event()
    # Ctrl-C (also when a shell started us with SIGINT ignored) and SIGTERM both stop.
    previous = {
        number: signal.signal(number, lambda *_: stop.set())
        for number in (signal.SIGINT, signal.SIGTERM)
    }
    with handler_logs("edgefill-lab", args.verbose) as log_path:
        lab = Lab(LabSettings(edge_port=args.edge_port, pollers=not args.no_pollers))
        try:
            try:
                lab.start()
            except LabError as error:
                raise OperatorError(str(error)) from None
            objects = catalog.seed(lab.origin, large_bytes=args.large_mib * 1024 * 1024)
            if args.json:
                info = camel_case(lab.describe()) | {"logFile": str(log_path) if log_path else None}
                out.print(json.dumps(info, indent=2), markup=False)
            else:
                _print_lab(lab, [o.uri for o in objects], log_path)
            out.file.flush()
            with contextlib.suppress(KeyboardInterrupt):
                while not stop.wait(0.5):  # a timed wait lets the signal handler run promptly
                    pass
            err.print("stopping the lab…")
        finally:
            lab.stop()
            for number, handler in previous.items():
                signal.signal(number, handler)
    err.print("lab stopped; nothing left running")
    return EXIT_OK


def _print_lab(lab: Any, uris: list[str], log_path: Any) -> None:
    """The lab's endpoints and the commands to paste, printed once."""
    from rich.table import Table

    info = lab.describe()
    table = Table(title="edgefill lab", show_header=False)
    table.add_row("handler logs", str(log_path) if log_path else "on this terminal (--verbose)")
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
    table.add_row("CloudFormation stacks", ", ".join(info["stacks"]))
    out.print(table)
    first = info["pops"][0]
    host, port = info["viewer_host"], info["edge_port"]
    stack = lab.stacks.edge if lab.stacks else "edgefill"
    out.print("\n[bold]Try it[/bold] (another terminal):", markup=True)
    # With these variables every README command that takes --stack runs here as written:
    # botocore reads AWS_ENDPOINT_URL (moto) and AWS_ENDPOINT_URL_CLOUDFRONT (the lab's
    # CloudFront, which makes the POPs obey invalidations); warm and check read the
    # EDGEFILL_* variables as the prewarm worker does.
    lines = [
        f"curl -sS -D- -o /dev/null --cacert {info['ca_bundle']} "
        f"--resolve {host}:{port}:{first['address']} https://{host}:{port}{uris[4]}",
        *export_lines(operator_env(lab)),
        f"edgefill status --stack {stack}",
        f"edgefill prewarm --stack {stack} --targets ap-northeast-1,FRA56-P1 {uris[3]} {uris[5]}",
        f"edgefill backfill --stack {stack} {uris[6]}",
        f"edgefill warm --stack {stack} --targets sa-east-1 {uris[2]}",
        f"edgefill redrive --stack {stack}",
        f"edgefill refresh --stack {stack} {uris[6]}",
        f"edgefill invalidate --stack {stack} --wait '/*'",
        f"edgefill check --stack {stack} --targets ap-northeast-1,sa-east-1 {uris[6]}",
        f"edgefill doctor --stack {stack}   # moto has no origin groups, Lambda mappings: "
        "exit 1 (docs/LAB.md)",
    ]
    for line in lines:
        out.print(line, markup=False)
    out.print("\nCtrl-C stops everything.", markup=False)


def operator_env(lab: Any) -> dict[str, str]:
    """The variables under which the README's commands run against ``lab`` as written."""
    info = lab.describe()
    return {
        "AWS_ACCESS_KEY_ID": "lab",
        "AWS_SECRET_ACCESS_KEY": "lab",
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": info["moto"],
        "AWS_ENDPOINT_URL_CLOUDFRONT": info["cloudfront"],
        "REQUESTS_CA_BUNDLE": info["ca_bundle"],
        "EDGEFILL_RESOLVER": info["dns"],
        "EDGEFILL_EDGE_PORT": str(info["edge_port"]),
        "EDGEFILL_REGION_SUBNETS": json.dumps(dict(lab.settings.subnets)),
        "EDGEFILL_ALLOW_PRIVATE_EDGES": "true",
    }


def export_lines(env: dict[str, str]) -> list[str]:
    """``export`` lines for ``env``: AWS's first, then edgefill's (quoted for a shell)."""
    import shlex

    groups = [
        {k: v for k, v in env.items() if not k.startswith("EDGEFILL_")},
        {k: v for k, v in env.items() if k.startswith("EDGEFILL_")},
    ]
    return [
        "export " + " ".join(f"{k}={shlex.quote(v)}" for k, v in group.items())
        for group in groups
        if group
    ]


# ---- demo -----------------------------------------------------------------------------
def run_demo(args: argparse.Namespace) -> int:
    from edgefill.demo import run_demo as demo

    return demo(
        operator=args.operator, verbose=args.verbose, as_json=args.json, through=args.through
    )
