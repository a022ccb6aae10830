"""Invalidations that are never lost (issue 19), against moto in server mode (S3, SQS,
CloudFront) and the lab origin: a replaced path is recorded in the bucket before its
record succeeds, so a worker that dies before invalidating loses nothing; invocations of
one record each share one invalidation per batching window, sent by the window's
reminder; a busy CloudFront is retried with backoff, and what it still refuses waits for
the next reminder."""

from __future__ import annotations

import logging
from typing import Any

import boto3
import pytest

from backfill_worker.freshness.invalidation_journal import (
    PATHS_PREFIX,
    WINDOW_SECONDS,
    WINDOWS_PREFIX,
)
from backfill_worker.record import Backfiller
from edgefill.lab.origin import LabOrigin
from shared.messages import InvalidationsDue, to_json
from shared.object_store import ObjectStore
from tests.integration.backfill_world import BUCKET, make_backfiller, message, refused
from tests.integration.test_backfill_refresh_resume import drain
from tests.integration.test_refresh import create_distribution, invalidations

# A fixed moment in the middle of a batching window: every record of a test lands in it.
NOW = 1_800_000_030.0
PAGES = ("/news/a.html", "/news/b%20c.html", "/news/d.html")


@pytest.fixture
def world(moto: str, s3: Any, sqs: Any, origin: LabOrigin) -> dict[str, Any]:
    """A distribution in moto, the backfill queue (reminders go there), a prewarm queue,
    and copies of three pages in the bucket."""
    s3.create_bucket(Bucket=BUCKET)
    cloudfront = boto3.client("cloudfront", region_name="us-east-1", endpoint_url=moto)
    world = {
        "s3": s3,
        "sqs": sqs,
        "origin": origin,
        "cloudfront": cloudfront,
        "distribution": create_distribution(cloudfront),
        "queue": sqs.create_queue(QueueName="edgefill-backfill")["QueueUrl"],
        "prewarm": sqs.create_queue(QueueName="prewarm")["QueueUrl"],
    }
    filler = container(world)
    for number, uri in enumerate(PAGES):
        origin.put(origin_path(uri), f"<h1>{number} v1</h1>", content_type="text/html")
        assert filler.backfill(message(uri)).status == "copied"
    drain(sqs, world["prewarm"])
    return world


def origin_path(uri: str) -> str:
    """The lab origin's (decoded) path of a page's URI."""
    return uri.replace("%20", " ")


def container(world: dict[str, Any], **env: str) -> Backfiller:
    """A fresh worker container (nothing in memory), its wall clock at ``NOW``."""
    worker = make_backfiller(
        world["s3"],
        world["origin"],
        world["sqs"],
        EDGEFILL_PREWARM_QUEUE_URL=world["prewarm"],
        EDGEFILL_BACKFILL_QUEUE_URL=world["queue"],
        EDGEFILL_DISTRIBUTION_ID=world["distribution"],
        **env,
    )
    worker.copies = ObjectStore(world["s3"], BUCKET)
    worker.cloudfront = world["cloudfront"]
    worker.wall_clock = lambda: NOW
    worker.pending.sleep = lambda seconds: None
    # The journal was built at construction with the real clock: give it the test's.
    assert worker.pending.journal is not None
    worker.pending.journal.clock = lambda: NOW
    return worker


def replace(world: dict[str, Any], worker: Backfiller, uri: str) -> None:
    """The origin has a new version of ``uri`` and a refresh replaces the copy."""
    world["origin"].put(origin_path(uri), f"<h1>{uri} v2</h1>", content_type="text/html")
    assert worker.backfill(message(uri, mode="refresh")).reason == "replaced"


def journal(world: dict[str, Any], prefix: str = PATHS_PREFIX) -> list[str]:
    listed = world["s3"].list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])
    return [item["Key"] for item in listed]


