"""What a C HTTP/2 client reaches on bench_prewarm's 900 warms: the floor for issue 23.

Not a benchmark of edgefill (``make bench`` does not run it: its name is not
``bench_*.py``) but the evidence for a decision: the same six emulated edges, 30 ms round
trip, 21 streams per edge, each body read in full and its length checked, driven by
libcurl (nghttp2, OpenSSL) through pycurl instead of ``Http2EdgeClient`` (pure-Python h2).
No DNS: libcurl connects to each edge's address (``CONNECT_TO``) with the viewer host as
SNI and Host, so its wall time compares to bench_prewarm's ideal (TCP, TLS, the flights)
and the engine's, which includes one DNS round trip, is about 30 ms more for the same work.

pycurl is not a dependency of edgefill; run it from a scratch virtual environment:

    python3 -m venv /tmp/curlv && /tmp/curlv/bin/pip install pycurl
    env -u PYTHONDONTWRITEBYTECODE PYTHONPYCACHEPREFIX=$PWD/.venv/pycache \\
        PYTHONPATH=/tmp/curlv/lib/python3.11/site-packages \\
        .venv/bin/python bench/probe_libcurl_floor.py --rounds 7
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_prewarm as bench  # noqa: E402


def one_round(port: int, ca: str, per_edge: int) -> tuple[int, int, int]:
    """All 900 warms; at most ``per_edge`` streams in flight per edge, refilled as each
    ends. Returns (ok, failed, connections opened)."""
    import pycurl

    multi = pycurl.CurlMulti()
    multi.setopt(pycurl.M_PIPELINING, pycurl.PIPE_MULTIPLEX)
    multi.setopt(pycurl.M_MAX_CONCURRENT_STREAMS, per_edge)
    queues = {
        address: [(path, encoding) for encoding in bench.ENCODINGS for path in bench.PATHS]
        for address, _ in bench.TARGETS.values()
    }
    running: dict[Any, dict[str, Any]] = {}

    def start(address: str) -> None:
        path, encoding = queues[address].pop()
        handle = pycurl.Curl()
        state: dict[str, Any] = {"bytes": 0, "address": address}

        def write(data: bytes, state: dict[str, Any] = state) -> None:
            state["bytes"] += len(data)  # counted and dropped, as the engine does

        handle.setopt(pycurl.URL, f"https://{bench.VIEWER}:{port}{path}")
        handle.setopt(pycurl.CONNECT_TO, [f"{bench.VIEWER}:{port}:{address}:{port}"])
        handle.setopt(pycurl.CAINFO, ca)
        handle.setopt(pycurl.HTTP_VERSION, pycurl.CURL_HTTP_VERSION_2TLS)
        handle.setopt(pycurl.PIPEWAIT, 1)  # wait for the edge's connection, do not open more
        handle.setopt(pycurl.WRITEFUNCTION, write)
        wanted = encoding.replace("+", ", ")
        handle.setopt(
            pycurl.HTTPHEADER, [] if encoding == "identity" else [f"Accept-Encoding: {wanted}"]
        )
        running[handle] = state
        multi.add_handle(handle)

    for address in queues:
        for _ in range(per_edge):
            start(address)
    ok = failed = connections = 0
    while running:
        multi.perform()
        started = False
        while True:
            queued, done, errors = multi.info_read()
            for handle in done + [error[0] for error in errors]:
                state = running.pop(handle)
                status = handle.getinfo(pycurl.RESPONSE_CODE)
                connections += handle.getinfo(pycurl.NUM_CONNECTS)
                if status == 200 and state["bytes"] == len(bench.BODY):
                    ok += 1
                else:
                    failed += 1
                multi.remove_handle(handle)
                handle.close()
                if queues[state["address"]]:
                    start(state["address"])
                    started = True
            if not queued:
                break
        if running and not started:  # new streams go out on the next perform, at once
            multi.select(0.05)
    multi.close()
    return ok, failed, connections


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--streams-per-edge", type=int, default=21)
    args = parser.parse_args()
    parent, child = multiprocessing.get_context("fork").Pipe()
    far = multiprocessing.get_context("fork").Process(
        target=bench.serve, args=(child, bench.TARGETS), daemon=True
    )
    far.start()
    info = parent.recv()
    warms = len(bench.PATHS) * len(bench.TARGETS) * len(bench.ENCODINGS)
    walls = []
    try:
        for number in range(1, args.rounds + 1):
            parent.send("reset")
            parent.recv()
            started, cpu_started = time.perf_counter(), time.process_time()
            ok, failed, connections = one_round(
                info["edge_port"], info["ca"], args.streams_per_edge
            )
            wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
            parent.send("stats")
            seen = parent.recv()
            walls.append(wall)
            print(
                f"round {number}: {wall:.3f} s, {ok} ok, {failed} failed, {connections} "
                f"connections ({seen['handshakes']} handshakes at the edges), client CPU "
                f"{cpu * 1e3 / warms:.3f} ms/warm"
            )
    finally:
        parent.send("stop")
        parent.recv()
        far.join(timeout=10)
    flights = -(-warms // len(bench.TARGETS) // args.streams_per_edge)
    ideal = (2 + flights) * bench.RTT
    median = statistics.median(walls)
    print(f"libcurl median {median:.3f} s; ideal {ideal:.3f} s; ratio {median / ideal:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
