"""The edge queues nothing the backfill worker would refuse: ``ObjectKey.from_uri`` runs on
each failover before a message is built, and a refusal is one ``backfill-skipped`` line."""

from __future__ import annotations

import json
from typing import Any

import pytest

from edge_origin_request.failover import FailoverReporter, cloudfront_request, handle_origin_request
from edge_origin_request.recently_queued import RecentlyQueued
from shared.keys import ObjectKey
from shared.messages import parse_backfill
from tests.sample_events import load_event


class RecordingSender:
    def __init__(self) -> None:
        self.bodies: list[str] = []

    def send(self, queue_url: str, body: str) -> str:
        self.bodies.append(body)
        return f"id-{len(self.bodies)}"


def failover(uri: str) -> tuple[RecordingSender, dict[str, Any]]:
    event = load_event("edge_failover_get")
    event["Records"][0]["cf"]["request"]["uri"] = uri
    request = cloudfront_request(event)
    assert request is not None
    sender = RecordingSender()
    handle_origin_request(event, request, FailoverReporter(sender, RecentlyQueued()))
    return sender, request


def lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]


@pytest.mark.parametrize(
    ("uri", "reason"),
    [
        ("/img/a+b.jpg", "non_canonical"),
        ("/img/a%2Fb.jpg", "non_canonical"),
        ("/img/a%2fb.jpg", "non_canonical"),
        ("/img/a%5Cb.jpg", "non_canonical"),
        ("/img/a%5cb.jpg", "non_canonical"),
        ("/img/a%3Bb.jpg", "non_canonical"),
        ("/_edgefill/leases/x", "bad_key"),
        ("/%5fedgefill/leases/x", "bad_key"),
        ("/a/%2e%2e/b", "bad_key"),
        ("/a%00b", "bad_key"),
        ("/a%0d%0ab", "bad_key"),
        ("/" + "k" * 1100, "bad_key"),
        ("/a%ff", "bad_key"),
    ],
)
def test_a_uri_the_worker_would_refuse_queues_nothing(
    uri: str, reason: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a failover for a URI the worker's key rules refuse
    sender, request = failover(uri)
    # Then no message is sent, the marker is still stripped, and one INFO line names why
    assert sender.bodies == []
    assert "x-edgefill-queue" not in request["origin"]["custom"]["customHeaders"]
    [line] = lines(capsys)
    assert (line["level"], line["event"], line["reason"]) == ("INFO", "backfill-skipped", reason)
    assert len(json.dumps(line)) < 2048


@pytest.mark.parametrize(
    ("uri", "key_text"),
    [
        ("/img/a%2Bb.jpg", "a+b.jpg"),
        ("/img/a%2bb.jpg", "a+b.jpg"),
        ("/img/a;b=c.jpg", "a;b=c.jpg"),
        ("/img/a%20b.jpg", "a b.jpg"),
    ],
)
def test_a_canonical_uri_is_queued_as_it_came(
    uri: str, key_text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    sender, _ = failover(uri)
    [body] = sender.bodies
    assert parse_backfill(body).uri == uri
    assert ObjectKey.from_uri(uri).key == "img/" + key_text
    [line] = lines(capsys)
    assert line["event"] == "backfill-queued"
