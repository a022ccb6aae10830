"""The warm over HTTP/2 against misbehaving edges (issue 23, "Bad input"): each fault fails
only the tuples it touches, which stay retryable (re-enqueued by the worker as before),
while the rest of the burst succeeds on the same connection or a fresh one."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from edgefill.lab.dns import LabDNSServer
from edgefill.lab.tls import LabCA
from prewarm_worker.engine import (
    TaskResult,
    WarmContext,
    WarmPlan,
    WarmReport,
    WarmSettings,
    warm,
)
from shared.config import PrewarmConfig
from shared.edge_http import SPARE_CONNECTIONS, EdgeClient
from shared.edge_http2 import Http2EdgeClient
from shared.edns import EdgeResolver
from tests.integration.prewarm_edges import VIEWER, FakeEdge, start_edges

DOMAIN = "d222h2.cloudfront.net"
# POP code → (address, announced stream limit, ALPN offered)
EDGES = {
    "IAD89-C1": ("127.0.0.21", 128, ("h2", "http/1.1")),
    "NRT20-P2": ("127.0.0.22", 1, ("h2", "http/1.1")),
    "DUB56-P1": ("127.0.0.23", 0, ("h2", "http/1.1")),
    "FRA2-C1": ("127.0.0.24", 128, ("http/1.1",)),
    "SFO5-C1": ("127.0.0.25", 128, ("h2", "http/1.1")),
    "CDG50-C1": ("127.0.0.26", 128, ("h2", "http/1.1")),
}


@dataclass
class H2Lab:
    ca: LabCA
    dns: LabDNSServer
    edges: dict[str, FakeEdge]
    port: int

    def config(self) -> PrewarmConfig:
        return PrewarmConfig.from_env(
            {
                "EDGEFILL_DISTRIBUTION_DOMAIN": DOMAIN,
                "EDGEFILL_VIEWER_HOST": VIEWER,
                "EDGEFILL_RESOLVER": self.dns.resolver,
                "EDGEFILL_EDGE_PORT": str(self.port),
                "EDGEFILL_ALLOW_PRIVATE_EDGES": "true",
            }
        )


@pytest.fixture(scope="module")
def h2_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[H2Lab]:
    ca = LabCA(Path(tmp_path_factory.mktemp("ca")))
    edges = {
        pop: FakeEdge(address, ca, (VIEWER,), pop, max_streams=limit, alpn=alpn)
        for pop, (address, limit, alpn) in EDGES.items()
    }
    port = start_edges(list(edges.values()))
    dns = LabDNSServer(
        DOMAIN, pop_answers={pop: address for pop, (address, _, _) in EDGES.items()}
    ).start()
    yield H2Lab(ca, dns, edges, port)
    dns.stop()
    for edge in edges.values():
        edge.stop()


@pytest.fixture
def h2_lab(h2_servers: H2Lab, monkeypatch: pytest.MonkeyPatch) -> H2Lab:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(h2_servers.ca.bundle_path))
    for edge in h2_servers.edges.values():
        edge.reset()
    return h2_servers


def run(
    lab: H2Lab,
    paths: list[str],
    targets: tuple[str, ...],
    streams_per_edge: int = 100,
    attempts: int = 2,
    read_timeout: float = 10.0,
    encodings: tuple[str, ...] = ("gzip", "identity"),
) -> tuple[WarmReport, Http2EdgeClient]:
    config = lab.config()
    client = Http2EdgeClient(
        port=config.port, maxsize=8, read_timeout=read_timeout, streams_per_edge=streams_per_edge
    )
    settings = WarmSettings(
        concurrency=8,
        request_attempts=attempts,
        backoff_base=0.01,
        http2=True,
        streams=64,
        streams_per_edge=streams_per_edge,
    )
    try:
        report = warm(
            WarmPlan(tuple(paths), targets, encodings, VIEWER),
            WarmContext(
                config,
                EdgeResolver(config.resolver_host, config.resolver_port),
                client,
                settings,
                sleep=lambda _: None,
            ),
        )
    finally:
        client.close()
    return report, client


def failed(report: WarmReport) -> set[tuple[str, str]]:
    return {(f.task.path, f.task.encoding) for f in report.failures}


PATHS = [f"/burst/{n}.js" for n in range(30)]


@pytest.mark.parametrize(
    ("fault", "says"),
    [
        ("rst", "reset the stream (INTERNAL_ERROR)"),
        ("refuse", "refused the stream (REFUSED_STREAM): not processed"),
    ],
)
def test_given_an_edge_that_resets_one_stream_when_warmed_then_only_that_path_fails(
    h2_lab: H2Lab, fault: str, says: str
) -> None:
    # Given an edge that resets (or refuses) every stream asking for one path of a burst
    edge = h2_lab.edges["IAD89-C1"]
    edge.h2_faults["/bad.bin"] = fault
    # When the burst is warmed over HTTP/2
    report, client = run(h2_lab, [*PATHS, "/bad.bin"], ("IAD89-C1",))
    # Then exactly that path's tuples failed, each tried twice, retryable, saying why
    assert failed(report) == {("/bad.bin", "gzip"), ("/bad.bin", "identity")}
    for failure in report.failures:
        assert failure.retryable and failure.attempts == 2
        assert says in (failure.error or "") and "/bad.bin" in (failure.error or "")
    if fault == "rst":
        assert all("body ended after" in (f.error or "") for f in report.failures)
    else:
        assert all(f.bytes_read == 0 for f in report.failures)
    # And every other tuple succeeded at the first try, on the one connection a reset spares
    assert report.ok == 2 * len(PATHS)
    assert report.protocols == {"h2": 2 * len(PATHS)}
    assert client.h2_connections == 1 and client.connections == 1
    assert edge.peak_streams > 1  # the burst shared the connection


def test_given_a_stream_that_stalls_mid_body_when_warmed_then_it_times_out_alone(
    h2_lab: H2Lab,
) -> None:
    # Given an edge that sends half of one path's body, then nothing (a window never reopened)
    edge = h2_lab.edges["IAD89-C1"]
    edge.h2_faults["/stall.bin"] = "stall"
    # When the burst is warmed with a short read timeout
    report, client = run(h2_lab, [*PATHS, "/stall.bin"], ("IAD89-C1",), read_timeout=1.0)
    # Then only the stalled stream failed, by its own timeout, with what it had read
    assert failed(report) == {("/stall.bin", "gzip"), ("/stall.bin", "identity")}
    for failure in report.failures:
        assert failure.retryable and failure.attempts == 2 and failure.bytes_read > 0
        assert "body stalled after" in (failure.error or "")
        assert "nothing for 1s" in (failure.error or "")
    # And its neighbours on the same connection were not held up or failed with it
    assert report.ok == 2 * len(PATHS) and client.h2_connections == 1
    assert report.failed == 2


def test_given_an_edge_that_sends_goaway_for_one_path_then_only_that_path_fails(
    h2_lab: H2Lab,
) -> None:
    # Given an edge that answers GOAWAY (naming the stream before as the last processed)
    # whenever one path is asked for, one stream at a time so the order is known
    edge = h2_lab.edges["IAD89-C1"]
    edge.h2_faults["/away.bin"] = "goaway"
    paths = ["/a.js", "/away.bin", "/b.js", "/c.js"]
    # When those paths are warmed
    report, client = run(h2_lab, paths, ("IAD89-C1",), streams_per_edge=1)
    # Then exactly that path's tuples failed, retryable, saying the edge never processed them
    assert failed(report) == {("/away.bin", "gzip"), ("/away.bin", "identity")}
    for failure in report.failures:
        assert failure.retryable and failure.attempts == 2
        assert "GOAWAY" in (failure.error or "") and "never processed" in (failure.error or "")
    # And the others succeeded at the first try, each GOAWAY costing one new connection:
    # the client sends a request the edge never processed once more on a new connection
    # (safe, RFC 9113 6.8), then the engine tries the task again: 2 × 2 per encoding
    assert report.ok == 6 and report.protocols == {"h2": 6}
    assert client.h2_connections == 1 + 2 * 2 * 2
    assert client.open_connections == 0


def test_given_one_goaway_mid_burst_when_warmed_then_the_cut_streams_are_retried_and_succeed(
    h2_lab: H2Lab,
) -> None:
    # Given an edge that sends GOAWAY once, in the middle of a burst of concurrent streams
    edge = h2_lab.edges["IAD89-C1"]
    edge.h2_faults["/burst/15.js"] = "goaway-once"
    # When the burst is warmed with three tries per request
    report, client = run(h2_lab, PATHS, ("IAD89-C1",), attempts=3)
    # Then nothing failed in the end: the streams the GOAWAY cut were tried again on a
    # second connection (those it never processed at once, by the client), and the path
    # that met the GOAWAY reached the edge twice
    assert report.failures == [] and report.ok == 2 * len(PATHS)
    assert client.h2_connections == 2
    assert len([s for s in edge.seen if s.path == "/burst/15.js"]) >= 2


def test_given_an_edge_allowing_one_stream_when_warmed_then_it_completes_one_at_a_time(
    h2_lab: H2Lab,
) -> None:
    # Given an edge whose SETTINGS_MAX_CONCURRENT_STREAMS is 1
    edge = h2_lab.edges["NRT20-P2"]
    # When a burst is warmed there with up to 100 streams per edge asked for
    report, client = run(h2_lab, PATHS, ("NRT20-P2",))
    # Then every tuple succeeded over HTTP/2, never two streams at once
    assert report.failures == [] and report.protocols == {"h2": 2 * len(PATHS)}
    assert edge.peak_streams == 1 and client.h2_connections == 1
    # And the report says the edge held the warm to one request at a time
    totals = report.targets["NRT20-P2"].as_dict()
    assert totals["streamLimit"] == 1 and "one HTTP/2 stream at a time" in totals["note"]


def test_given_an_edge_allowing_no_stream_when_warmed_then_http1_completes_it(
    h2_lab: H2Lab,
) -> None:
    # Given an edge that selects h2 but allows no concurrent stream at all
    edge = h2_lab.edges["DUB56-P1"]
    # When a burst is warmed there
    report, client = run(h2_lab, PATHS, ("DUB56-P1",))
    # Then every tuple succeeded over HTTP/1.1 keep-alive, and the report says why
    assert report.failures == [] and report.protocols == {"http/1.1": 2 * len(PATHS)}
    totals = report.targets["DUB56-P1"].as_dict()
    assert totals["streamLimit"] == 0 and "warmed over HTTP/1.1" in totals["note"]
    assert edge.peak_streams == 0
    # And the fallback stayed within HTTP/1.1's socket budget (the probe, then the pools)
    assert client.peak_open_connections <= client.maxsize + SPARE_CONNECTIONS


def test_given_an_edge_whose_alpn_lacks_h2_when_warmed_then_http1_keep_alive_serves_it(
    h2_lab: H2Lab,
) -> None:
    # Given an edge that offers only http/1.1 by ALPN
    edge = h2_lab.edges["FRA2-C1"]
    # When a burst is warmed there and at an HTTP/2 edge in the same run
    report, client = run(h2_lab, PATHS, ("FRA2-C1", "IAD89-C1"))
    # Then each target counts the protocol that served it
    assert report.failures == []
    assert report.targets["FRA2-C1"].protocols == {"http/1.1": 2 * len(PATHS)}
    assert report.targets["IAD89-C1"].protocols == {"h2": 2 * len(PATHS)}
    assert "streamLimit" not in report.targets["FRA2-C1"].as_dict()
    assert report.summary()["protocols"] == {"http/1.1": 60, "h2": 60}
    # And the HTTP/1.1 edge saw the viewer host as SNI and Host, like any other
    assert set(edge.sni) == {VIEWER} and {s.host for s in edge.seen} == {VIEWER}
    assert client.h2_connections == 1


def test_given_three_edges_and_many_streams_when_warmed_then_one_socket_per_edge(
    h2_lab: H2Lab,
) -> None:
    # Given three HTTP/2 edges and a warm of 300 tasks with 64 streams, 40 per edge at most
    targets = ("IAD89-C1", "SFO5-C1", "CDG50-C1")
    paths = [f"/many/{n}.js" for n in range(100)]
    # When it runs
    report, client = run(h2_lab, paths, targets, streams_per_edge=40, encodings=("br",))
    # Then everything was warmed over one connection per edge, never more sockets at once
    assert report.ok == 300 and report.failures == []
    assert client.h2_connections == 3 and client.peak_open_connections <= 3
    assert report.connections == 3
    # And the streams per edge stayed within the per-edge bound while really multiplexing
    peaks = [h2_lab.edges[t].peak_streams for t in targets]
    assert all(1 < peak <= 40 for peak in peaks), peaks
    # And each edge saw the viewer host as SNI and :authority, every path once
    for target in targets:
        edge = h2_lab.edges[target]
        assert set(edge.sni) == {VIEWER} and {s.host for s in edge.seen} == {VIEWER}
        assert sorted(s.path for s in edge.seen) == sorted(paths)


def test_given_http2_settings_and_an_http1_only_client_then_workers_are_its_connections(
    h2_lab: H2Lab,
) -> None:
    # Given the worker's HTTP/2 settings (64 streams) but a client that speaks only HTTP/1.1
    config = h2_lab.config()
    client = EdgeClient(port=config.port, maxsize=2)
    settings = WarmSettings(concurrency=2, http2=True, streams=64, backoff_base=0.01)
    # When a burst is warmed with them
    try:
        report = warm(
            WarmPlan(tuple(PATHS), ("IAD89-C1",), ("gzip",), VIEWER),
            WarmContext(
                config, EdgeResolver(config.resolver_host, config.resolver_port), client, settings
            ),
        )
    finally:
        client.close()
    # Then two workers ran, one keep-alive connection each, not one thread per stream
    assert report.ok == len(PATHS) and report.protocols == {"http/1.1": len(PATHS)}
    assert client.peak_open_connections <= 2


def test_given_retries_over_http2_then_the_injected_clock_gets_each_backoff_in_turn(
    h2_lab: H2Lab,
) -> None:
    # Given an edge that resets one path's streams, three tries per task, and a clock that
    # records each backoff it is asked to let pass (full jitter: base × 2^(n-1))
    h2_lab.edges["IAD89-C1"].h2_faults["/bad.bin"] = "rst"
    config = h2_lab.config()
    slept: list[float] = []
    client = Http2EdgeClient(port=config.port, maxsize=8)
    settings = WarmSettings(
        request_attempts=3, backoff_base=0.01, http2=True, streams=64, streams_per_edge=100
    )
    # When the burst is warmed by the HTTP/2 driver
    try:
        report = warm(
            WarmPlan((*PATHS, "/bad.bin"), ("IAD89-C1",), ("gzip", "identity"), VIEWER),
            WarmContext(
                config,
                EdgeResolver(config.resolver_host, config.resolver_port),
                client,
                settings,
                sleep=slept.append,
                jitter=lambda: 1.0,
            ),
        )
    finally:
        client.close()
    # Then each failing task was tried three times, its two backoffs passed to the clock
    assert failed(report) == {("/bad.bin", "gzip"), ("/bad.bin", "identity")}
    assert all(f.attempts == 3 for f in report.failures)
    assert sorted(slept) == [0.01, 0.01, 0.02, 0.02]
    assert report.ok == 2 * len(PATHS)


def test_given_real_time_backoff_over_http2_then_a_retry_waits_it_out_without_holding_others(
    h2_lab: H2Lab,
) -> None:
    # Given an edge resetting one path, and the default clock (real time): 0.2 s, then 0.4 s
    h2_lab.edges["IAD89-C1"].h2_faults["/bad.bin"] = "rst"
    config = h2_lab.config()
    client = Http2EdgeClient(port=config.port, maxsize=8)
    settings = WarmSettings(request_attempts=3, backoff_base=0.2, http2=True, streams=64)
    done_at: dict[str, float] = {}
    started = time.monotonic()

    def note(result: TaskResult) -> None:
        done_at[f"{result.task.path} {result.task.encoding}"] = time.monotonic() - started

    # When the burst is warmed
    try:
        report = warm(
            WarmPlan((*PATHS, "/bad.bin"), ("IAD89-C1",), ("gzip",), VIEWER),
            WarmContext(
                config,
                EdgeResolver(config.resolver_host, config.resolver_port),
                client,
                settings,
                jitter=lambda: 1.0,
            ),
            progress=note,
        )
    finally:
        client.close()
    # Then the failing task ended after its two backoffs (a lower bound: the clock is
    # shared), while the others had already finished before it
    assert failed(report) == {("/bad.bin", "gzip")}
    assert done_at["/bad.bin gzip"] >= 0.6
    assert max(t for k, t in done_at.items() if k != "/bad.bin gzip") < done_at["/bad.bin gzip"]


def test_given_many_streams_when_warmed_then_no_thread_is_started_per_stream(
    h2_lab: H2Lab,
) -> None:
    # Given 300 tasks at three edges and 64 streams
    targets = ("IAD89-C1", "SFO5-C1", "CDG50-C1")
    paths = [f"/threads/{n}.js" for n in range(100)]
    peak = [0]
    # Threads other tests left behind (their clients, the lab's servers) are not this warm's
    before = {thread.ident for thread in threading.enumerate()}

    def count(_: TaskResult) -> None:
        # The warm's own threads (the edges' servers run in this process too)
        ours = [
            t
            for t in threading.enumerate()
            if t.ident not in before and t.name.startswith(("warm", "h2-"))
        ]
        peak[0] = max(peak[0], len(ours))

    config = h2_lab.config()
    client = Http2EdgeClient(port=config.port, maxsize=8, streams_per_edge=40)
    settings = WarmSettings(http2=True, streams=64, streams_per_edge=40, backoff_base=0.01)
    # When they are warmed
    try:
        report = warm(
            WarmPlan(tuple(paths), targets, ("br",), VIEWER),
            WarmContext(
                config, EdgeResolver(config.resolver_host, config.resolver_port), client, settings
            ),
            progress=count,
        )
    finally:
        client.close()
    # Then all succeeded with at most the driver, one I/O thread per edge and one
    # connecting thread per edge: no thread per stream (there were 64)
    assert report.ok == 300
    assert 1 <= peak[0] <= 1 + 2 * len(targets), peak[0]


def test_given_a_cancel_while_a_retry_waits_its_backoff_then_it_ends_at_once_untried(
    h2_lab: H2Lab,
) -> None:
    # Given a path whose stream the edge resets, a 30 s backoff before its retry, and a
    # caller that cancels once every other task has finished
    edge = h2_lab.edges["IAD89-C1"]
    edge.h2_faults["/bad.bin"] = "rst"
    config = h2_lab.config()
    cancel = threading.Event()
    finished: list[TaskResult] = []

    def progress(result: TaskResult) -> None:
        finished.append(result)
        if sum(r.ok for r in finished) == len(PATHS):
            cancel.set()

    client = Http2EdgeClient(port=config.port, maxsize=8)
    settings = WarmSettings(request_attempts=3, backoff_base=30.0, backoff_cap=30.0, http2=True)
    started = time.monotonic()
    # When the burst is warmed on the real clock
    try:
        report = warm(
            WarmPlan((*PATHS, "/bad.bin"), ("IAD89-C1",), ("gzip",), VIEWER),
            WarmContext(
                config,
                EdgeResolver(config.resolver_host, config.resolver_port),
                client,
                settings,
                jitter=lambda: 1.0,
                cancel=cancel,
            ),
            progress=progress,
        )
    finally:
        client.close()
    # Then the waiting retry never ran: the task ended with its first attempt's failure,
    # reported once, and the run did not wait out the backoff
    assert time.monotonic() - started < 15.0
    assert [s.path for s in edge.seen].count("/bad.bin") == 1
    (bad,) = report.failures
    assert bad.task.path == "/bad.bin" and bad.attempts == 1 and bad.retryable
    assert len(finished) == len(PATHS) + 1 and report.cancelled == []


def test_given_a_progress_callback_that_raises_then_the_http2_warm_still_finishes_every_task(
    h2_lab: H2Lab,
) -> None:
    # Given a caller whose progress callback raises on its first call
    calls: list[TaskResult] = []

    def progress(result: TaskResult) -> None:
        calls.append(result)
        if len(calls) == 1:
            raise RuntimeError("a caller's bug")

    config = h2_lab.config()
    client = Http2EdgeClient(port=config.port, maxsize=8)
    # When a burst is warmed over HTTP/2
    try:
        report = warm(
            WarmPlan(tuple(PATHS), ("IAD89-C1",), ("gzip",), VIEWER),
            WarmContext(
                config,
                EdgeResolver(config.resolver_host, config.resolver_port),
                client,
                WarmSettings(http2=True, streams=8),
            ),
            progress=progress,
        )
    finally:
        client.close()
    # Then every task was still warmed and reported, progress called once for each
    assert report.ok == len(PATHS) and len(calls) == len(PATHS)


def test_given_a_goaway_while_requests_wait_for_a_stream_then_they_go_to_a_new_connection(
    h2_lab: H2Lab,
) -> None:
    # Given an edge allowing one stream at a time, so most of a burst waits in the client's
    # queue, and a GOAWAY once in the middle of it
    edge = h2_lab.edges["NRT20-P2"]
    edge.h2_faults["/burst/10.js"] = "goaway-once"
    # When the burst is warmed with three tries per request
    report, client = run(h2_lab, PATHS, ("NRT20-P2",), attempts=3)
    # Then everything succeeded: the requests never sent on the first connection went to
    # the second one, one GOAWAY cost one socket, and only the path that met it was asked
    # for twice
    assert report.failures == [] and report.ok == 2 * len(PATHS)
    assert client.h2_connections == 2 and edge.peak_streams == 1
    assert len(edge.seen) == 2 * len(PATHS) + 1
