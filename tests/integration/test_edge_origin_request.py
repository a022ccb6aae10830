"""The origin-request handler against moto in server mode, over real HTTP."""

from __future__ import annotations

import copy
import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from edge_origin_request import app
from edge_origin_request.backfill_queue import QueueSender
from edge_origin_request.failover import FailoverReporter
from edge_origin_request.recently_queued import RecentlyQueued
from shared.messages import parse_backfill
from tests.integration.edge_socket_servers import SilentServer, refusing_url
from tests.sample_events import load_event

AWS_QUEUE_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/edgefill-backfill"


@pytest.fixture
def fresh_container(monkeypatch: pytest.MonkeyPatch) -> FailoverReporter:
    """The handler as a newly started container sees it: no memory, no paused queue."""
    reporter = FailoverReporter(sender=QueueSender(), recently_queued=RecentlyQueued())
    monkeypatch.setattr(app, "_REPORTER", reporter)
    return reporter


@pytest.fixture
def queue_url(sqs: Any) -> str:
    return str(sqs.create_queue(QueueName="edgefill-backfill")["QueueUrl"])


def failover_event(name: str, queue_url: str) -> Any:
    event = load_event(name)
    marker = event["Records"][0]["cf"]["request"]["origin"]["custom"]["customHeaders"]
    marker["x-edgefill-queue"][0]["value"] = queue_url
    return event


def request_of(event: Any) -> Any:
    return event["Records"][0]["cf"]["request"]


def drain(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    while True:
        batch = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=10,
            MessageAttributeNames=["All"],
            AttributeNames=["All"],
        ).get("Messages", [])
        if not batch:
            return messages
        messages.extend(batch)


def log_lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]


