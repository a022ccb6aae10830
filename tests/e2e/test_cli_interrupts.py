"""Ctrl-C on ``edgefill warm``, for real: a SIGINT to the command in its own process while
it warms slow objects through the lab's POPs (issue 22).

The lab POPs record when each request arrives (``Pop.arrivals``, wall-clock time, so the
test process can compare them with the moment it sent the signal). The objects are made
slow by the lab origin's per-path latency fault: every request is a miss that waits there.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgefill.interrupts import GRACE_SECONDS
from edgefill.lab.lab import Lab
from edgefill.lab.origin import LabOrigin
from tests.cli_process import edgefill_process
from tests.e2e.test_cli_against_lab import warm_flags

ROOT = Path(__file__).parents[2]
CONCURRENCY = 4
PATHS = 60
# Margin for the child's own start-up and exit, on a shared two-core machine.
EXIT_MARGIN = 1.5
# An origin latency that outlasts the grace by a margin of its own (3 s: the requests in
# flight started just before the Ctrl-C), and no longer: after each test the lab waits for
# the requests still at the origin to end.
OUTLAST = GRACE_SECONDS + 3.0


@contextlib.contextmanager
def slow_warm(lab: Lab, latency: float) -> Iterator[tuple[subprocess.Popen[str], list[str]]]:
    """``edgefill warm`` in its own process over ``PATHS`` objects at the full origin, each
    answered after ``latency`` seconds; killed (if still running) and the faults cleared
    after the block."""
    base = f"/interrupt/{uuid.uuid4().hex[:8]}"
    paths = [f"{base}/{index}.js" for index in range(PATHS)]
    for path in paths:
        # "private": the lab's own pipeline (failover → backfill → prewarm at every
        # region's POP) must not copy these, or its prewarm's requests at GRU3-P1 would
        # count as the CLI's arrivals after the Ctrl-C (a flake seen in full runs).
        lab.origin.put(
            path,
            b"x" * 2048,
            content_type="text/javascript",
            headers={"Cache-Control": "private"},
        )
        lab.origin.fault(path, latency=latency)
    # Four at a time: four HTTP/2 streams (the warm's default protocol), and four HTTP/1.1
    # connections should the edge fall back.
    env = {
        **os.environ,
        "EDGEFILL_CONCURRENCY": str(CONCURRENCY),
        "EDGEFILL_WARM_STREAMS": str(CONCURRENCY),
        "COLUMNS": "200",
    }
    argv = ["warm", "--targets", "GRU3-P1", "--encodings", "gzip", "--json", *warm_flags(lab)]
    process = edgefill_process([*argv, *(LabOrigin.uri(p) for p in paths)], env)
    try:
        yield process, paths
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
        for path in paths:
            lab.origin.clear_fault(path)
        lab.wait_idle()


def arrivals(lab: Lab, paths: list[str]) -> list[float]:
    wanted = {LabOrigin.uri(path) for path in paths}
    return [at for at, path in list(lab.pop("GRU3-P1").arrivals) if path in wanted]


def wait_for_arrivals(
    lab: Lab, paths: list[str], count: int, process: subprocess.Popen[str]
) -> None:
    deadline = time.monotonic() + 60
    while len(arrivals(lab, paths)) < count:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the warm never reached the POP"
        time.sleep(0.02)


@pytest.mark.parametrize(
    ("latency", "in_flight_end"),
    [(0.4, "within the grace"), (OUTLAST, "after the grace")],
    ids=["requests-end-in-time", "requests-outlast-the-grace"],
)
def test_ctrl_c_stops_new_requests_and_prints_the_partial_report(
    lab: Lab, latency: float, in_flight_end: str
) -> None:
    # Given a warm of 60 slow objects at one POP, 4 at a time, well under way
    with slow_warm(lab, latency) as (process, paths):
        wait_for_arrivals(lab, paths, CONCURRENCY * 2 if latency < 1 else CONCURRENCY, process)
        # When the operator presses Ctrl-C
        pressed = time.time()
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=30)
        ended = time.time()
        started = arrivals(lab, paths)
    # Then it exits 130 within the grace, without a traceback
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert ended - pressed <= GRACE_SECONDS + EXIT_MARGIN, (ended - pressed, in_flight_end)
    # And no request started after the grace (none after the signal, in fact, but for one
    # a worker may have been handing out as the signal landed)
    assert max(started) <= pressed + GRACE_SECONDS
    assert sum(1 for at in started if at > pressed) <= CONCURRENCY
    assert len(started) < PATHS
    # And the partial report parses, says it was interrupted and adds up
    report = json.loads(stdout)
    assert report["interrupted"] is True
    assert report["tasks"] == PATHS
    assert report["ok"] + report["failed"] + report["notDone"] == PATHS
    assert report["ok"] <= len(started)
    assert "stopped by the operator" in stderr and f"of {PATHS} warmed" in stderr


def test_a_second_ctrl_c_exits_at_once_without_a_traceback(lab: Lab) -> None:
    # Given a warm whose requests outlast the grace, interrupted once
    with slow_warm(lab, OUTLAST) as (process, paths):
        wait_for_arrivals(lab, paths, CONCURRENCY, process)
        process.send_signal(signal.SIGINT)
        deadline = time.monotonic() + 10
        while "stopping" not in (line := process.stderr.readline() if process.stderr else ""):
            assert line and time.monotonic() < deadline, "no word of the first Ctrl-C"
        # When the operator presses Ctrl-C again
        pressed = time.time()
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
        ended = time.time()
    # Then it ends at once, 130, one line and no traceback
    assert process.returncode == 130
    assert ended - pressed < 1.0 + EXIT_MARGIN
    assert "stopped at once" in stderr and "Traceback" not in stderr
