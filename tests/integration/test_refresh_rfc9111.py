"""Refresh applies what the origin says now (RFC 9111 §4.3.3, §4.3.4), against moto and
the lab origin: a takedown removes the copy, a 304 updates it, a failing origin keeps it
in revalidation, and no outcome leaves a stored copy without a due entry (issue 18 and
the refresh/sweep items of issue 19)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from backfill_worker.flight.outcome import Outcome, TransientFailure
from backfill_worker.freshness.due_index import DueIndex
from backfill_worker.freshness.revalidation import STALE_GRACE
from backfill_worker.freshness.sweep import RefreshQueue, sweep
from backfill_worker.record import Backfiller
from edgefill.lab.origin import LabOrigin
from shared.object_store import ObjectStore
from tests.integration.backfill_world import BUCKET, message, stored
from tests.integration.test_refresh import (
    KEY,
    PATH,
    URI,
    drain,
    entries,
    invalidations,
    refresh,
    world,
)

__all__ = ["world"]  # the fixture, shared with test_refresh.py

BODY = b"<h1>v1</h1>"


class Log:
    def info(self, msg: str, extra: Any = None) -> None: ...

    warning = error = info


class FlakyS3:
    """An S3 client whose chosen calls answer 503 (SlowDown) once each."""

    def __init__(self, s3: Any) -> None:
        self._s3 = s3
        self.fail: dict[str, list[int]] = {}  # operation → call numbers (1-based) that fail
        self.calls: dict[str, int] = {}

    def __getattr__(self, name: str) -> Any:
        real = getattr(self._s3, name)

        def call(**kwargs: Any) -> Any:
            self.calls[name] = self.calls.get(name, 0) + 1
            if self.calls[name] in self.fail.get(name, []):
                raise ClientError(
                    {
                        "Error": {"Code": "SlowDown", "Message": "injected"},
                        "ResponseMetadata": {"HTTPStatusCode": 503},
                    },
                    name,
                )
            return real(**kwargs)

        return call


def filled(world: dict[str, Any], origin: LabOrigin, cache_control: str = "max-age=60") -> None:
    """Given: the origin serves the page and the bucket holds its copy (a fill)."""
    origin.put(PATH, BODY, content_type="text/html", headers={"Cache-Control": cache_control})
    assert world["worker"].backfill(message(URI)).status == "copied"
    world["worker"].pending.take()
    drain(world)
    origin.reset_counts()


def swept(world: dict[str, Any], s3: Any, sqs: Any, at: datetime) -> list[str]:
    """The refresh bodies the sweep sends when it runs at ``at``."""
    queue = sqs.create_queue(QueueName="backfill")["QueueUrl"]
    sweep(DueIndex(ObjectStore(s3, BUCKET)), RefreshQueue(sqs, queue, ""), at, lambda: 900.0, Log())
    bodies = []
    while got := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages"):
        for item in got:
            bodies.append(item["Body"])
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=item["ReceiptHandle"])
    return bodies


def due_refresh(world: dict[str, Any], s3: Any, sqs: Any) -> str:
    """The one refresh the sweep sends once the copy is due."""
    (body,) = swept(world, s3, sqs, datetime.now(UTC) + timedelta(seconds=61))
    return body


def entry_bodies(s3: Any) -> list[dict[str, Any]]:
    return [json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()) for key in entries(s3)]


def later(worker: Backfiller, seconds: float) -> None:
    """Move the worker's wall clock ``seconds`` ahead."""
    worker.wall_clock = lambda: time.time() + seconds


# ---------------------------------------------------------------- withdrawn


def test_a_304_that_now_says_private_withdraws_the_copy_rfc9111_4_3_4(
    world: dict[str, Any], s3: Any, origin: LabOrigin
) -> None:
    filled(world, origin)
    # Given the origin keeps the bytes (same ETag: a 304) but marks them private
    origin.put(PATH, BODY, content_type="text/html", headers={"Cache-Control": "private"})
    # When the copy is refreshed
    outcome = refresh(world["worker"])
    world["worker"].flush_invalidations()
    # Then the 304's header fields were applied: the copy is removed and invalidated
    assert origin.counts(PATH).body_gets == 0  # it was a 304
    assert (outcome.status, outcome.reason) == ("refreshed", "withdrawn")
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix=KEY)["KeyCount"] == 0
    assert invalidations(world) == [[URI]] and drain(world) == []


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"Cache-Control": "no-store"}, id="no-store"),
        pytest.param({"Cache-Control": "private, max-age=600"}, id="private"),
        pytest.param({"Cache-Control": "no-cache"}, id="no-cache"),
        pytest.param({"Cache-Control": "max-age=0"}, id="max-age-0"),
        pytest.param({"Cache-Control": "max-age=60", "Set-Cookie": "s=1"}, id="set-cookie"),
        pytest.param({"Cache-Control": "max-age=60", "Vary": "Origin"}, id="vary"),
    ],
)
def test_a_new_version_that_may_not_be_kept_withdraws_the_old_copy(
    world: dict[str, Any], s3: Any, origin: LabOrigin, headers: dict[str, str]
) -> None:
    """Issue 18: the old copy is never re-dated for a full lifetime."""
    filled(world, origin)
    origin.put(PATH, b"<h1>v2</h1>", content_type="text/html", headers=headers)
    outcome = refresh(world["worker"])
    assert outcome.reason == "withdrawn"
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix=KEY)["KeyCount"] == 0


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_on_refresh_withdraws_the_copy_and_remembers_the_path(
    world: dict[str, Any], s3: Any, origin: LabOrigin, status: int
) -> None:
    filled(world, origin)
    origin.fault(PATH, redirect="/elsewhere.html", redirect_status=status)
    assert refresh(world["worker"]).reason == "withdrawn"
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix=KEY)["KeyCount"] == 0
    # And a viewer miss right after costs the origin nothing (the missing marker)
    origin.clear_fault(PATH)
    origin.reset_counts()
    assert world["worker"].backfill(message(URI)).reason == "missing"
    assert origin.counts(PATH).requests == ()