def reminders_waiting(world: dict[str, Any]) -> int:
    attributes = world["sqs"].get_queue_attributes(
        QueueUrl=world["queue"], AttributeNames=["ApproximateNumberOfMessagesDelayed"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessagesDelayed"])


def the_reminder(world: dict[str, Any]) -> str:
    """The reminder of the one window the test's records fell in, as SQS delivers it once
    its delay (``WINDOW_SECONDS``) has passed."""
    (window,) = [key.rpartition("/")[2] for key in journal(world, WINDOWS_PREFIX)]
    return to_json(InvalidationsDue(window=window))


# ---------------------------------------------------------------- never lost


def test_a_crash_between_replace_and_invalidation_loses_no_path(world: dict[str, Any]) -> None:
    # Given a worker that replaced a copy, its record reported done
    worker = container(world)
    replace(world, worker, PAGES[0])
    # When its process dies before the end of the invocation (no settle, no flush)
    del worker
    # Then the path is recorded in the bucket, and a reminder waits on the worker's queue
    assert [key.endswith(PAGES[0]) for key in journal(world)] == [True]
    assert reminders_waiting(world) == 1
    # And a later invocation, in a fresh container, invalidates it when the reminder comes
    later = container(world)
    outcome = later.backfill(the_reminder(world))
    assert (outcome.status, outcome.reason) == ("invalidated", "invalidations")
    assert invalidations(world) == [[PAGES[0]]]
    # And warms it after that invalidation; nothing is left pending, the window closed
    (prewarm,) = drain(world["sqs"], world["prewarm"])
    assert prewarm["paths"] == [PAGES[0]] and prewarm["afterInvalidation"]
    assert journal(world) == [] and journal(world, WINDOWS_PREFIX) == []


def test_invocations_of_one_record_each_share_one_invalidation(world: dict[str, Any]) -> None:
    # Given three refreshes, each in an invocation of its own (the template's batch size
    # of 1), within one batching window
    worker = container(world)
    for uri in PAGES:
        replace(world, worker, uri)
        worker.settle_invalidations()  # the end of each invocation (app.handler)
    # Then no invalidation was created yet: the paths wait, recorded, for one reminder
    assert invalidations(world) == []
    assert len(journal(world)) == 3 and reminders_waiting(world) == 1
    # When the window's reminder comes
    worker.backfill(the_reminder(world))
    # Then one CreateInvalidation carries the three paths, one prewarm waits for it
    assert [sorted(paths) for paths in invalidations(world)] == [sorted(PAGES)]
    (prewarm,) = drain(world["sqs"], world["prewarm"])
    assert sorted(prewarm["paths"]) == sorted(PAGES)
    assert journal(world) == []


def test_without_a_queue_for_reminders_each_invocation_invalidates_what_is_pending(
    world: dict[str, Any],
) -> None:
    # Given a worker that has no queue of its own (EDGEFILL_BACKFILL_QUEUE_URL unset), and
    # a path an earlier, crashed worker left recorded
    crashed = container(world)
    crashed.pending.journal.remind = None  # type: ignore[union-attr]
    replace(world, crashed, PAGES[0])
    worker = container(world)
    worker.pending.journal.remind = None  # type: ignore[union-attr]
    # When it replaces another copy and its invocation ends
    replace(world, worker, PAGES[1])
    worker.settle_invalidations()
    # Then both are invalidated at once, the crashed worker's path included
    assert [sorted(paths) for paths in invalidations(world)] == [sorted(PAGES[:2])]
    assert journal(world) == []


# ---------------------------------------------------------------- a busy CloudFront


def test_a_busy_cloudfront_is_asked_again_with_backoff(world: dict[str, Any]) -> None:
    # Given a replaced copy, and CloudFront refusing twice: too many invalidations in
    # progress, then throttled
    worker = container(world)
    waits: list[float] = []
    worker.pending.sleep = waits.append
    replace(world, worker, PAGES[0])
    cloudfront = world["cloudfront"]
    with (
        refused(cloudfront, "CreateInvalidation", "TooManyInvalidationsInProgress", 400),
        refused(cloudfront, "CreateInvalidation", "Throttling", 400),  # asked after the first
    ):
        # When the pending paths are sent
        worker.flush_invalidations()
    # Then the third attempt went through, after two growing waits
    assert invalidations(world) == [[PAGES[0]]]
    assert len(waits) == 2 and 0.5 <= waits[0] <= 1.0 and 1.0 <= waits[1] <= 2.0
    assert journal(world) == []


def test_what_cloudfront_still_refuses_waits_for_the_next_reminder(
    world: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    # Given a replaced copy whose window's reminder comes while CloudFront stays busy
    worker = container(world)
    replace(world, worker, PAGES[0])
    reminder = the_reminder(world)
    world["sqs"].purge_queue(QueueUrl=world["queue"])  # delivered here, by hand
    with refused(
        world["cloudfront"], "CreateInvalidation", "TooManyInvalidationsInProgress", 400, times=50
    ):
        worker.backfill(reminder)
    # Then nothing was created and nothing lost: the path is still recorded, a warning
    # says so, and another reminder is on its way (for the window after)
    assert invalidations(world) == []
    assert len(journal(world)) == 1 and reminders_waiting(world) == 1
    assert any(r.getMessage().startswith("invalidation deferred") for r in caplog.records)
    # When that reminder comes and CloudFront accepts
    later = container(world)
    later.wall_clock = lambda: NOW + WINDOW_SECONDS
    later.pending.journal.clock = lambda: NOW + WINDOW_SECONDS  # type: ignore[union-attr]
    later.backfill(the_reminder(world))
    # Then the path is invalidated, once
    assert invalidations(world) == [[PAGES[0]]]
    assert journal(world) == [] and journal(world, WINDOWS_PREFIX) == []


def test_a_refusal_that_would_repeat_is_logged_with_the_command_and_forgotten(
    world: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    worker = container(world)
    replace(world, worker, PAGES[0])
    with refused(world["cloudfront"], "CreateInvalidation", "AccessDenied", 403, times=5) as calls:
        worker.flush_invalidations()
    assert len(calls) == 1  # never retried: it would be refused again
    (line,) = [r for r in caplog.records if r.getMessage().startswith("CreateInvalidation failed")]
    assert line.levelno == logging.ERROR and "edgefill invalidate" in line.getMessage()
    assert line.paths == [PAGES[0]]
    assert journal(world) == []


# ---------------------------------------------------------------- paths


def test_with_the_query_in_the_cache_key_every_query_of_a_path_is_invalidated(
    world: dict[str, Any],
) -> None:
    # Given a worker whose distribution caches by query string
    worker = container(world, EDGEFILL_QUERY="forward")
    replace(world, worker, PAGES[1])
    # When its paths are sent, then the path is invalidated as a wildcard: every query
    worker.flush_invalidations()
    assert invalidations(world) == [[PAGES[1] + "*"]]
