"""The edge's cold path: the us-east-1 client is built at init, and a queue URL without a
region goes through us-east-1, never through the replica's own region."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from edge_origin_request import backfill_queue
from edge_origin_request.backfill_queue import QUEUE_HOME_REGION, QueueSender, queue_region

ROOT = Path(__file__).resolve().parents[2]


class RecordingSqs:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def send_message(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        return {"MessageId": "m-1"}


def lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]


def test_given_a_replica_in_tokyo_and_a_queue_url_without_a_region_then_us_east_1_is_used(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a Lambda@Edge replica running in ap-northeast-1
    monkeypatch.setenv("AWS_REGION", "ap-northeast-1")
    monkeypatch.setattr(backfill_queue, "_FALLBACK_LOGGED", set())
    url = "https://vpce-0abc.sqs.example.internal/123456789012/edgefill-backfill"
    regions: list[str] = []
    sqs = RecordingSqs()

    def client_for(region: str) -> RecordingSqs:
        regions.append(region)
        return sqs

    sender = QueueSender(client_for=client_for)
    # When two failovers are sent to a queue URL whose host names no region
    sender.send(url, '{"v":1}')
    sender.send(url, '{"v":1}')
    # Then both go through us-east-1, where the template creates the queue
    assert regions == [QUEUE_HOME_REGION, QUEUE_HOME_REGION]
    # And the fallback is logged once for that URL
    [line] = lines(capsys)
    assert line["problem"] == "queue-region" and line["queueUrl"] == url
    assert QUEUE_HOME_REGION in line["reason"]


def test_a_queue_url_naming_its_region_keeps_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert queue_region("https://sqs.eu-west-1.amazonaws.com/1/q") == "eu-west-1"
    assert queue_region("https://ap-south-1.queue.amazonaws.com/1/q") == "ap-south-1"
    assert lines(capsys) == []


def test_importing_the_handler_builds_the_us_east_1_client_during_init() -> None:
    # Given a fresh interpreter (a new container) with no endpoint overrides
    code = (
        "from edge_origin_request import app, backfill_queue as q; "
        "print(sorted(key[0] for key in q._CLIENTS))"
    )
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AWS_ENDPOINT_URL", "AWS_PROFILE"))
    }
    env.update(AWS_REGION="ap-northeast-1", AWS_CONFIG_FILE=os.devnull)
    # When the handler module is imported (Lambda's init phase)
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    # Then the us-east-1 client exists before any event, and only that one
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['us-east-1']"
