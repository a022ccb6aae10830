"""One region's workers for the regions lab, each region in its own process.

A regional stack's functions run in their own Lambda environments with their own
configuration (its bucket, its queues, ``AWS_REGION``); the handlers read that
configuration from the process environment, so two regions cannot share one process. The
regions lab (``edgefill/lab/regions.py``) starts this module once per region
(``python -m edgefill.lab.region_workers``) and hands it, as one JSON line on stdin:
the environment, the queues with their event-source settings, and the loopback address
the region's traffic leaves from.

That address stands for the region's own network: every TCP connection the workers open to
a loopback address leaves from it, so the lab's POPs geolocate a warm from region R's
prewarm worker to R's country, as CloudFront geolocates a request from R's AWS addresses.

Protocol after the configuration line: the child answers ``ready`` on its control stream
(its original stdout; the handlers' log lines go to stderr, which the lab points at its
log), then reads commands, one a line: ``busy`` (answers the number of invocations
running), ``sweep <seconds>`` / ``nosweep`` (the revalidation sweep on a schedule).
End of stdin stops the pollers (an invocation in progress ends first) and the process.
"""

from __future__ import annotations

import importlib
import json
import os
import socket
import sys
from typing import Any

import boto3
from botocore.config import Config


def bind_outgoing(source: str) -> None:
    """Make every IPv4 connection to a loopback address leave from ``source``."""
    original_connect = socket.socket.connect
    original_connect_ex = socket.socket.connect_ex

    def _bind(sock: socket.socket, address: Any) -> None:
        if (
            sock.family == socket.AF_INET
            and isinstance(address, tuple)
            and str(address[0]).startswith("127.")
            and sock.getsockname()[1] == 0
        ):
            sock.bind((source, 0))

    def connect(self: socket.socket, address: Any) -> None:
        _bind(self, address)
        original_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        _bind(self, address)
        return original_connect_ex(self, address)

    socket.socket.connect = connect  # type: ignore[method-assign,assignment]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign,assignment]


def main() -> int:
    config = json.loads(sys.stdin.readline())
    # The control stream is the original stdout; the handlers' stdout joins stderr.
    control = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    os.environ.update(config["env"])
    bind_outgoing(config["source_address"])
    from edgefill.lab.pollers import QueuePoller
    from edgefill.lab.sweep_schedule import SweepSchedule

    region = config["env"]["AWS_REGION"]
    sqs = boto3.client(
        "sqs",
        region_name=region,
        endpoint_url=config["env"]["AWS_ENDPOINT_URL"],
        config=Config(max_pool_connections=32, retries={"max_attempts": 3}),
    )
    pollers = []
    for poller in config["pollers"]:
        handler = importlib.import_module(poller["module"]).handler
        pollers.append(
            QueuePoller(
                sqs,
                poller["queue_url"],
                poller["queue_arn"],
                handler,
                function_name=poller["function_name"],
                batch_size=poller["batch_size"],
                batching_window=poller["batching_window"],
                concurrency=poller["concurrency"],
                function_timeout=poller["function_timeout"],
                report_batch_item_failures=poller["report_batch_item_failures"],
                deadline_scale=poller["deadline_scale"],
                visibility_timeout=poller["visibility_timeout"],
            )
        )
    for poller_ in pollers:
        poller_.start()
    sweep: SweepSchedule | None = None
    control.write("ready\n")
    for line in sys.stdin:
        command, _, argument = line.strip().partition(" ")
        if command == "busy":
            running = sum(int(p.busy) for p in pollers) + int(bool(sweep and sweep.running))
            control.write(f"{running}\n")
        elif command == "sweep" and sweep is None:
            handler = importlib.import_module("backfill_worker.sweep").handler
            sweep = SweepSchedule(handler, float(argument))
            sweep.start()
            control.write("ok\n")
        elif command == "nosweep":
            if sweep is not None:
                sweep.stop()
                sweep = None
            control.write("ok\n")
        else:
            control.write(f"error unknown command {command!r}\n")
    if sweep is not None:
        sweep.stop()
    for poller_ in pollers:
        poller_.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