# ---------------------------------------------------------------- updated (304)


def test_a_304_with_a_new_cache_control_updates_the_copy_in_place_rfc9111_4_3_4(
    world: dict[str, Any], s3: Any, origin: LabOrigin
) -> None:
    filled(world, origin, "max-age=60")
    before = s3.head_object(Bucket=BUCKET, Key=KEY)
    # Given the origin now gives the same bytes a day
    origin.put(PATH, BODY, content_type="text/html", headers={"Cache-Control": "max-age=86400"})
    # When the copy is refreshed
    outcome = refresh(world["worker"])
    world["worker"].flush_invalidations()
    # Then no body moved, and S3 now serves the origin's new Cache-Control
    assert (outcome.status, outcome.reason) == ("refreshed", "updated")
    assert origin.counts(PATH).body_gets == 0
    after = s3.head_object(Bucket=BUCKET, Key=KEY)
    assert after["CacheControl"] == "max-age=86400"
    assert stored(s3, KEY) == BODY
    assert after["Metadata"]["fetched-at"] == before["Metadata"]["fetched-at"]
    # And the edges are told: invalidated, then warmed after it
    assert invalidations(world) == [[URI]]
    (prewarm,) = drain(world)
    assert prewarm["paths"] == [URI] and prewarm["afterInvalidation"]
    # And the copy is next due a day after this check
    assert any(body["lifetime"] >= 86_000 and body["checkedAt"] for body in entry_bodies(s3))


# ---------------------------------------------------------------- kept in revalidation


def test_a_failing_origin_keeps_the_copy_in_revalidation_with_backoff(
    world: dict[str, Any], s3: Any, sqs: Any, origin: LabOrigin
) -> None:
    filled(world, origin)
    body = due_refresh(world, s3, sqs)
    # When the origin answers 503 to the sweep's refresh
    origin.fault(PATH, status=503)
    outcome = refresh_body(world["worker"], body)
    # Then the copy stays, and a retry entry a minute ahead replaces the refresh's own
    assert (outcome.status, outcome.reason) == ("refreshed", "kept")
    assert stored(s3, KEY) == BODY
    (retry,) = entry_bodies(s3)
    assert (retry["rule"], retry["failures"]) == ("retry", 1) and retry["staleSince"]
    # And a second failure waits twice as long
    (body,) = swept(world, s3, sqs, datetime.now(UTC) + timedelta(seconds=121))
    assert refresh_body(world["worker"], body).reason == "kept"
    (retry,) = entry_bodies(s3)
    assert retry["failures"] == 2


@pytest.mark.parametrize("directive", ["must-revalidate", "proxy-revalidate", "s-maxage=60"])
def test_a_copy_that_may_not_be_served_stale_is_withdrawn_past_its_grace_rfc9111_4_2_4(
    world: dict[str, Any], s3: Any, sqs: Any, origin: LabOrigin, directive: str
) -> None:
    filled(world, origin, f"max-age=60, {directive}")
    body = due_refresh(world, s3, sqs)
    origin.fault(PATH, status=503)
    # Within the grace: kept
    assert refresh_body(world["worker"], body).reason == "kept"
    # Past its due time plus the grace, the origin still failing: withdrawn
    grace = STALE_GRACE.total_seconds()
    (body,) = swept(world, s3, sqs, datetime.now(UTC) + timedelta(seconds=grace + 120))
    later(world["worker"], grace + 120)
    outcome = refresh_body(world["worker"], body)
    world["worker"].flush_invalidations()
    assert outcome.reason == "withdrawn"
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix=KEY)["KeyCount"] == 0
    assert invalidations(world) == [[URI]] and entries(s3) == []


def test_stale_if_error_keeps_the_copy_that_long_and_no_longer_rfc5861(
    world: dict[str, Any], s3: Any, sqs: Any, origin: LabOrigin
) -> None:
    filled(world, origin, "max-age=60, stale-if-error=3000")
    body = due_refresh(world, s3, sqs)
    origin.fault(PATH, status=503)
    later(world["worker"], 1500)
    assert refresh_body(world["worker"], body).reason == "kept"
    (body,) = swept(world, s3, sqs, datetime.now(UTC) + timedelta(seconds=3200))
    later(world["worker"], 3200)
    assert refresh_body(world["worker"], body).reason == "withdrawn"


