"""``EDGEFILL_MAX_WARM_BYTES``: once a message's downloads reach the cap no new task
starts; what it left out is logged and counted (``capped``), never re-enqueued."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from prewarm_worker import app
from prewarm_worker.engine import WarmContext, WarmPlan, WarmSettings, warm
from shared.config import ConfigError, PrewarmConfig
from shared.edge_http2 import Http2EdgeClient
from shared.edns import EdgeResolver
from tests.integration.prewarm_edges import VIEWER, Lab, body_for, lab, lab_servers
from tests.integration.prewarm_handler import (
    FakeContext,
    drain,
    event_with,
    log_lines,
    logs,
    queue_url,
    worker_env,
)

__all__ = ["lab", "lab_servers", "logs", "queue_url", "worker_env"]  # fixtures

PATHS = tuple(f"/p{index}" for index in range(10))  # same-length paths: equal body sizes
BODY = len(body_for("/p0", "gzip"))


def run(lab: Lab, max_bytes: int | None) -> Any:
    config = lab.config()
    return warm(
        WarmPlan(PATHS, ("us-east-1",), ("gzip",), VIEWER),
        WarmContext(
            config,
            EdgeResolver(config.resolver_host, config.resolver_port),
            Http2EdgeClient(port=config.port),
            WarmSettings(concurrency=1),  # one task at a time: the cap is met exactly
        ),
        max_bytes=max_bytes,
    )


def test_given_a_cap_of_two_bodies_when_warmed_then_two_tasks_run_and_eight_are_capped(
    lab: Lab,
) -> None:
    lab.edges["127.0.0.2"].seen.clear()
    report = run(lab, max_bytes=2 * BODY)
    # Then the cap stopped the run after the second body, with nothing failed
    assert report.ok == 2 and report.bytes == 2 * BODY
    assert report.failures == [] and len(report.capped) == 8
    assert {task.path for task in report.capped} | {"/p0", "/p1"} >= set(PATHS)
    assert len(lab.edges["127.0.0.2"].seen) == 2
    assert report.summary()["capped"] == 8


def test_given_no_cap_or_a_high_one_when_warmed_then_everything_runs(lab: Lab) -> None:
    for cap in (None, 10 * BODY + 1):
        report = run(lab, max_bytes=cap)
        assert report.ok == 10 and report.capped == []


def test_given_the_variable_when_read_then_it_is_validated() -> None:
    env = {"EDGEFILL_DISTRIBUTION_DOMAIN": "d111.cloudfront.net"}
    assert PrewarmConfig.from_env(env).max_warm_bytes is None
    assert PrewarmConfig.from_env({**env, "EDGEFILL_MAX_WARM_BYTES": ""}).max_warm_bytes is None
    assert PrewarmConfig.from_env({**env, "EDGEFILL_MAX_WARM_BYTES": "1048576"}).max_warm_bytes == (
        1048576
    )
    for bad in ("0", "-5", "1e6", "lots"):
        with pytest.raises(ConfigError) as error:
            PrewarmConfig.from_env({**env, "EDGEFILL_MAX_WARM_BYTES": bad})
        assert error.value.variable == "EDGEFILL_MAX_WARM_BYTES"


def test_given_the_worker_cap_when_a_message_is_handled_then_capped_is_logged_not_requeued(
    worker_env: Lab,
    sqs: Any,
    queue_url: str,
    logs: io.StringIO,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a worker capped at two bodies, one thread (one HTTP/2 stream), and ten warms
    monkeypatch.setenv("EDGEFILL_MAX_WARM_BYTES", str(2 * BODY))
    monkeypatch.setenv("EDGEFILL_CONCURRENCY", "1")
    monkeypatch.setenv("EDGEFILL_WARM_STREAMS", "1")
    message = {"v": 1, "type": "prewarm", "paths": list(PATHS), "encodings": ["gzip"]}
    # When it is handled
    response = app.handler(event_with(message), FakeContext())
    # Then the message succeeds, nothing is re-enqueued
    assert response == {"batchItemFailures": []}
    assert drain(sqs, queue_url) == []
    lines = log_lines(logs.getvalue(), capsys.readouterr().out)
    # And one warning names what the cap left out
    (capped,) = [line for line in lines if line.get("message") == "prewarm tasks capped"]
    assert capped["capped"] == 8 and capped["maxWarmBytes"] == 2 * BODY
    assert len(capped["left"]) == 8 and capped["left"][0]["target"] == "us-east-1"
    (summary,) = [line for line in lines if line.get("message") == "prewarm summary"]
    assert summary["ok"] == 2 and summary["failed"] == 0 and summary["capped"] == 8
    assert summary["requeuedTasks"] == 0 and summary["givenUp"] == 0
    # And the WarmCapped metric counts them
    counted = [line["WarmCapped"] for line in lines if "WarmCapped" in line]
    assert counted == [[8.0]], json.dumps(counted)
