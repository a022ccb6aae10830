"""The warm engine against local HTTPS edges and the lab DNS server, over real sockets."""

from __future__ import annotations

import threading
import time

from edgefill.lab.dns import LabDNSServer
from prewarm_worker.engine import (
    TaskResult,
    WarmContext,
    WarmPlan,
    WarmReport,
    WarmSettings,
    warm,
)
from shared.config import PrewarmConfig
from shared.edge_http import EdgeClient
from shared.edge_http2 import Http2EdgeClient
from shared.edns import REGION_SUBNETS, EdgeResolver
from shared.messages import ENCODINGS
from tests.integration.prewarm_edges import (
    VIEWER,
    FakeEdge,
    Lab,
    Seen,
    body_for,
    edge_client,
    lab,
    lab_servers,
    start_edges,
    warm_http,
)

__all__ = ["lab", "lab_servers", "warm_http"]  # fixtures


def run(
    lab: Lab,
    paths: tuple[str, ...],
    targets: tuple[str, ...],
    encodings: tuple[str, ...] = ENCODINGS,
    settings: WarmSettings | None = None,
    resolver: EdgeResolver | None = None,
    http: str = "2",
) -> tuple[list[TaskResult], WarmReport]:
    config = lab.config()
    results: list[TaskResult] = []
    report = warm(
        WarmPlan(paths, targets, encodings, VIEWER),
        WarmContext(
            config,
            resolver or EdgeResolver(config.resolver_host, config.resolver_port, timeout=1.0),
            edge_client(config.port, http, maxsize=8),
            settings or WarmSettings(concurrency=8, backoff_base=0.01),
            sleep=lambda _: None,
        ),
        progress=results.append,
    )
    return results, report


def test_given_regions_and_a_pop_when_warmed_then_each_goes_to_its_own_edge_as_the_viewer(
    lab: Lab, warm_http: str
) -> None:
    paths = ("/a.js", "/img/b%20c.png", "/q?v=1")
    asked = ("us-east-1", "ap-northeast-1", "eu-west-1", "NRT20-P2")
    results, report = run(lab, paths, asked, http=warm_http)

    assert len(results) == 3 * 4 * 4
    assert all(r.ok for r in results), [r.error for r in results if not r.ok]
    assert report.edges == {
        "us-east-1": "127.0.0.2",
        "ap-northeast-1": "127.0.0.3",
        "eu-west-1": "127.0.0.4",
        "NRT20-P2": "127.0.0.3",
    }
    # Every variant of every path reached the right edge with the right header.
    for address, targets in {
        "127.0.0.2": 1,
        "127.0.0.3": 2,
        "127.0.0.4": 1,
    }.items():
        seen = lab.edges[address].seen
        assert len(seen) == targets * len(paths) * len(ENCODINGS)
        assert {s.host for s in seen} == {VIEWER}
        assert set(lab.edges[address].sni) == {VIEWER}
        for path in paths:
            headers = sorted((s.accept_encoding or "") for s in seen if s.path == path)
            assert headers == sorted(["br, gzip", "gzip", "br", ""] * targets)
    # identity sends no Accept-Encoding header at all
    assert any(s.accept_encoding is None for s in lab.edges["127.0.0.2"].seen)
    # Bodies read to the end: bytes counted equal what the edge sent.
    for result in results:
        encoding = {"br+gzip": "br, gzip", "identity": None}.get(
            result.task.encoding, result.task.encoding
        )
        assert result.bytes_read == len(body_for(result.task.path, encoding))
        assert result.status == 200 and result.attempts == 1
        assert result.pop is not None and result.x_cache is not None
    # One DNS query per target, never per request.
    assert lab.dns.query_count == 4 == report.dns_queries
    assert lab.dns.count(subnet=REGION_SUBNETS["ap-northeast-1"]) == 1
    assert lab.dns.count(name="d111abc.NRT20-P2.cloudfront.net") == 1
    # Keep-alive: far fewer connections than requests, bounded by edges × concurrency;
    # over HTTP/2 one connection per edge (NRT20-P2 and ap-northeast-1 share 127.0.0.3).
    protocol = "h2" if warm_http == "2" else "http/1.1"
    assert report.connections <= (3 if warm_http == "2" else 3 * 8)
    assert report.ok == 48 and report.misses + report.hits == 48
    assert report.protocols == {protocol: 48}
    assert {t: totals.protocols for t, totals in report.targets.items()} == {
        target: {protocol: 12} for target in asked
    }


