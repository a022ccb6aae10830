"""The edge's SQS sender: one retry at most, only when worth it and when it fits the
deadline, and a short pause on a queue that just failed. Fake clients, no I/O."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

from edge_origin_request.backfill_queue import (
    CONNECT_TIMEOUT_SECONDS,
    READ_TIMEOUT_SECONDS,
    SEND_DEADLINE_SECONDS,
    SICK_QUEUE_PAUSE_SECONDS,
    QueueSender,
    SendFailed,
)

QUEUE = "https://sqs.eu-west-1.amazonaws.com/123456789012/edgefill-backfill"


class FakeClock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


class ScriptedSqs:
    """Answers send_message with the next scripted outcome; advances the clock per call."""

    def __init__(self, outcomes: list[Any], clock: FakeClock, seconds_per_call: float = 0.0):
        self.outcomes = list(outcomes)
        self.calls: list[dict[str, Any]] = []
        self.clock = clock
        self.seconds_per_call = seconds_per_call

    def send_message(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        self.clock.now += self.seconds_per_call
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


def client_error(code: str, status: int) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": f"{code} happened"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        "SendMessage",
    )


def refused() -> EndpointConnectionError:
    return EndpointConnectionError(endpoint_url="https://sqs.eu-west-1.amazonaws.com/")


def sender_with(
    sqs: ScriptedSqs, clock: FakeClock, regions: list[str] | None = None, **kw: Any
) -> QueueSender:
    def client_for(region: str) -> ScriptedSqs:
        if regions is not None:
            regions.append(region)
        return sqs

    return QueueSender(client_for=client_for, clock=clock, **kw)


def test_budget_constants_fit_the_hard_budget() -> None:
    # Two worst-case attempts never exceed the deadline, which stays under 1.5 s.
    assert SEND_DEADLINE_SECONDS < 1.5
    assert CONNECT_TIMEOUT_SECONDS + READ_TIMEOUT_SECONDS <= SEND_DEADLINE_SECONDS
    assert 0 < SICK_QUEUE_PAUSE_SECONDS <= 60


def test_success_returns_the_message_id_and_uses_the_queue_region() -> None:
    clock = FakeClock()
    sqs = ScriptedSqs([{"MessageId": "m-1"}], clock)
    regions: list[str] = []
    assert sender_with(sqs, clock, regions).send(QUEUE, '{"v":1}') == "m-1"
    assert regions == ["eu-west-1"]
    assert sqs.calls == [{"QueueUrl": QUEUE, "MessageBody": '{"v":1}'}]


@pytest.mark.parametrize(
    "first_failure",
    [
        refused(),
        ReadTimeoutError(endpoint_url="x"),
        client_error("RequestThrottled", 403),
        client_error("InternalError", 500),
    ],
    ids=["refused", "read-timeout", "throttled", "server-error"],
)
def test_a_transient_failure_is_tried_once_more(first_failure: Exception) -> None:
    clock = FakeClock()
    sqs = ScriptedSqs([first_failure, {"MessageId": "m-2"}], clock)
    assert sender_with(sqs, clock).send(QUEUE, "{}") == "m-2"
    assert len(sqs.calls) == 2


def test_never_more_than_two_attempts() -> None:
    clock = FakeClock()
    sqs = ScriptedSqs([refused(), refused(), {"MessageId": "never"}], clock)
    with pytest.raises(SendFailed) as failure:
        sender_with(sqs, clock).send(QUEUE, "{}")
    assert len(sqs.calls) == 2
    assert "EndpointConnectionError" in failure.value.reason


def test_a_request_sqs_rejects_is_not_tried_again() -> None:
    clock = FakeClock()
    sqs = ScriptedSqs([client_error("AWS.SimpleQueueService.NonExistentQueue", 400)], clock)
    with pytest.raises(SendFailed) as failure:
        sender_with(sqs, clock).send(QUEUE, "{}")
    assert len(sqs.calls) == 1
    assert failure.value.problem == "sqs"
    assert "NonExistentQueue" in failure.value.reason


def test_no_retry_when_a_second_attempt_would_break_the_deadline() -> None:
    # Given a first attempt that took longer than the deadline leaves room for
    clock = FakeClock()
    slow = SEND_DEADLINE_SECONDS - (CONNECT_TIMEOUT_SECONDS + READ_TIMEOUT_SECONDS) + 0.01
    sqs = ScriptedSqs([ReadTimeoutError(endpoint_url="x"), {"MessageId": "late"}], clock, slow)
    # When it times out, Then the sender gives up instead of trying again
    with pytest.raises(SendFailed):
        sender_with(sqs, clock).send(QUEUE, "{}")
    assert len(sqs.calls) == 1


def test_a_failed_queue_is_paused_then_tried_again() -> None:
    # Given a queue whose send just failed
    clock = FakeClock()
    sqs = ScriptedSqs([refused(), refused(), {"MessageId": "m-3"}], clock)
    sender = sender_with(sqs, clock, pause_seconds=5.0)
    with pytest.raises(SendFailed):
        sender.send(QUEUE, "{}")
    # When another message comes within the pause, Then SQS is not contacted
    clock.now += 4.9
    with pytest.raises(SendFailed) as paused:
        sender.send(QUEUE, "{}")
    assert paused.value.problem == "queue-paused"
    assert len(sqs.calls) == 2
    # When the pause has passed, Then the next message is sent
    clock.now += 0.1
    assert sender.send(QUEUE, "{}") == "m-3"


def test_the_pause_is_per_queue() -> None:
    clock = FakeClock()
    sqs = ScriptedSqs([refused(), refused(), {"MessageId": "other"}], clock)
    sender = sender_with(sqs, clock)
    with pytest.raises(SendFailed):
        sender.send(QUEUE, "{}")
    assert sender.send(QUEUE + "-other", "{}") == "other"


def test_pause_zero_disables_the_pause() -> None:
    clock = FakeClock()
    sqs = ScriptedSqs([refused(), refused(), {"MessageId": "m-4"}], clock)
    sender = sender_with(sqs, clock, pause_seconds=0)
    with pytest.raises(SendFailed):
        sender.send(QUEUE, "{}")
    assert sender.send(QUEUE, "{}") == "m-4"


@pytest.mark.parametrize(
    "queue_url", ["", "not a url", "ftp://sqs.us-east-1.amazonaws.com/1/q", "https://host/only-one"]
)
def test_an_invalid_queue_url_fails_without_a_client_or_a_pause(queue_url: str) -> None:
    clock = FakeClock()
    sqs = ScriptedSqs([], clock)
    regions: list[str] = []
    sender = sender_with(sqs, clock, regions)
    for _ in range(2):
        with pytest.raises(SendFailed) as failure:
            sender.send(queue_url, "{}")
        assert failure.value.problem == "queue-url"
    assert regions == [] and sqs.calls == []
