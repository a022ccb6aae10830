"""The deadline bounds every read: a trickling origin (one byte every few seconds, never
long enough apart to trip the socket timeout) cannot hold the worker past its cleanup
reserve. The copy is abandoned as transient, the upload aborted, the lease released, and
the handler answers for its whole batch before Lambda's timeout."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from backfill_worker import app
from backfill_worker.flight.outcome import TransientFailure
from backfill_worker.runtime import backfiller
from edgefill.lab.origin import LabOrigin
from shared.aws import client
from tests.integration.backfill_world import (
    BUCKET,
    MIB,
    FakeLambdaContext,
    assert_nothing_left_behind,
    backfill_env,
    keys,
    make_backfiller,
    message,
)

# The trickle: one byte every 2 s is far inside READ_TIMEOUT (30 s) between two reads.
TRICKLE = 2.0


@pytest.mark.parametrize(
    ("size", "fault"),
    [
        pytest.param(1000, {}, id="single-put"),
        pytest.param(1000, {"chunked": True}, id="unknown-length"),
        pytest.param(12 * MIB, {"no_ranges": True, "trickle_after": 6 * MIB}, id="streamed"),
        pytest.param(12 * MIB, {"trickle_after": 4 * MIB}, id="ranged"),
    ],
)
def test_trickling_origin_is_abandoned_at_the_deadline(
    bucket: Any, origin: LabOrigin, size: int, fault: dict[str, Any]
) -> None:
    # Given an origin that trickles the body, and an invocation with 4 s left of which
    # 2 s are kept back for cleanup
    origin.put_generated("/trickle.bin", size)
    origin.fault("/trickle.bin", trickle=TRICKLE, **fault)
    worker = make_backfiller(bucket, origin)
    worker.deadline_reserve_seconds = 2.0
    context = FakeLambdaContext(timeout_seconds=4.0)
    started = time.monotonic()
    # When the worker copies it
    with pytest.raises(TransientFailure) as failure:
        worker.backfill(message("/trickle.bin"), context)
    # Then the copy is abandoned as a transient deadline failure soon after the budget
    # (2 s) ran out, well before the invocation's end, with nothing stored or left open
    assert failure.value.reason == "deadline"
    assert time.monotonic() - started < 3.5
    assert context.get_remaining_time_in_millis() > 0
    assert keys(bucket) == []
    # And no partial body was taken for a whole one
    assert origin.counts("/trickle.bin").bytes_sent < size


def test_trickling_headers_are_bounded_too(bucket: Any, origin: LabOrigin) -> None:
    # Given an origin that answers its status line only after the copy budget is spent
    origin.put("/late-headers.txt", b"late")
    origin.fault("/late-headers.txt", latency=5.0)
    worker = make_backfiller(bucket, origin)
    worker.deadline_reserve_seconds = 2.0
    started = time.monotonic()
    # When the worker asks for it with 1 s of budget
    with pytest.raises(TransientFailure) as failure:
        worker.backfill(message("/late-headers.txt"), FakeLambdaContext(timeout_seconds=3.0))
    # Then it gives up after that second, not after the 30 s read timeout
    assert failure.value.reason == "deadline"
    assert time.monotonic() - started < 2.5
    assert keys(bucket) == []


def test_record_with_no_budget_left_is_retried_without_touching_the_origin(
    bucket: Any, origin: LabOrigin
) -> None:
    # Given an invocation whose remaining time is inside the cleanup reserve
    origin.put("/later.txt", b"later")
    worker = make_backfiller(bucket, origin)
    worker.deadline_reserve_seconds = 30.0
    # When a record arrives
    with pytest.raises(TransientFailure) as failure:
        worker.backfill(message("/later.txt"), FakeLambdaContext(timeout_seconds=10.0))
    # Then it goes back to the queue and the origin never saw a request
    assert failure.value.reason == "deadline"
    assert origin.all_requests() == []


@pytest.fixture
def worker_env(s3: Any, origin: LabOrigin, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    s3.create_bucket(Bucket=BUCKET)
    for name, value in backfill_env(origin).items():
        monkeypatch.setenv(name, value)
    backfiller.cache_clear()
    client.cache_clear()
    yield
    backfiller.cache_clear()
    client.cache_clear()
    assert_nothing_left_behind(s3)


def _sqs_record(message_id: str, body: str) -> dict[str, Any]:
    return {
        "messageId": message_id,
        "receiptHandle": f"handle-{message_id}",
        "body": body,
        "attributes": {"ApproximateReceiveCount": "1"},
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:edgefill-backfill",
        "awsRegion": "us-east-1",
    }


def test_handler_answers_for_the_whole_batch_before_the_timeout(
    worker_env: None, s3: Any, origin: LabOrigin, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a batch whose first object trickles and whose second waits behind it, and a
    # function with a 5 s timeout keeping 2 s for cleanup
    origin.put_generated("/slow.bin", 12 * MIB)
    origin.fault("/slow.bin", trickle=TRICKLE, no_ranges=True, trickle_after=6 * MIB)
    origin.put("/next.txt", b"next")
    backfiller().deadline_reserve_seconds = 2.0
    event = {
        "Records": [
            _sqs_record("m-1", message("/slow.bin")),
            _sqs_record("m-2", message("/next.txt")),
        ]
    }
    context = FakeLambdaContext(timeout_seconds=5.0)
    # When the handler runs
    response = app.handler(event, context)
    # Then it returns in time, with both records left for SQS to redeliver
    assert context.get_remaining_time_in_millis() > 1000
    assert response == {"batchItemFailures": [{"itemIdentifier": "m-1"}, {"itemIdentifier": "m-2"}]}
    assert keys(s3) == []
    assert origin.counts("/next.txt").requests == ()
    reasons = [
        json.loads(line).get("reason") for line in capsys.readouterr().out.splitlines() if line
    ]
    assert reasons.count("deadline") == 2