def test_given_a_pop_target_when_the_edge_reports_another_pop_then_the_mismatch_is_flagged(
    lab: Lab,
) -> None:
    results, report = run(lab, ("/a.js",), ("HKG60-C1", "NRT20-P2"), ("gzip",))
    by_target = {r.task.target: r for r in results}
    assert by_target["HKG60-C1"].pop_mismatch and by_target["HKG60-C1"].pop == "NRT20-P2"
    assert not by_target["NRT20-P2"].pop_mismatch
    assert report.targets["HKG60-C1"].pop_mismatches == 1


def test_given_a_host_with_a_port_when_warmed_then_sni_drops_the_port_and_host_keeps_it(
    lab: Lab,
) -> None:
    config = lab.config()
    report = warm(
        WarmPlan(("/p.css",), ("us-east-1",), ("gzip",), f"{VIEWER}:8443"),
        WarmContext(
            config,
            EdgeResolver(config.resolver_host, config.resolver_port),
            Http2EdgeClient(port=config.port),
        ),
    )
    assert report.ok == 1
    assert lab.edges["127.0.0.2"].sni == [VIEWER]
    assert [s.host for s in lab.edges["127.0.0.2"].seen] == [f"{VIEWER}:8443"]


def test_given_a_certificate_for_another_name_when_warmed_then_verification_fails(
    lab: Lab, warm_http: str
) -> None:
    results, _ = run(lab, ("/a.js",), ("FRA2-C1",), ("gzip",), http=warm_http)
    (result,) = results
    assert not result.ok and not result.retryable
    assert "FRA2-C1" in (result.error or "") and "/a.js" in (result.error or "")
    assert "TLS" in (result.error or "") or "certificate" in (result.error or "").lower()
    assert lab.edges["127.0.0.5"].seen == []  # no request was ever sent over it


def test_given_a_flaky_edge_when_warmed_then_5xx_and_resets_are_retried_to_success(
    lab: Lab,
) -> None:
    edge = lab.edges["127.0.0.2"]
    edge.faults["/flaky.js"] = "flaky:2"
    results, _ = run(lab, ("/flaky.js", "/fine.js"), ("us-east-1",), ("gzip",))
    by_path = {r.task.path: r for r in results}
    assert by_path["/flaky.js"].ok and by_path["/flaky.js"].attempts == 3
    assert by_path["/fine.js"].ok and by_path["/fine.js"].attempts == 1
    assert len([s for s in edge.seen if s.path == "/flaky.js"]) == 3