@pytest.fixture
def edge_region(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("AWS_REGION", "ap-northeast-1")
    yield "ap-northeast-1"


@pytest.mark.usefixtures("fresh_container")
def test_failover_get_puts_one_v1_message_on_the_queue(
    sqs: Any, queue_url: str, edge_region: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a GET at an edge in ap-northeast-1 failing over to the full origin, whose
    # marker names the backfill queue in us-east-1 by its AWS URL (moto serves it by name)
    event = load_event("edge_failover_get")
    marker = request_of(event)["origin"]["custom"]["customHeaders"]["x-edgefill-queue"]
    assert marker[0]["value"] == AWS_QUEUE_URL
    before = datetime.now(UTC).replace(microsecond=0)
    # When the handler runs
    returned = app.handler(event, None)
    # Then the queue holds exactly one v1 backfill message with every field set
    [message] = drain(sqs, queue_url)
    body = json.loads(message["Body"])
    assert body == {
        "v": 1,
        "type": "backfill",
        "uri": "/img/a%20b.jpg",
        "host": "d111111abcdef8.cloudfront.net",  # the event's distribution domain
        "distribution": "EDFDVBD6EXAMPLE",
        "requestId": "Ke8sYZrrU5jvQ0Aj4WcC1ZMO6ZSDgVAm3YDzeVfkGAFP_JxVw5QWqw==",
        "edgeRegion": edge_region,
        "at": body["at"],
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", body["at"])
    at = datetime.strptime(body["at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert before <= at <= datetime.now(UTC)
    # And the body is the whole contract: no message attributes to keep in step with it
    assert "MessageAttributes" not in message
    assert message["Attributes"]["ApproximateReceiveCount"] == "1"
    # And the request comes back with the marker gone and the origin's other header kept
    expected = copy.deepcopy(request_of(load_event("edge_failover_get")))
    del expected["origin"]["custom"]["customHeaders"]["x-edgefill-queue"]
    assert returned == expected
    # And one JSON line says what was queued, with the id SQS gave it
    [line] = log_lines(capsys)
    assert line["event"] == "backfill-queued" and line["messageId"] == message["MessageId"]


@pytest.mark.usefixtures("fresh_container")
@pytest.mark.parametrize(
    ("name", "uri", "query"),
    [
        ("edge_failover_head", "/video/intro.mp4", ""),
        ("edge_failover_query", "/img/thumb.jpg", "w=300&fmt=webp&sig=a%2Bb"),
        ("edge_failover_non_ascii", "/photos/%E6%97%A5%E6%9C%AC/caf%C3%A9%20cr%C3%A8me.jpg", ""),
    ],
)
def test_head_query_and_non_ascii_failovers_reach_the_queue(
    name: str, uri: str, query: str, sqs: Any, queue_url: str
) -> None:
    app.handler(failover_event(name, queue_url), None)
    [message] = drain(sqs, queue_url)
    backfill = parse_backfill(message["Body"])
    assert (backfill.uri, backfill.query) == (uri, query)


@pytest.mark.usefixtures("fresh_container")
def test_post_to_the_marked_origin_queues_nothing(sqs: Any, queue_url: str) -> None:
    event = failover_event("edge_failover_post", queue_url)
    returned = app.handler(event, None)
    assert drain(sqs, queue_url) == []
    assert "x-edgefill-queue" not in returned["origin"]["custom"]["customHeaders"]
    assert returned["method"] == "POST" and returned["uri"] == "/api/upload"


@pytest.mark.usefixtures("fresh_container")
def test_every_own_header_is_stripped_before_the_origin_sees_it(sqs: Any, queue_url: str) -> None:
    event = failover_event("edge_failover_get", queue_url)
    headers = request_of(event)["origin"]["custom"]["customHeaders"]
    headers["x-edgefill-trace"] = [{"key": "x-edgefill-trace", "value": "on"}]
    returned = app.handler(event, None)
    assert set(returned["origin"]["custom"]["customHeaders"]) == {"x-origin-verify"}
    assert len(drain(sqs, queue_url)) == 1


@pytest.mark.usefixtures("fresh_container")
def test_s3_origin_does_no_io_at_all(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given every AWS endpoint pointing at a tripwire that counts connections
    with SilentServer() as tripwire:
        monkeypatch.setenv("AWS_ENDPOINT_URL", tripwire.url)
        monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", tripwire.url)
        # When the S3 primary's request and an unmarked custom origin's pass through
        for name in ("edge_s3_origin", "edge_custom_origin_unmarked"):
            event = load_event(name)
            assert app.handler(event, None) == request_of(load_event(name))
        # Then nothing connected anywhere
        assert tripwire.connections == 0
        # And the tripwire works: a failover does reach it
        app.handler(failover_event("edge_failover_get", tripwire.url + "/123456789012/q"), None)
        assert tripwire.connections >= 1


@pytest.mark.usefixtures("fresh_container")
def test_thousand_identical_failovers_make_one_message(sqs: Any, queue_url: str) -> None:
    for _ in range(1000):
        app.handler(failover_event("edge_failover_get", queue_url), None)
    assert len(drain(sqs, queue_url)) == 1


@pytest.mark.usefixtures("fresh_container")
def test_distinct_objects_make_distinct_messages(sqs: Any, queue_url: str) -> None:
    for index in range(5):
        for _ in range(3):
            event = failover_event("edge_failover_get", queue_url)
            request_of(event)["uri"] = f"/img/{index}.jpg"
            app.handler(event, None)
    uris = sorted(parse_backfill(m["Body"]).uri for m in drain(sqs, queue_url))
    assert uris == [f"/img/{index}.jpg" for index in range(5)]


def test_capacity_bound_holds_and_evicted_objects_are_queued_again(
    sqs: Any, queue_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a container whose memory holds 3 objects
    memory = RecentlyQueued(capacity=3)
    monkeypatch.setattr(app, "_REPORTER", FailoverReporter(QueueSender(), memory))

    def miss(uri: str) -> None:
        event = failover_event("edge_failover_get", queue_url)
        request_of(event)["uri"] = uri
        app.handler(event, None)

    # When 4 distinct objects fail over, then the first one again
    for uri in ("/1", "/2", "/3", "/4", "/1"):
        miss(uri)
        assert len(memory) <= 3
    # Then /1 was evicted by /4 and queued a second time; /4 is still remembered
    miss("/4")
    uris = sorted(parse_backfill(m["Body"]).uri for m in drain(sqs, queue_url))
    assert uris == ["/1", "/1", "/2", "/3", "/4"]


def test_a_failed_send_is_retried_by_the_next_miss(
    sqs: Any, queue_url: str, moto: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a container without the pause after failures, and SQS refusing connections
    monkeypatch.setattr(
        app, "_REPORTER", FailoverReporter(QueueSender(pause_seconds=0), RecentlyQueued())
    )
    monkeypatch.setenv("AWS_ENDPOINT_URL", refusing_url())
    app.handler(failover_event("edge_failover_get", queue_url), None)
    # When SQS is back and the same object misses again
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto)
    app.handler(failover_event("edge_failover_get", queue_url), None)
    # Then the failure was not remembered as queued: the message is there
    assert len(drain(sqs, queue_url)) == 1


@pytest.mark.usefixtures("fresh_container")
def test_missing_queue_fails_open_with_one_error_line(
    sqs: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a marker naming a queue that does not exist
    missing = f"{sqs.meta.endpoint_url}/123456789012/no-such-queue"
    event = failover_event("edge_failover_get", missing)
    expected = copy.deepcopy(request_of(event))
    del expected["origin"]["custom"]["customHeaders"]["x-edgefill-queue"]
    # When the handler runs, Then the request goes on and SQS's refusal is one error line
    started = time.perf_counter()
    assert app.handler(event, None) == expected
    assert time.perf_counter() - started < 1.5
    # (the local endpoint's URL names no region: that fallback to us-east-1 is logged too)
    [line] = [line for line in log_lines(capsys) if line.get("problem") != "queue-region"]
    assert line["level"] == "ERROR" and line["problem"] == "sqs"
    assert "NonExistentQueue" in line["reason"] or "QueueDoesNotExist" in line["reason"]


@pytest.mark.usefixtures("fresh_container")
@pytest.mark.parametrize(
    "bad_url", ["", "   ", "sqs://queue", "https://sqs.us-east-1.amazonaws.com/"]
)
def test_empty_or_invalid_queue_url_fails_open_without_io(
    bad_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with SilentServer() as tripwire:
        monkeypatch.setenv("AWS_ENDPOINT_URL", tripwire.url)
        event = failover_event("edge_failover_get", bad_url)
        expected = copy.deepcopy(request_of(event))
        del expected["origin"]["custom"]["customHeaders"]["x-edgefill-queue"]
        assert app.handler(event, None) == expected
        assert tripwire.connections == 0
    [line] = log_lines(capsys)
    assert line["level"] == "ERROR"
    assert line["problem"] in ("queue-url", "origin custom header x-edgefill-queue")


@pytest.mark.usefixtures("fresh_container")
@pytest.mark.parametrize(
    "name",
    ["edge_missing_origin", "edge_bad_origin_neither", "edge_bad_header_shapes"],
)
def test_malformed_samples_fail_open_against_a_live_queue(
    name: str, sqs: Any, queue_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    event = load_event(name)
    expected = copy.deepcopy(request_of(event))
    expected.get("origin", {}).get("custom", {}).get("customHeaders", {}).pop(
        "x-edgefill-queue", None
    )
    assert app.handler(event, None) == expected
    assert drain(sqs, queue_url) == []
    [line] = log_lines(capsys)
    assert line["level"] == "ERROR"


@pytest.mark.usefixtures("fresh_container")
def test_oversized_uri_queues_nothing(
    sqs: Any, queue_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    event = failover_event("edge_failover_get", queue_url)
    request_of(event)["uri"] = "/" + "x" * 8200
    returned = app.handler(event, None)
    assert returned["uri"] == "/" + "x" * 8200
    assert drain(sqs, queue_url) == []
    [line] = log_lines(capsys)
    assert line["problem"] == "message.uri" and "8192" in line["reason"]


@pytest.mark.usefixtures("fresh_container")
def test_the_sqs_specific_endpoint_variable_wins(
    sqs: Any, queue_url: str, moto: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the global endpoint variable on a tripwire and the SQS one on moto
    with SilentServer() as tripwire:
        monkeypatch.setenv("AWS_ENDPOINT_URL", tripwire.url)
        monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", moto)
        # When a failover is handled
        app.handler(load_event("edge_failover_get"), None)
        # Then botocore sent it where AWS_ENDPOINT_URL_SQS points, and nowhere else
        assert tripwire.connections == 0
    assert len(drain(sqs, queue_url)) == 1
