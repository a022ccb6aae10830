"""Missing paths against the lab origin: a path the origin answers 404 or 410 for costs
it at most one GET per EDGEFILL_MISSING_TTL seconds, however many failovers queue it."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest

from backfill_worker.fill.missing import marker_key
from backfill_worker.flight.outcome import TransientFailure
from edgefill.lab.origin import LabOrigin
from tests.integration.backfill_world import (
    BUCKET,
    FakeLambdaContext,
    backfill_at_once,
    keys,
    make_backfiller,
    message,
    reserved_keys,
    stored,
)


@pytest.mark.parametrize("status", [404, 410])
def test_many_failovers_of_a_missing_path_cost_the_origin_one_get(
    bucket: Any, origin: LabOrigin, status: int
) -> None:
    # Given a path the (slow) origin answers 404/410 for, and 16 workers receiving its
    # failover at once, then 10 more later
    origin.fault("/scan/wp-login.php", status=status, latency=0.3)
    workers = [make_backfiller(bucket, origin) for _ in range(16)]
    outcomes = backfill_at_once(workers, message("/scan/wp-login.php"))
    later = [workers[0].backfill(message("/scan/wp-login.php")) for _ in range(10)]
    # Then the origin was asked once; every other record is a permanent skip
    assert len(origin.counts("/scan/wp-login.php").requests) == 1
    reasons = sorted({o.reason for o in outcomes + later})
    assert set(reasons) <= {"origin", "leased", "missing"}
    assert [o.reason for o in outcomes].count("origin") == 1
    assert {o.reason for o in later} == {"missing"}
    # And the marker sits under the reserved prefix, not as an object viewers could get
    assert keys(bucket) == []
    assert reserved_keys(bucket) == [marker_key("scan/wp-login.php")]


def test_the_origin_is_asked_again_once_the_ttl_has_passed(bucket: Any, origin: LabOrigin) -> None:
    # Given a 404 remembered for 60 s
    now = [1_000_000.0]
    worker = make_backfiller(bucket, origin, EDGEFILL_MISSING_TTL="60")
    worker.wall_clock = lambda: now[0]
    assert worker.backfill(message("/soon.txt")).reason == "origin"
    now[0] += 59
    assert worker.backfill(message("/soon.txt")).reason == "missing"
    # When the object appears at the origin and the TTL passes
    origin.put("/soon.txt", b"here now")
    now[0] += 1
    # Then the next failover copies it
    assert worker.backfill(message("/soon.txt"), FakeLambdaContext()).status == "copied"
    assert stored(bucket, "soon.txt") == b"here now"
    assert len(origin.counts("/soon.txt").requests) == 2


@pytest.mark.parametrize("status", [403, 401, 503])
def test_other_answers_are_not_remembered(bucket: Any, origin: LabOrigin, status: int) -> None:
    origin.fault("/x.txt", status=status)
    worker = make_backfiller(bucket, origin)
    for _ in range(2):
        with contextlib.suppress(TransientFailure):  # 503: retried, as it should be
            worker.backfill(message("/x.txt"))
    assert len(origin.counts("/x.txt").requests) == 2
    assert keys(bucket) == []


def test_a_marker_does_not_hide_an_object_already_in_the_bucket(
    bucket: Any, origin: LabOrigin
) -> None:
    worker = make_backfiller(bucket, origin)
    assert worker.backfill(message("/both.txt")).reason == "origin"
    bucket.put_object(Bucket=BUCKET, Key="both.txt", Body=b"uploaded by hand")
    assert worker.backfill(message("/both.txt")).reason == "exists"
