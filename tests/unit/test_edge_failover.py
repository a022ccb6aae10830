"""What the origin-request function does with each kind of event, with a fake sender.

Every case checks the three promises: the request goes back as it came (minus the
``x-edgefill-*`` origin headers on the marked origin), nothing raises, and each problem
is exactly one JSON error line.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from edge_origin_request import app
from edge_origin_request.backfill_queue import SendFailed
from edge_origin_request.failover import FailoverReporter, cloudfront_request, handle_origin_request
from edge_origin_request.recently_queued import RecentlyQueued
from shared.messages import parse_backfill
from tests.sample_events import load_event

QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/edgefill-backfill"


class FakeSender:
    def __init__(self, failures: int = 0) -> None:
        self.bodies: list[tuple[str, str]] = []
        self.attempts = 0
        self.failures = failures

    def send(self, queue_url: str, body: str) -> str:
        self.attempts += 1
        if self.failures:
            self.failures -= 1
            raise SendFailed("sqs", "EndpointConnectionError: refused")
        self.bodies.append((queue_url, body))
        return f"id-{len(self.bodies)}"


def run(event: Any, sender: FakeSender, memory: RecentlyQueued | None = None) -> Any:
    request = cloudfront_request(event)
    assert request is not None
    reporter = FailoverReporter(
        sender=sender, recently_queued=memory if memory is not None else RecentlyQueued()
    )
    handle_origin_request(event, request, reporter)
    return request


def lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]


def request_of(event: Any) -> Any:
    return event["Records"][0]["cf"]["request"]


def without_own_headers(event: Any) -> Any:
    expected = copy.deepcopy(request_of(event))
    for kind in ("custom", "s3"):
        headers = expected["origin"].get(kind, {}).get("customHeaders", {})
        for name in [n for n in headers if n.lower().startswith("x-edgefill-")]:
            del headers[name]
    return expected


@pytest.mark.parametrize("name", ["edge_s3_origin", "edge_custom_origin_unmarked"])
def test_unmarked_origin_passes_through_untouched(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an origin-request for an origin without the marker header
    event = load_event(name)
    sender = FakeSender()
    # When it is handled
    returned = run(event, sender)
    # Then the very request comes back unchanged, nothing is sent and nothing is logged
    assert returned is request_of(event)
    assert returned == request_of(load_event(name))
    assert sender.attempts == 0
    assert lines(capsys) == []


def test_failover_get_queues_one_backfill_message(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a GET failing over to the marked full origin at an edge in ap-northeast-1
    monkeypatch.setenv("AWS_REGION", "ap-northeast-1")
    event = load_event("edge_failover_get")
    sender = FakeSender()
    # When it is handled
    returned = run(event, sender)
    # Then one v1 backfill message goes to the queue named by the marker
    [(queue_url, body)] = sender.bodies
    assert queue_url == QUEUE
    message = parse_backfill(body)
    # (the host is the distribution's domain from the event's config, never the Host
    # CloudFront sends the origin: that is the origin's own name)
    assert (message.uri, message.query, message.host) == (
        "/img/a%20b.jpg",
        "",
        "d111111abcdef8.cloudfront.net",
    )
    assert message.distribution == "EDFDVBD6EXAMPLE"
    assert message.request_id == "Ke8sYZrrU5jvQ0Aj4WcC1ZMO6ZSDgVAm3YDzeVfkGAFP_JxVw5QWqw=="
    assert message.edge_region == "ap-northeast-1"
    # And the request comes back without the marker, other origin headers kept
    assert returned == without_own_headers(load_event("edge_failover_get"))
    assert "x-origin-verify" in returned["origin"]["custom"]["customHeaders"]
    # And one INFO line says what was queued
    [line] = lines(capsys)
    assert line["event"] == "backfill-queued" and line["messageId"] == "id-1"


def test_head_is_a_failover_too() -> None:
    sender = FakeSender()
    run(load_event("edge_failover_head"), sender)
    assert parse_backfill(sender.bodies[0][1]).uri == "/video/intro.mp4"


@pytest.mark.parametrize("method", ["POST", "PUT", "OPTIONS", "DELETE", "PATCH"])
def test_other_methods_queue_nothing_but_lose_the_marker(
    method: str, capsys: pytest.CaptureFixture[str]
) -> None:
    event = load_event("edge_failover_post")
    request_of(event)["method"] = method
    expected = without_own_headers(event)
    sender = FakeSender()
    assert run(event, sender) == expected
    assert sender.attempts == 0
    assert lines(capsys) == []


def test_query_string_travels_raw() -> None:
    sender = FakeSender()
    run(load_event("edge_failover_query"), sender)
    assert parse_backfill(sender.bodies[0][1]).query == "w=300&fmt=webp&sig=a%2Bb"


def test_non_ascii_uri_travels_percent_encoded_as_cloudfront_passed_it() -> None:
    sender = FakeSender()
    run(load_event("edge_failover_non_ascii"), sender)
    body = sender.bodies[0][1]
    assert parse_backfill(body).uri == "/photos/%E6%97%A5%E6%9C%AC/caf%C3%A9%20cr%C3%A8me.jpg"
    assert body.isascii()


def test_every_own_header_is_stripped_whatever_its_case() -> None:
    event = load_event("edge_failover_get")
    headers = request_of(event)["origin"]["custom"]["customHeaders"]
    headers["x-edgefill-trace"] = [{"key": "x-edgefill-trace", "value": "1"}]
    headers["X-Edgefill-Debug"] = [{"key": "X-Edgefill-Debug", "value": "1"}]
    returned = run(event, FakeSender())
    assert set(returned["origin"]["custom"]["customHeaders"]) == {"x-origin-verify"}


def test_marker_on_an_s3_origin_marks_it_as_the_fallback() -> None:
    event = load_event("edge_s3_origin")
    s3 = request_of(event)["origin"]["s3"]
    s3["customHeaders"]["x-edgefill-queue"] = [{"key": "x-edgefill-queue", "value": QUEUE}]
    sender = FakeSender()
    returned = run(event, sender)
    assert len(sender.bodies) == 1
    assert returned["origin"]["s3"]["customHeaders"] == {}


def test_a_failed_send_fails_open_strips_and_logs_one_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    event = load_event("edge_failover_get")
    returned = run(event, FakeSender(failures=1))
    assert returned == without_own_headers(load_event("edge_failover_get"))
    [line] = lines(capsys)
    assert line["level"] == "ERROR" and line["problem"] == "sqs"
    assert line["uri"] == "/img/a%20b.jpg" and line["queue"] == QUEUE


def test_identical_failovers_queue_one_message() -> None:
    sender, memory = FakeSender(), RecentlyQueued()
    for _ in range(1000):
        run(load_event("edge_failover_get"), sender, memory)
    assert len(sender.bodies) == 1


def test_a_failed_send_is_not_remembered_so_the_next_miss_sends_again() -> None:
    sender, memory = FakeSender(failures=1), RecentlyQueued()
    run(load_event("edge_failover_get"), sender, memory)
    run(load_event("edge_failover_get"), sender, memory)
    assert sender.attempts == 2
    assert len(sender.bodies) == 1


def test_the_same_uri_with_another_query_or_host_is_another_object() -> None:
    sender, memory = FakeSender(), RecentlyQueued()
    for query, host in [("", "a.example.com"), ("v=2", "a.example.com"), ("", "b.example.com")]:
        event = load_event("edge_failover_get")
        request_of(event)["querystring"] = query
        event["Records"][0]["cf"]["config"]["distributionDomainName"] = host
        run(event, sender, memory)
    assert len(sender.bodies) == 3


# ---- bad input: never raise, request returned as it came, one JSON error line ----


def set_path(event: Any, path: str, value: Any) -> None:
    node = request_of(event)
    *parents, last = path.split(".")
    for part in parents:
        node = node[part]
    if value is DELETE:
        del node[last]
    else:
        node[last] = value


DELETE = object()
MARKER = "origin.custom.customHeaders.x-edgefill-queue"


@pytest.mark.parametrize(
    ("path", "value", "problem"),
    [
        ("origin", DELETE, "request.origin"),
        ("origin", "origin.example.com", "request.origin"),
        ("origin", {}, "request.origin"),
        ("origin.custom", ["not", "an", "object"], "request.origin.custom"),
        ("origin.custom.customHeaders", [], "request.origin.custom.customHeaders"),
    ],
)
def test_unreadable_origin_leaves_the_request_as_it_came(
    path: str, value: Any, problem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    event = load_event("edge_failover_get")
    set_path(event, path, value)
    expected = copy.deepcopy(request_of(event))
    sender = FakeSender()
    assert run(event, sender) == expected
    assert sender.attempts == 0
    [line] = lines(capsys)
    assert line["level"] == "ERROR" and line["problem"] == problem


@pytest.mark.parametrize(
    ("path", "value", "problem"),
    [
        (MARKER, QUEUE, "origin custom header x-edgefill-queue"),
        (MARKER, [], "origin custom header x-edgefill-queue"),
        (
            MARKER,
            [{"key": "x-edgefill-queue", "value": ""}],
            "origin custom header x-edgefill-queue",
        ),
        (
            MARKER,
            [{"key": "x-edgefill-queue", "value": 7}],
            "origin custom header x-edgefill-queue",
        ),
        ("method", DELETE, "request.method"),
        ("method", 42, "request.method"),
        ("uri", DELETE, "request.uri"),
        ("uri", ["/a"], "request.uri"),
        ("uri", "/" + "a" * 8192, "message.uri"),
        ("uri", "no-leading-slash", "message.uri"),
        ("uri", "/raw space and é", "message.uri"),
        ("querystring", {"a": 1}, "request.querystring"),
        ("querystring", "a=<script>", "message.query"),
    ],
)
def test_unusable_failover_queues_nothing_strips_and_logs_one_error(
    path: str, value: Any, problem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    event = load_event("edge_failover_get")
    set_path(event, path, value)
    expected = without_own_headers(event)
    sender = FakeSender()
    assert run(event, sender) == expected
    assert sender.attempts == 0
    [line] = lines(capsys)
    assert line["level"] == "ERROR" and line["problem"] == problem
    assert len(json.dumps(line)) < 2048  # an 8 KiB URI is quoted, not copied


@pytest.mark.parametrize("value", [DELETE, 42, "not a host!", "", None])
def test_an_unreadable_distribution_domain_costs_only_the_optional_host(value: Any) -> None:
    event = load_event("edge_failover_get")
    config = event["Records"][0]["cf"]["config"]
    if value is DELETE:
        del config["distributionDomainName"]
    else:
        config["distributionDomainName"] = value
    sender = FakeSender()
    run(event, sender)
    message = parse_backfill(sender.bodies[0][1])
    assert message.uri == "/img/a%20b.jpg" and message.host is None


@pytest.mark.parametrize("value", [DELETE, "Host: x", [{"key": "Host"}]])
def test_the_origin_host_header_is_never_the_message_host(value: Any) -> None:
    # Given an origin request whose Host is the full origin's name, or unreadable
    event = load_event("edge_failover_get")
    set_path(event, "headers.host", value)
    sender = FakeSender()
    run(event, sender)
    # Then the message's host is still the distribution's domain
    assert parse_backfill(sender.bodies[0][1]).host == "d111111abcdef8.cloudfront.net"


def test_missing_config_costs_only_distribution_and_request_id() -> None:
    event = load_event("edge_failover_get")
    del event["Records"][0]["cf"]["config"]
    sender = FakeSender()
    run(event, sender)
    message = parse_backfill(sender.bodies[0][1])
    assert (message.distribution, message.request_id) == (None, None)


def test_sample_with_bad_header_shapes_fails_open(capsys: pytest.CaptureFixture[str]) -> None:
    event = load_event("edge_bad_header_shapes")
    expected = without_own_headers(event)
    sender = FakeSender()
    assert run(event, sender) == expected
    assert sender.attempts == 0
    assert [line["problem"] for line in lines(capsys)] == ["origin custom header x-edgefill-queue"]


@pytest.mark.parametrize("name", ["edge_missing_origin", "edge_bad_origin_neither"])
def test_sample_with_unusable_origin_fails_open(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    event = load_event(name)
    assert app.handler(event, None) == request_of(load_event(name))
    [line] = lines(capsys)
    assert line["problem"] == "request.origin"


@pytest.mark.parametrize(
    "event",
    [
        None,
        "Records",
        [],
        {},
        {"Records": []},
        {"Records": {"0": {}}},
        {"Records": [None]},
        {"Records": [{"cf": None}]},
        {"Records": [{"cf": {"config": {}}}]},
        {"Records": [{"cf": {"request": "GET /"}}]},
        load_event("edge_bad_no_records"),
        load_event("edge_bad_no_request"),
    ],
)
def test_event_without_a_request_returns_none_and_logs_one_error(
    event: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert app.handler(event, None) is None
    [line] = lines(capsys)
    assert line["level"] == "ERROR" and line["problem"] == "event"