def test_a_refresh_by_hand_that_fails_is_retried_by_sqs_and_leaves_the_index_alone(
    world: dict[str, Any], s3: Any, origin: LabOrigin
) -> None:
    filled(world, origin)
    before = entries(s3)
    origin.fault(PATH, status=503)
    with pytest.raises(TransientFailure):
        refresh(world["worker"])
    assert entries(s3) == before and stored(s3, KEY) == BODY


# ---------------------------------------------------------------- the index heals


def test_one_s3_503_right_after_a_replace_still_invalidates_and_rewarms(
    world: dict[str, Any], s3: Any, origin: LabOrigin
) -> None:
    """Issue 19: the HeadObject after a completed overwrite answers 503."""
    filled(world, origin)
    worker: Backfiller = world["worker"]
    flaky = FlakyS3(s3)
    worker.copies = ObjectStore(flaky, BUCKET)
    origin.put(
        PATH, b"<h1>v2</h1>", content_type="text/html", headers={"Cache-Control": "max-age=60"}
    )
    # Given the third HeadObject of the refresh (the one after the replace) fails
    flaky.fail["head_object"] = [3]
    # When the refresh runs / Then it fails, to be retried, but the copy is replaced...
    with pytest.raises(TransientFailure) as failure:
        refresh(worker)
    assert failure.value.reason == "due_index"
    assert stored(s3, KEY) == b"<h1>v2</h1>"
    # ...and the batch's end still invalidates it and warms it after
    worker.flush_invalidations()
    assert invalidations(world) == [[URI]]
    (prewarm,) = drain(world)
    assert prewarm["paths"] == [URI]
    # And the redelivery finds the new copy unchanged and writes its due entry
    assert refresh(worker).reason == "unchanged"
    version = ObjectStore(s3, BUCKET).head(KEY)
    assert version is not None
    assert any(
        body["checkedAt"] and body["copyVersion"] == version.version for body in entry_bodies(s3)
    )


def test_a_duplicate_of_a_completed_refresh_is_settled_without_an_origin_request(
    world: dict[str, Any], s3: Any, sqs: Any, origin: LabOrigin
) -> None:
    filled(world, origin)
    body = due_refresh(world, s3, sqs)
    assert refresh_body(world["worker"], body).reason == "unchanged"
    origin.reset_counts()
    again = refresh_body(world["worker"], body)
    assert (again.status, again.reason) == ("skipped", "settled")
    assert origin.counts(PATH).requests == ()
    assert len(entries(s3)) == 1  # the next revalidation, and nothing else


def test_an_entry_of_an_older_version_is_superseded(
    world: dict[str, Any], s3: Any, sqs: Any, origin: LabOrigin
) -> None:
    filled(world, origin)
    body = due_refresh(world, s3, sqs)
    # Given the copy was replaced by hand since the sweep sent its refresh
    origin.put(
        PATH, b"<h1>v2</h1>", content_type="text/html", headers={"Cache-Control": "max-age=60"}
    )
    assert refresh(world["worker"]).reason == "replaced"
    origin.reset_counts()
    # When the sweep's refresh arrives / Then it costs the origin nothing
    outcome = refresh_body(world["worker"], body)
    assert (outcome.status, outcome.reason) == ("skipped", "superseded")
    assert origin.counts(PATH).requests == ()


def test_a_fill_skipped_as_exists_writes_the_entry_the_copy_lacked(
    world: dict[str, Any], s3: Any, origin: LabOrigin
) -> None:
    filled(world, origin)
    (entry,) = entries(s3)
    # Given the copy lost its entry (a worker died between the copy and the entry)
    s3.delete_object(Bucket=BUCKET, Key=entry)
    # When a fill finds the copy / Then it writes the very entry the fill would have
    assert world["worker"].backfill(message(URI)).reason == "exists"
    assert entries(s3) == [entry]
    # And once more: nothing is written twice
    assert world["worker"].backfill(message(URI)).reason == "exists"
    assert entries(s3) == [entry]


def test_a_fill_whose_due_entry_cannot_be_written_fails_and_its_redelivery_writes_it(
    world: dict[str, Any], s3: Any, origin: LabOrigin
) -> None:
    worker: Backfiller = world["worker"]
    flaky = FlakyS3(s3)
    worker.copies = ObjectStore(flaky, BUCKET)
    origin.put(PATH, BODY, content_type="text/html", headers={"Cache-Control": "max-age=60"})
    flaky.fail["put_object"] = [1]  # the copies store writes only the entry
    with pytest.raises(TransientFailure) as failure:
        worker.backfill(message(URI))
    assert failure.value.reason == "due_index" and entries(s3) == []
    assert stored(s3, KEY) == BODY and len(drain(world)) == 1  # copied and announced
    # When SQS delivers it again / Then the copy is found and its entry written
    assert worker.backfill(message(URI)).reason == "exists"
    assert len(entries(s3)) == 1 and drain(world) == []


def refresh_body(worker: Backfiller, body: str) -> Outcome:
    return worker.backfill(body)