def test_given_dead_resetting_and_short_edges_when_warmed_then_failures_name_target_and_path(
    lab: Lab, warm_http: str
) -> None:
    edge = lab.edges["127.0.0.2"]
    edge.faults.update(
        {"/short.bin": "short", "/reset.bin": "reset", "/gone": "404", "/busy": "503"}
    )
    results, report = run(
        lab,
        ("/short.bin", "/reset.bin", "/gone", "/busy"),
        ("us-east-1", "SFO5-C1"),
        ("identity",),
        settings=WarmSettings(concurrency=4, request_attempts=2, backoff_base=0.01),
        http=warm_http,
    )
    by_key = {(r.task.target, r.task.path): r for r in results}
    short = by_key["us-east-1", "/short.bin"]
    assert not short.ok and short.retryable and short.attempts == 2
    assert "body ended after" in (short.error or "") and "/short.bin" in (short.error or "")
    assert 0 < short.bytes_read < len(body_for("/short.bin", None))
    reset = by_key["us-east-1", "/reset.bin"]
    assert not reset.ok and reset.retryable and reset.attempts == 2
    gone = by_key["us-east-1", "/gone"]
    assert not gone.ok and gone.status == 404 and gone.attempts == 1  # 4xx: no retry now
    busy = by_key["us-east-1", "/busy"]
    assert not busy.ok and busy.status == 503 and busy.attempts == 2 and busy.retryable
    for path in ("/short.bin", "/reset.bin", "/gone", "/busy"):
        dead = by_key["SFO5-C1", path]
        assert not dead.ok and dead.retryable and dead.edge == "127.0.0.9"
        assert "SFO5-C1" in (dead.error or "") and path in (dead.error or "")
    assert report.ok == 0 and report.failed == 8


def test_given_bad_targets_and_paths_when_warmed_then_each_is_a_recorded_failure(
    lab: Lab,
) -> None:
    results, report = run(
        lab,
        ("/ok.js", "no-slash.js", ""),
        ("us-east-1", "xx-nowhere-9", "ZZZ9-Z9", "bogus"),
        ("gzip", "deflate"),
    )
    assert len(results) == 3 * 4 * 2
    ok = [r for r in results if r.ok]
    assert {(r.task.target, r.task.path, r.task.encoding) for r in ok} == {
        ("us-east-1", "/ok.js", "gzip")
    }
    errors = {(r.task.target, r.task.path, r.task.encoding): r.error or "" for r in results}
    assert "no client subnet" in errors["xx-nowhere-9", "/ok.js", "gzip"]
    assert "NXDOMAIN" in errors["ZZZ9-Z9", "/ok.js", "gzip"]
    assert errors["ZZZ9-Z9", "/ok.js", "gzip"].startswith("/ok.js at ZZZ9-Z9 (gzip): ")
    assert "neither" in errors["bogus", "/ok.js", "gzip"]
    assert "no-slash.js" in errors["us-east-1", "no-slash.js", "gzip"]
    assert "empty" in errors["us-east-1", "", "gzip"]
    assert "deflate" in errors["us-east-1", "/ok.js", "deflate"]
    assert not any(r.retryable for r in results if not r.ok)
    assert report.targets["xx-nowhere-9"].error


def test_given_plain_http_when_warmed_then_the_edge_is_reached_without_tls() -> None:
    edge = FakeEdge("127.0.0.6", None, (), "CDG50-C1")
    port = start_edges([edge])
    try:
        with LabDNSServer("d222.cloudfront.net", pop_answers={"CDG50-C1": "127.0.0.6"}) as dns:
            config = PrewarmConfig.from_env(
                {
                    "EDGEFILL_DISTRIBUTION_DOMAIN": "d222.cloudfront.net",
                    "EDGEFILL_PROTOCOL": "http",
                    "EDGEFILL_RESOLVER": dns.resolver,
                    "EDGEFILL_EDGE_PORT": str(port),
                    "EDGEFILL_ALLOW_PRIVATE_EDGES": "true",
                }
            )
            report = warm(
                WarmPlan(("/a",), ("CDG50-C1",), ("br",), config.viewer_host),
                WarmContext(
                    config,
                    EdgeResolver(config.resolver_host, config.resolver_port),
                    EdgeClient(protocol="http", port=config.port),
                ),
            )
    finally:
        edge.stop()
    assert report.ok == 1
    assert edge.seen == [Seen("127.0.0.6", "/a", "d222.cloudfront.net", "br")]


