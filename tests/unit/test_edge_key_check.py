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


def failover_with_prefix(uri: str, prefix: Any) -> tuple[RecordingSender, dict[str, Any]]:
    event = load_event("edge_failover_get")
    request = event["Records"][0]["cf"]["request"]
    request["uri"] = uri
    headers = request["origin"]["custom"]["customHeaders"]
    headers["x-edgefill-key-prefix"] = prefix
    sender = RecordingSender()
    handle_origin_request(event, request, FailoverReporter(sender, RecentlyQueued()))
    return sender, request


def test_the_key_prefix_header_counts_toward_the_key_limit(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given a URI whose key fits S3's 1 024 bytes alone, but not under the stack's prefix
    uri = "/" + "k" * 1020
    prefix = [{"key": "x-edgefill-key-prefix", "value": "/media/2026"}]
    # When it fails over at an origin that names the prefix / Then nothing is queued
    sender, request = failover_with_prefix(uri, prefix)
    assert sender.bodies == []
    [line] = lines(capsys)
    assert (line["event"], line["reason"]) == ("backfill-skipped", "bad_key")
    assert "1024" in line["detail"]
    # And the prefix header is stripped like every x-edgefill-* header
    assert set(request["origin"]["custom"]["customHeaders"]) == {"x-origin-verify"}
    # While without the prefix the same URI is queued
    sender, _ = failover(uri)
    assert len(sender.bodies) == 1


@pytest.mark.parametrize(
    "prefix",
    [
        [{"key": "x-edgefill-key-prefix", "value": "_edgefill"}],
        [{"key": "x-edgefill-key-prefix", "value": "a/../b"}],
        [{"key": "x-edgefill-key-prefix"}],
        "media",
    ],
)
def test_an_unusable_key_prefix_header_queues_nothing_and_says_so(
    prefix: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    sender, request = failover_with_prefix("/img/a.jpg", prefix)
    assert sender.bodies == []
    [line] = lines(capsys)
    assert line["level"] == "ERROR"
    assert line["problem"] == "origin custom header x-edgefill-key-prefix"
    assert set(request["origin"]["custom"]["customHeaders"]) == {"x-origin-verify"}
