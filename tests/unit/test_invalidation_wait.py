"""Prewarm with afterInvalidation: wait (re-enqueue with a delay) while InProgress, warm
when Completed, warm anyway after 20 minutes or when waiting cannot help."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from prewarm_worker.invalidation_wait import WAIT_LIMIT_SECONDS, WaitFailed, wait_for_invalidation
from prewarm_worker.worker import NotProcessed, PrewarmRuntime, prewarm_record
from shared.config import PrewarmConfig
from shared.edge_http import EdgeClient
from shared.edns import EdgeResolver
from shared.messages import PrewarmMessage, parse_prewarm, to_json

NOW = datetime(2026, 11, 30, 6, 0, 0, tzinfo=UTC)
QUEUE = "https://sqs.us-east-1.amazonaws.com/1/prewarm"
MESSAGE = PrewarmMessage(paths=("/index.html",), source="backfill", after_invalidation="I2J0ABC")


class FakeCloudFront:
    def __init__(
        self,
        status: str = "InProgress",
        age: float = 30,
        error: str | None = None,
        now: datetime = NOW,
    ) -> None:
        self.status, self.age, self.error, self.now = status, age, error, now
        self.calls: list[dict[str, str]] = []

    def get_invalidation(self, **params: str) -> dict[str, Any]:
        self.calls.append(params)
        if self.error == "network":
            raise EndpointConnectionError(endpoint_url="https://cloudfront.amazonaws.com")
        if self.error:
            raise ClientError({"Error": {"Code": self.error, "Message": "x"}}, "GetInvalidation")
        return {
            "Invalidation": {
                "Id": params["Id"],
                "Status": self.status,
                "CreateTime": self.now - timedelta(seconds=self.age),
            }
        }


class FakeSqs:
    def __init__(self, refuse: bool = False) -> None:
        self.sent: list[dict[str, Any]] = []
        self.refuse = refuse

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> Any:  # noqa: N803
        if self.refuse:
            return {
                "Failed": [
                    {"Id": e["Id"], "SenderFault": True, "Code": "Denied", "Message": "no"}
                    for e in Entries
                ]
            }
        self.sent.extend(Entries)
        return {"Successful": [{"Id": e["Id"]} for e in Entries]}


class Log:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def info(self, msg: str, *args: Any, **kwargs: Any) -> None:
        self.lines.append(("info", msg))

    def warning(self, msg: str, *args: Any, **kwargs: Any) -> None:
        self.lines.append(("warning", msg))

    def error(self, msg: str, *args: Any, **kwargs: Any) -> None:
        self.lines.append(("error", msg))


def decide(cloudfront: Any, sqs: Any = None, distribution: str | None = "E2EXAMPLE", log=None):  # type: ignore[no-untyped-def]
    return wait_for_invalidation(
        MESSAGE, cloudfront, distribution, sqs, QUEUE, 30, log or Log(), now=NOW
    )


def test_in_progress_sends_the_same_message_again_with_a_delay() -> None:
    # Given an invalidation in progress for 30 s
    cloudfront, sqs = FakeCloudFront("InProgress", age=30), FakeSqs()
    decision = decide(cloudfront, sqs)
    # Then the message goes back to the queue unchanged, delayed, and nothing is warmed
    assert decision.action == "wait" and decision.delay == 30
    assert cloudfront.calls == [{"DistributionId": "E2EXAMPLE", "Id": "I2J0ABC"}]
    (entry,) = sqs.sent
    assert parse_prewarm(entry["MessageBody"]) == MESSAGE
    assert entry["DelaySeconds"] == 30


@pytest.mark.parametrize("status", ["Completed", "COMPLETED"])  # AWS spelling, moto's
def test_completed_warms(status: str) -> None:
    sqs = FakeSqs()
    assert decide(FakeCloudFront(status), sqs).action == "warm"
    assert sqs.sent == []


def test_after_twenty_minutes_it_warms_anyway_and_says_so() -> None:
    log, sqs = Log(), FakeSqs()
    decision = decide(FakeCloudFront("InProgress", age=WAIT_LIMIT_SECONDS + 1), sqs, log=log)
    assert decision.action == "warm" and sqs.sent == []
    assert ("warning", "warming without a completed invalidation") in log.lines


def test_the_last_wait_never_overshoots_twenty_minutes() -> None:
    sqs = FakeSqs()
    decision = decide(FakeCloudFront("InProgress", age=WAIT_LIMIT_SECONDS - 5), sqs)
    assert decision.delay == 5


@pytest.mark.parametrize("code", ["NoSuchInvalidation", "AccessDenied", "NoSuchDistribution"])
def test_an_invalidation_that_cannot_be_read_for_good_is_warmed_anyway(code: str) -> None:
    log = Log()
    assert decide(FakeCloudFront(error=code), FakeSqs(), log=log).action == "warm"
    assert log.lines[0][0] == "warning"


def test_no_distribution_configured_warms_and_logs() -> None:
    log = Log()
    assert decide(None, FakeSqs(), distribution=None, log=log).action == "warm"
    assert "EDGEFILL_DISTRIBUTION_ID" in str(log.lines) or log.lines


@pytest.mark.parametrize("error", ["Throttling", "ServiceUnavailable", "network"])
def test_transient_errors_leave_the_message_for_sqs(error: str) -> None:
    with pytest.raises(WaitFailed):
        decide(FakeCloudFront(error=error), FakeSqs())


def test_a_refused_resend_is_not_lost() -> None:
    with pytest.raises(WaitFailed):
        decide(FakeCloudFront("InProgress"), FakeSqs(refuse=True))


def test_the_worker_hook_waits_without_warming() -> None:
    # Given the worker with a distribution configured and an invalidation in progress
    config = PrewarmConfig.from_env(
        {
            "EDGEFILL_DISTRIBUTION_DOMAIN": "d111.cloudfront.net",
            "EDGEFILL_TARGETS": "us-east-1",
            "EDGEFILL_DISTRIBUTION_ID": "E2EXAMPLE",
            "EDGEFILL_PREWARM_QUEUE_URL": QUEUE,
            "EDGEFILL_RESOLVER": "127.0.0.1:1",
        }
    )
    sqs = FakeSqs()
    in_progress = FakeCloudFront("InProgress", now=datetime.now(UTC))
    rt = PrewarmRuntime(config, EdgeResolver("127.0.0.1", 1), EdgeClient(), sqs, in_progress)
    outcome = prewarm_record(to_json(MESSAGE), rt, Log())
    # Then no edge was contacted (no DNS query) and the message waits in the queue
    assert outcome.report.tasks == 0 and outcome.report.dns_queries == 0
    assert outcome.requeued_messages == 1
    assert json.loads(sqs.sent[0]["MessageBody"])["afterInvalidation"] == "I2J0ABC"
    # And a throttled GetInvalidation leaves the record to SQS
    rt_throttled = PrewarmRuntime(
        config, EdgeResolver("127.0.0.1", 1), EdgeClient(), sqs, FakeCloudFront(error="Throttling")
    )
    with pytest.raises(NotProcessed):
        prewarm_record(to_json(MESSAGE), rt_throttled, Log())