def test_given_a_target_whose_resolver_times_out_when_warmed_then_the_others_do_not_wait(
    lab: Lab,
) -> None:
    lab.dns.set_fault("drop", subnet=REGION_SUBNETS["ap-northeast-1"])
    config = lab.config()
    finished: dict[str, float] = {}
    started = time.monotonic()

    def note(result: TaskResult) -> None:
        finished[result.task.target] = time.monotonic() - started

    report = warm(
        WarmPlan(("/a", "/b"), ("ap-northeast-1", "us-east-1"), ("gzip",), VIEWER),
        WarmContext(
            config,
            EdgeResolver(config.resolver_host, config.resolver_port, timeout=0.5, attempts=2),
            Http2EdgeClient(port=config.port),
        ),
        progress=note,
    )
    # us-east-1 was warmed before the dropped resolver gave up (two 0.5 s tries): an
    # order and a lower bound, never an upper bound on a shared machine's clock
    assert finished["us-east-1"] < finished["ap-northeast-1"]
    assert finished["ap-northeast-1"] >= 1.0
    assert report.targets["us-east-1"].ok == 2
    failed = {f.task.path: f for f in report.failures}
    assert set(failed) == {"/a", "/b"} and all(f.retryable for f in failed.values())
    assert "did not answer" in (failed["/a"].error or "")


def test_given_no_time_left_when_warmed_then_every_task_is_reported_not_started(
    lab: Lab,
) -> None:
    config = lab.config()
    report = warm(
        WarmPlan(("/a", "/b"), ("us-east-1",), ("gzip", "br"), VIEWER),
        WarmContext(
            config,
            EdgeResolver(config.resolver_host, config.resolver_port),
            Http2EdgeClient(port=config.port),
            deadline=time.monotonic(),
        ),
    )
    assert report.failed == 4 and report.ok == 0
    assert all(f.retryable and "not started" in (f.error or "") for f in report.failures)
    assert lab.edges["127.0.0.2"].seen == []


def cancellable(lab: Lab, cancel: threading.Event, concurrency: int = 8) -> WarmContext:
    """A context on the lab's edges whose run stops once ``cancel`` is set."""
    config = lab.config()
    return WarmContext(
        config,
        EdgeResolver(config.resolver_host, config.resolver_port),
        Http2EdgeClient(port=config.port),
        WarmSettings(concurrency=concurrency),
        cancel=cancel,
    )


def test_given_a_cancel_set_before_the_run_when_warmed_then_no_request_is_made(lab: Lab) -> None:
    # Given a caller that has already said stop (a Ctrl-C before the first answer)
    cancel = threading.Event()
    cancel.set()
    report = warm(
        WarmPlan(("/a", "/b"), ("us-east-1",), ("gzip", "br"), VIEWER), cancellable(lab, cancel)
    )
    # Then nothing was requested, and the tasks are cancelled, neither failed nor retried
    assert report.ok == 0 and report.failed == 0
    assert len(report.cancelled) == 4 and report.summary()["cancelled"] == 4
    assert lab.edges["127.0.0.2"].seen == []


def test_given_a_cancel_during_the_run_when_warmed_then_no_task_starts_after_it(
    lab: Lab,
) -> None:
    # Given 40 tasks on one edge, two workers, and a caller that cancels after 5 results
    cancel = threading.Event()
    finished: list[TaskResult] = []

    def progress(result: TaskResult) -> None:
        finished.append(result)
        if len(finished) == 5:
            cancel.set()

    paths = tuple(f"/c/{index}" for index in range(40))
    plan = WarmPlan(paths, ("us-east-1",), ("gzip",), VIEWER)
    report = warm(plan, cancellable(lab, cancel, concurrency=2), progress=progress)
    # Then at most the two requests in flight at the cancel finished after it
    requested = len(lab.edges["127.0.0.2"].seen)
    assert 5 <= requested <= 5 + 2
    assert report.ok == requested and report.failed == 0
    # And every other task is reported cancelled, with the POP the edge named
    assert len(report.cancelled) == 40 - requested
    assert report.targets["us-east-1"].pop is not None
