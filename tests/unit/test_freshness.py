"""When a copy is due: its remaining freshness from what S3 keeps of it (RFC 9111 §4.2,
table in test_rfc9111.py), edgefill's floor, the entries standing for refreshes in
flight, retries with backoff, and hostile entry bodies."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from backfill_worker.freshness.due_index import (
    RESEND_AFTER,
    DueEntry,
    DueIndex,
    Schedule,
    entry_key,
    in_flight,
    retry_seconds,
)
from backfill_worker.freshness.lifetime import (
    MAX_LIFETIME_SECONDS,
    copy_freshness,
    due_at,
    is_due,
    lifetime,
)
from backfill_worker.freshness.revalidation import STALE_GRACE, stale_deadline
from shared.object_store import StoredCopy

FETCHED = datetime(2026, 11, 30, 6, 0, 0, tzinfo=UTC)
NOW = FETCHED + timedelta(minutes=1)


class MemoryStore:
    """The index's calls of ``ObjectStore`` on a dict."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def put_small(self, key: str, body: bytes) -> None:
        self.objects[key] = body

    def get_small(self, key: str, limit: int = 65536) -> bytes | None:
        return self.objects.get(key)

    def exists(self, key: str) -> bool:
        return key in self.objects


def index() -> DueIndex:
    return DueIndex(MemoryStore())  # type: ignore[arg-type]


def copy(cache_control: str | None = None, **metadata: str) -> StoredCopy:
    return StoredCopy(
        etag='"e"',
        metadata={"fetched-at": "2026-11-30T06:00:00Z", **metadata},
        cache_control=cache_control,
        last_modified=FETCHED,
    )


def test_the_lifetime_counts_the_age_the_copy_had_when_fetched_rfc9111_4_2_3() -> None:
    # Given a copy fetched at 06:00 whose origin (a CDN) said max-age=3600, Age: 600
    fetched_at, freshness = copy_freshness(copy("max-age=3600", **{"origin-age": "600"}), NOW, 1)
    # Then it was fresh for 3000 s more when fetched
    assert fetched_at == FETCHED and freshness.remaining == 3000


def test_the_origins_date_gives_the_apparent_age_rfc9111_4_2_3() -> None:
    stored = copy("max-age=3600", **{"origin-date": "Mon, 30 Nov 2026 05:50:00 GMT"})
    assert copy_freshness(stored, NOW, 1)[1].remaining == 3000


def test_a_copy_is_due_at_its_remaining_freshness_and_written_twice_it_is_one_entry() -> None:
    schedule = Schedule(index(), 86_400, 900)
    stored = copy("max-age=7200", **{"origin-age": "3600"})
    first = schedule.after_fetch("k", stored, NOW)
    second = schedule.after_fetch("k", stored, NOW + timedelta(hours=1))  # an `exists` re-index
    assert first == second == entry_key(FETCHED + timedelta(seconds=3600), "k")
    body = json.loads(schedule.index.store.objects[first])  # type: ignore[attr-defined]
    assert body["rule"] == "max-age" and body["lifetime"] == 3600
    assert body["copyVersion"] == stored.version


def test_max_age_1_is_revalidated_at_the_floor_not_every_sweep() -> None:
    schedule = Schedule(index(), 86_400, 900)
    key = schedule.after_fetch("k", copy("max-age=1"), NOW)
    assert key == entry_key(FETCHED + timedelta(seconds=900), "k")
    entry = schedule.index.read_entry(key)
    assert entry is not None and entry.rule == "minimum"


def test_a_304_moves_the_due_time_by_its_own_fields() -> None:
    schedule = Schedule(index(), 86_400, 60)
    checked = FETCHED + timedelta(hours=5)
    fields = {"cache-control": "max-age=600", "age": "100"}
    key = schedule.after_check("k", copy("max-age=60"), fields, checked)
    assert key == entry_key(checked + timedelta(seconds=500), "k")


def test_the_entry_standing_for_a_refresh_remembers_since_when_the_copy_is_due() -> None:
    entry = DueEntry("k", FETCHED, None, 60, "max-age", '"e" x')
    due = FETCHED + timedelta(seconds=60)
    resend, stands = in_flight(entry, due, NOW)
    assert resend == max(due, NOW) + RESEND_AFTER
    assert stands.stale_since == due and stands.copy_version == '"e" x'
    # And a retry entry that is sent again keeps the first time it was due
    later, again = in_flight(stands, resend, resend)
    assert again.stale_since == due and later == resend + RESEND_AFTER


