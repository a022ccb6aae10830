"""The warm report counts which protocol answered each task and the edge's stream limit
(issue 23), adding keys to the summary without changing the existing ones."""

from __future__ import annotations

from prewarm_worker.engine import TaskResult, WarmReport, WarmTask


def result(target: str, protocol: str | None, limit: int | None, ok: bool = True) -> TaskResult:
    status = 200 if protocol is not None else None
    return TaskResult(
        WarmTask("/a.js", target, "gzip"), ok, status=status, protocol=protocol, stream_limit=limit
    )


def test_given_answers_over_both_protocols_then_each_target_counts_its_own() -> None:
    report = WarmReport(tasks=5)
    report.record(result("us-east-1", "h2", 100))
    report.record(result("us-east-1", "h2", 100))
    report.record(result("NRT20-P2", "http/1.1", None))
    # A task that got no answer at all (a reset before any response) counts no protocol
    report.record(result("NRT20-P2", None, None, ok=False))
    summary = report.summary()
    assert summary["protocols"] == {"h2": 2, "http/1.1": 1}
    assert summary["targets"]["us-east-1"]["protocols"] == {"h2": 2}
    assert summary["targets"]["us-east-1"]["streamLimit"] == 100
    assert summary["targets"]["NRT20-P2"]["protocols"] == {"http/1.1": 1}
    assert "streamLimit" not in summary["targets"]["NRT20-P2"]
    assert "note" not in summary["targets"]["us-east-1"]
    # And the keys of before are all still there
    for key in ("edge", "pop", "ok", "failed", "bytes", "hits", "misses", "popMismatches"):
        assert key in summary["targets"]["us-east-1"]


def test_given_an_edge_that_allowed_no_stream_then_the_least_limit_and_a_note_are_kept() -> None:
    report = WarmReport(tasks=3)
    report.record(result("DUB56-P1", "http/1.1", 0))
    report.record(result("DUB56-P1", "h2", 100))  # a later connection allowed more
    report.record(result("SFO5-C1", "h2", 1))
    targets = report.summary()["targets"]
    assert targets["DUB56-P1"]["streamLimit"] == 0
    assert "warmed over HTTP/1.1" in targets["DUB56-P1"]["note"]
    assert targets["SFO5-C1"]["streamLimit"] == 1
    assert "one request at a time" in targets["SFO5-C1"]["note"]
