"""The prewarm handler end to end: SQS event in, edges warmed, failed tuples re-enqueued
on a moto SQS queue, partial batch failures out, one JSON summary line and EMF metrics."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from itertools import product
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from prewarm_worker import app, worker
from shared.config import PrewarmConfig
from shared.edns import EdgeResolver
from shared.messages import parse_prewarm
from tests.integration.prewarm_edges import Lab, lab, lab_servers
from tests.integration.prewarm_handler import (
    FakeContext,
    drain,
    event_with,
    log_lines,
    logs,
    queue_url,
    worker_env,
)
from tests.sample_events import load_event

__all__ = ["lab", "lab_servers", "logs", "queue_url", "worker_env"]  # fixtures


def test_given_the_sample_batch_when_handled_then_the_bad_record_alone_fails(
    worker_env: Lab, logs: io.StringIO, capsys: pytest.CaptureFixture[str]
) -> None:
    response = app.handler(load_event("prewarm_sqs_batch"), FakeContext())
    assert response == {
        "batchItemFailures": [{"itemIdentifier": "0f6f1c3e-2222-4a6b-9a55-0c0d7f0e0002"}]
    }
    lines = log_lines(logs.getvalue(), capsys.readouterr().out)
    rejected = [line for line in lines if line.get("message") == "prewarm message rejected"]
    assert "paths[0]" in rejected[0]["error"]
    (summary,) = [line for line in lines if line.get("message") == "prewarm summary"]
    assert summary["ok"] == 1 and summary["failed"] == 0 and summary["dnsQueries"] == 1
    assert summary["source"] == "backfill" and summary["edges"] == ["127.0.0.2"]


def test_given_failing_tuples_when_handled_then_exactly_those_are_re_enqueued(
    worker_env: Lab, sqs: Any, queue_url: str, logs: io.StringIO, capsys: pytest.CaptureFixture[str]
) -> None:
    worker_env.edges["127.0.0.2"].faults["/b"] = "404"
    message = {
        "v": 1,
        "type": "prewarm",
        "paths": ["/a", "/b"],
        "targets": ["us-east-1", "SFO5-C1", "ZZZ9-Z9"],  # SFO5-C1 is dead, ZZZ9-Z9 unknown
        "encodings": ["gzip", "br"],
        "source": "manual",
    }

    response = app.handler(event_with(message), FakeContext())

    assert response == {"batchItemFailures": []}
    requeued = [parse_prewarm(json.dumps(body)) for body in drain(sqs, queue_url)]
    covered = [
        (path, target, encoding)
        for m in requeued
        for path, target, encoding in product(m.paths, m.targets or (), m.encodings or ())
    ]
    expected = {("/b", "us-east-1", e) for e in ("gzip", "br")} | set(
        product(("/a", "/b"), ("SFO5-C1",), ("gzip", "br"))
    )
    assert sorted(covered) == sorted(expected)  # exactly the failed tuples, each once
    assert all(m.attempt == 1 and m.source == "manual" for m in requeued)
    assert all(m.host == "cdn.example.com" for m in requeued)
    assert len(requeued) == 2  # one per (target, path set) group, encodings merged
    lines = log_lines(logs.getvalue(), capsys.readouterr().out)
    (summary,) = [line for line in lines if line.get("message") == "prewarm summary"]
    assert summary["ok"] == 2 and summary["failed"] == 10
    assert summary["requeuedTasks"] == 6 and summary["givenUp"] == 4  # ZZZ9-Z9: NXDOMAIN
    assert summary["targets"]["ZZZ9-Z9"]["error"].endswith("(NXDOMAIN)")
    emf = [line for line in lines if "_aws" in line and line.get("target")]
    # Targets the configuration does not name are one "other" dimension, never their own.
    assert {line["target"] for line in emf} == {"us-east-1", "other"}
    by_target = {line["target"]: line for line in emf}
    assert by_target["us-east-1"]["WarmOk"] == [2.0]
    assert by_target["other"]["WarmFailed"] == [8.0]


def test_given_no_time_left_when_handled_then_untried_tasks_are_re_enqueued_not_lost(
    worker_env: Lab, sqs: Any, queue_url: str
) -> None:
    message = {"v": 1, "type": "prewarm", "paths": ["/a", "/b"], "encodings": ["br"]}
    response = app.handler(event_with(message), FakeContext(remaining_ms=1))
    assert response == {"batchItemFailures": []}
    assert worker_env.edges["127.0.0.2"].seen == []  # nothing was started
    (requeued,) = [parse_prewarm(json.dumps(body)) for body in drain(sqs, queue_url)]
    assert requeued.paths == ("/a", "/b") and requeued.targets == ("us-east-1",)
    assert requeued.encodings == ("br",) and requeued.attempt == 1


def test_given_the_last_attempt_when_tasks_fail_then_they_are_given_up_not_re_enqueued(
    worker_env: Lab, sqs: Any, queue_url: str, logs: io.StringIO, capsys: pytest.CaptureFixture[str]
) -> None:
    message = {"v": 1, "type": "prewarm", "paths": ["/a"], "targets": ["SFO5-C1"], "attempt": 2}
    assert app.handler(event_with(message), FakeContext()) == {"batchItemFailures": []}
    assert drain(sqs, queue_url) == []
    lines = log_lines(logs.getvalue(), capsys.readouterr().out)
    (given_up,) = [line for line in lines if line.get("message") == "prewarm tasks given up"]
    assert "EDGEFILL_MAX_ATTEMPTS=3" in given_up["reason"] and given_up["tasks"] == 4


def test_given_an_unreachable_resolver_when_processed_then_the_record_is_not_processed(
    worker_env: Lab, logs: io.StringIO
) -> None:
    config = PrewarmConfig.from_env({**worker_env.env(), "EDGEFILL_RESOLVER": "127.0.0.1:9"})
    runtime = replace(
        worker.build_runtime(config),
        resolver=EdgeResolver(config.resolver_host, config.resolver_port, timeout=0.2, attempts=1),
    )
    body = json.dumps({"v": 1, "type": "prewarm", "paths": ["/a"], "targets": ["us-east-1"]})
    with pytest.raises(worker.NotProcessed, match="us-east-1: resolver 127.0.0.1:9 did not answer"):
        worker.prewarm_record(body, runtime, app.logger, message_id="m-0")
    (line,) = [
        line for line in log_lines(logs.getvalue()) if line["message"] == "no target resolved"
    ]
    assert line["messageId"] == "m-0"


def test_given_a_configuration_error_when_handled_then_every_record_is_retried(
    worker_env: Lab, monkeypatch: pytest.MonkeyPatch, logs: io.StringIO
) -> None:
    monkeypatch.setenv("EDGEFILL_CONCURRENCY", "many")
    worker.runtime.cache_clear()
    message = {"v": 1, "type": "prewarm", "paths": ["/a"]}
    # Every record failed: Powertools fails the invocation so SQS retries the batch.
    with pytest.raises(BatchProcessingError):
        app.handler(event_with(message, message), FakeContext())
    errors = [
        line
        for line in log_lines(logs.getvalue())
        if line["message"] == "prewarm configuration error"
    ]
    assert [line["variable"] for line in errors] == ["EDGEFILL_CONCURRENCY"] * 2