def test_retries_back_off_from_a_minute_to_an_hour() -> None:
    assert [retry_seconds(n) for n in (1, 2, 3, 7, 8, 50)] == [60, 120, 240, 3600, 3600, 3600]
    schedule = Schedule(index(), 86_400, 900)
    trigger = DueEntry("k", FETCHED, None, 60, stale_since=FETCHED, failures=2)
    key = schedule.retry(trigger, NOW, None)
    assert key == entry_key(NOW + timedelta(seconds=240), "k")
    retry = schedule.index.read_entry(key)
    assert retry is not None and (retry.failures, retry.stale_since) == (3, FETCHED)
    # And a copy that must be gone by a deadline is retried no later than it
    deadline = NOW + timedelta(seconds=30)
    assert schedule.retry(trigger, NOW, deadline) == entry_key(deadline, "k")


@pytest.mark.parametrize(
    ("cache_control", "seconds"),
    [
        pytest.param("max-age=60, must-revalidate", STALE_GRACE.total_seconds(), id="4.2.4-mr"),
        pytest.param("max-age=60, proxy-revalidate", STALE_GRACE.total_seconds(), id="4.2.4-pr"),
        pytest.param("s-maxage=60", STALE_GRACE.total_seconds(), id="4.2.4-s-maxage"),
        pytest.param("max-age=60, stale-if-error=300", 300, id="rfc5861-stale-if-error"),
        pytest.param(
            "s-maxage=60, stale-if-error=9999",
            STALE_GRACE.total_seconds(),
            id="4.2.4-no-stale-beats-stale-if-error",
        ),
        pytest.param("max-age=60", None, id="4.2.4-disconnected-may-serve-stale"),
    ],
)
def test_how_long_a_copy_may_stay_while_its_origin_fails_rfc9111_4_2_4(
    cache_control: str, seconds: float | None
) -> None:
    deadline, rule = stale_deadline(copy(cache_control), FETCHED)
    assert rule
    if seconds is None:
        assert deadline is None
    else:
        assert deadline == FETCHED + timedelta(seconds=seconds)


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        json.dumps({"key": "other"}).encode(),  # not this entry's key
        json.dumps({"key": "k", "lifetime": -5, "failures": True}).encode(),
        b"[" * 100_000,
    ],
)
def test_hostile_entry_bodies_never_raise(body: bytes) -> None:
    due = index()
    name = entry_key(FETCHED, "k")
    due.store.objects[name] = body  # type: ignore[attr-defined]
    entry = due.read_entry(name)
    assert entry is None or (entry.lifetime == 0 and entry.failures == 0)


def test_the_copys_own_headers_give_a_lifetime_without_date_or_age() -> None:
    assert lifetime("public, max-age=60, s-maxage=600", None, FETCHED) == 600
    assert lifetime(None, "Mon, 30 Nov 2026 07:00:00 GMT", FETCHED) == 3600
    assert lifetime(None, FETCHED + timedelta(hours=2), FETCHED) == 7200
    assert lifetime("max-age=999999999999999", None, FETCHED) == MAX_LIFETIME_SECONDS
    assert lifetime(None, None, FETCHED, default=777) == 777


def test_due_uses_the_later_of_fetched_and_checked() -> None:
    # Given a copy fetched at 06:00, found unchanged at 08:00, with a one-hour lifetime
    checked = FETCHED + timedelta(hours=2)
    # Then it is due at 09:00, not 07:00
    assert due_at(FETCHED, checked, 3600) == FETCHED + timedelta(hours=3)
    assert not is_due(FETCHED + timedelta(hours=2, minutes=59), FETCHED, checked, 3600)
    assert is_due(FETCHED + timedelta(hours=3), FETCHED, checked, 3600)
    # And a checked-at older than fetched-at (a replaced copy) does not shorten it
    assert due_at(FETCHED, FETCHED - timedelta(days=3), 60) == FETCHED + timedelta(seconds=60)


def test_a_hostile_fetched_at_near_year_9999_does_not_overflow() -> None:
    far: Any = datetime(9999, 12, 31, tzinfo=UTC)
    assert due_at(far, None, MAX_LIFETIME_SECONDS).year == 9999
