"""The sweep's runs never overlap, by a lease instead of reserved concurrency (issue 19):
through the handler, against moto."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from backfill_worker import sweep as sweep_app
from backfill_worker.flight.exclusive import SWEEP_RUN
from backfill_worker.flight.lease import SingleFlight, lease_key
from backfill_worker.freshness.due_index import DueIndex
from backfill_worker.runtime import sweep_runtime
from shared import aws
from shared.object_store import ObjectStore
from tests.integration.backfill_world import FakeLambdaContext
from tests.integration.test_sweep import BUCKET, drain


@pytest.fixture
def sweep_env(s3: Any, sqs: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, str]]:
    s3.create_bucket(Bucket=BUCKET)
    queue = sqs.create_queue(QueueName="backfill")["QueueUrl"]
    monkeypatch.setenv("EDGEFILL_BUCKET", BUCKET)
    monkeypatch.setenv("EDGEFILL_ORIGIN_URL", "https://origin.example.com")
    monkeypatch.setenv("EDGEFILL_BACKFILL_QUEUE_URL", queue)
    sweep_runtime.cache_clear()
    aws.client.cache_clear()
    DueIndex(ObjectStore(s3, BUCKET)).record(
        "due.txt", datetime.now(UTC) - timedelta(days=2), None, 60
    )
    yield s3, str(queue)
    sweep_runtime.cache_clear()
    aws.client.cache_clear()


def leases(s3: Any) -> list[str]:
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="_edgefill/leases/").get("Contents", [])
    return [item["Key"] for item in listed]


@pytest.mark.filterwarnings("ignore:No application metrics")
def test_a_run_that_finds_another_running_does_nothing(
    sweep_env: tuple[Any, str], sqs: Any
) -> None:
    s3, queue = sweep_env
    # Given a sweep run still going (it holds the run lease)
    other = SingleFlight(ObjectStore(s3, BUCKET)).acquire(SWEEP_RUN, "run-1", 300)
    assert other is not None
    # When the scheduler starts a second run
    result = sweep_app.handler({"source": "aws.events"}, FakeLambdaContext(300))
    # Then it sends nothing and says why; the due entry waits for the run that holds it
    assert result["overlapped"] is True and result["sent"] == 0 and result["due"] == 0
    assert drain(sqs, queue) == []
    assert leases(s3) == [other.key]


def test_a_run_alone_sweeps_and_leaves_no_lease(sweep_env: tuple[Any, str], sqs: Any) -> None:
    s3, queue = sweep_env
    # When a run finds no other
    result = sweep_app.handler({"source": "aws.events"}, FakeLambdaContext(300))
    # Then it sweeps as before, and its lease is gone when it ends
    assert result == {
        "due": 1,
        "sent": 1,
        "sendFailed": 0,
        "badEntries": 0,
        "finished": True,
        "delayed": 0,
    }
    assert drain(sqs, queue) == ["/due.txt"]
    assert leases(s3) == []


def test_a_crashed_runs_lease_is_taken_over_once_it_expires(
    sweep_env: tuple[Any, str], sqs: Any
) -> None:
    s3, queue = sweep_env
    # Given the lease of a run that died without releasing it, now expired
    s3.put_object(
        Bucket=BUCKET,
        Key=lease_key(SWEEP_RUN),
        Body=json.dumps({"v": 1, "key": SWEEP_RUN, "owner": "dead", "expiresAt": 1.0}),
    )
    # When the next run starts, then it takes the lease over and sweeps
    result = sweep_app.handler({"source": "aws.events"}, FakeLambdaContext(300))
    assert result["sent"] == 1 and "overlapped" not in result
    assert drain(sqs, queue) == ["/due.txt"]
    assert leases(s3) == []


def test_the_run_lease_is_no_copys_lease() -> None:
    # Object keys never lie under _edgefill/ (CONTRACTS §4): no copy can share this lease
    assert SWEEP_RUN.startswith("_edgefill/") and lease_key(SWEEP_RUN).startswith(
        "_edgefill/leases/"
    )
