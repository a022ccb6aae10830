"""Regions (issue 20): the miss goes to the region that missed.

The distribution has one full-origin copy per regional bucket (``full-<region>``), each
marked with its region's backfill queue and ``x-edgefill-region``. The function queues to
the queue the marked origin names and puts that region in the message; the replica's own
``AWS_REGION`` (with Origin Shield, the Shield's region) decides nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest

from edge_origin_request.failover import FailoverReporter, cloudfront_request, handle_origin_request
from edge_origin_request.recently_queued import RecentlyQueued
from shared.messages import parse_backfill
from tests.sample_events import load_event

SINGAPORE = "https://sqs.ap-southeast-1.amazonaws.com/123456789012/edgefill-backfill"
FRANKFURT = "https://sqs.eu-central-1.amazonaws.com/123456789012/edgefill-backfill"


class Sender:
    def __init__(self) -> None:
        self.bodies: list[tuple[str, str]] = []

    def send(self, queue_url: str, body: str) -> str:
        self.bodies.append((queue_url, body))
        return f"id-{len(self.bodies)}"


def failover_to(queue_url: str, region: Any = None) -> Any:
    """The sample failover event, its marked origin being ``full-<region>``."""
    event = load_event("edge_failover_get")
    headers = event["Records"][0]["cf"]["request"]["origin"]["custom"]["customHeaders"]
    headers["x-edgefill-queue"] = [{"key": "x-edgefill-queue", "value": queue_url}]
    if region is not None:
        headers["x-edgefill-region"] = [{"key": "x-edgefill-region", "value": region}]
    return event


def handle(event: Any, sender: Sender, memory: RecentlyQueued) -> dict[str, Any]:
    request = cloudfront_request(event)
    assert request is not None
    handle_origin_request(event, request, FailoverReporter(sender, memory))
    return request


def test_the_backfill_goes_to_the_region_that_missed_whatever_the_replicas_region(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a replica whose AWS_REGION is Origin Shield's (us-east-2), and a miss of the
    # Singapore bucket failing over to full-ap-southeast-1
    monkeypatch.setenv("AWS_REGION", "us-east-2")
    sender = Sender()
    # When it is handled
    request = handle(failover_to(SINGAPORE, "ap-southeast-1"), sender, RecentlyQueued())
    # Then the message goes to Singapore's queue and names Singapore's bucket region
    [(queue, body)] = sender.bodies
    assert queue == SINGAPORE
    message = parse_backfill(body)
    assert message.region == "ap-southeast-1"
    assert message.edge_region == "us-east-2"  # kept as information only
    # And neither own header reaches the origin
    custom = request["origin"]["custom"]["customHeaders"]
    assert not [name for name in custom if name.startswith("x-edgefill-")]


def test_the_same_object_missed_in_two_regions_is_queued_for_both() -> None:
    # Given one replica (one memory of recent sends) serving viewers of two regions
    sender, memory = Sender(), RecentlyQueued()
    # When the same object misses in Singapore, then in Frankfurt, then Singapore again
    handle(failover_to(SINGAPORE, "ap-southeast-1"), sender, memory)
    handle(failover_to(FRANKFURT, "eu-central-1"), sender, memory)
    handle(failover_to(SINGAPORE, "ap-southeast-1"), sender, memory)
    # Then each region's queue got it once: the memory keys on the queue too
    assert [queue for queue, _ in sender.bodies] == [SINGAPORE, FRANKFURT]
    assert [parse_backfill(b).region for _, b in sender.bodies] == [
        "ap-southeast-1",
        "eu-central-1",
    ]


def test_a_single_stack_origin_without_a_region_header_queues_without_a_region() -> None:
    sender = Sender()
    handle(failover_to(SINGAPORE), sender, RecentlyQueued())
    [(_, body)] = sender.bodies
    assert parse_backfill(body).region is None
    assert "region" not in json.loads(body)


@pytest.mark.parametrize(
    "hostile",
    ["", "Singapore", "ap-southeast-1\n", "ap-southeast-1; DROP", "x" * 300, "AP-SOUTHEAST-1"],
    ids=["empty", "a-name", "newline", "injection", "huge", "upper-case"],
)
def test_a_broken_region_header_is_logged_and_the_backfill_still_goes(
    hostile: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a marked origin whose x-edgefill-region is not a region code
    sender = Sender()
    # When it fails over
    request = handle(failover_to(SINGAPORE, hostile), sender, RecentlyQueued())
    # Then the backfill still reaches the queue the marker names, without a region
    [(queue, body)] = sender.bodies
    assert queue == SINGAPORE
    assert parse_backfill(body).region is None
    # And one error line names the header; the header never reaches the origin
    errors = [
        json.loads(line)
        for line in capsys.readouterr().out.splitlines()
        if line and json.loads(line).get("level") == "ERROR"
    ]
    assert [e["problem"] for e in errors] == ["origin custom header x-edgefill-region"]
    assert "x-edgefill-region" not in request["origin"]["custom"]["customHeaders"]


def test_a_misshapen_region_header_value_is_logged_not_raised(
    capsys: pytest.CaptureFixture[str],
) -> None:
    event = failover_to(SINGAPORE)
    headers = event["Records"][0]["cf"]["request"]["origin"]["custom"]["customHeaders"]
    headers["x-edgefill-region"] = "ap-southeast-1"  # not CloudFront's [{key, value}]
    sender = Sender()
    handle(event, sender, RecentlyQueued())
    assert len(sender.bodies) == 1
    assert "x-edgefill-region" in capsys.readouterr().out
