"""The edge function's two EMF metrics: one log line per event carries the metric, in the
shape CloudWatch Logs extracts (namespace ``edgefill``, dimension ``service=edge``)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from edge_origin_request.backfill_queue import SendFailed
from edge_origin_request.failover import FailoverReporter, cloudfront_request, handle_origin_request
from edge_origin_request.log_lines import log_error, log_queued
from edge_origin_request.recently_queued import RecentlyQueued
from tests.sample_events import load_event


class Sender:
    def __init__(self, fail: bool) -> None:
        self.fail = fail

    def send(self, queue_url: str, body: str) -> str:
        if self.fail:
            raise SendFailed("sqs", "EndpointConnectionError: refused")
        return "id-1"


def failover(fail: bool, capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    event = load_event("edge_failover_get")
    request = cloudfront_request(event)
    assert request is not None
    reporter = FailoverReporter(sender=Sender(fail), recently_queued=RecentlyQueued())
    handle_origin_request(event, request, reporter)
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]


def metric_of(line: dict[str, Any]) -> str:
    """The one metric an EMF line declares, after checking the whole EMF shape."""
    emf = line["_aws"]
    assert abs(emf["Timestamp"] - time.time() * 1000) < 60_000
    [directive] = emf["CloudWatchMetrics"]
    assert directive["Namespace"] == "edgefill"
    assert directive["Dimensions"] == [["service"]]
    assert line["service"] == "edge"
    [metric] = directive["Metrics"]
    assert metric["Unit"] == "Count"
    assert line[metric["Name"]] == 1  # the value sits at the top level, as EMF requires
    return str(metric["Name"])


def test_a_queued_failover_is_one_line_counting_failovers_queued(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given a failover whose message SQS accepts
    [line] = failover(False, capsys)
    # Then its one log line is also the FailoversQueued metric
    assert line["event"] == "backfill-queued"
    assert metric_of(line) == "FailoversQueued"


def test_a_send_failure_is_one_line_counting_send_failures(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given a failover whose message cannot be sent
    [line] = failover(True, capsys)
    # Then its one error line is also the SendFailures metric
    assert line["event"] == "edge-error" and line["problem"] == "sqs"
    assert metric_of(line) == "SendFailures"


def test_other_errors_count_no_metric(capsys: pytest.CaptureFixture[str]) -> None:
    log_error("request.method", "must be a string")
    [line] = [json.loads(text) for text in capsys.readouterr().out.splitlines()]
    assert "_aws" not in line and "SendFailures" not in line


def test_no_field_can_shadow_the_metric(capsys: pytest.CaptureFixture[str]) -> None:
    # Given a caller passing fields named like the EMF members
    log_queued(_aws="x", service="viewer", FailoversQueued=99, uri="/a")
    [line] = [json.loads(text) for text in capsys.readouterr().out.splitlines()]
    # Then the metric stays well formed
    assert metric_of(line) == "FailoversQueued"
    assert line["uri"] == "/a"
