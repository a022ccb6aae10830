"""Lifetime rules: s-maxage, else max-age, else Expires − fetched-at, else the default."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from backfill_worker.freshness.lifetime import (
    MAX_LIFETIME_SECONDS,
    cache_lifetime,
    due_at,
    is_due,
    lifetime,
)
from shared.messages import format_time, parse_time

FETCHED = datetime(2026, 11, 30, 6, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("cache_control", "expires", "seconds"),
    [
        ("public, max-age=60, s-maxage=600", None, 600),  # s-maxage wins for a shared cache
        ("s-maxage=600, max-age=60", None, 600),
        ("max-age=60", "Mon, 30 Nov 2026 07:00:00 GMT", 60),  # max-age beats Expires
        (None, "Mon, 30 Nov 2026 07:00:00 GMT", 3600),  # Expires − fetched-at
        ("public", "Mon, 30 Nov 2026 06:30:00 GMT", 1800),
        (None, None, 86_400),  # the default
        ("no-cache", None, 86_400),
        ("max-age=0", None, 0),  # revalidate at every sweep
        (None, "Mon, 30 Nov 2026 05:00:00 GMT", 0),  # expired already: due now
        ('max-age="120"', None, 120),  # quoted, as some origins send it
        ("MAX-AGE=30", None, 30),
    ],
)
def test_lifetime_rules(cache_control: str | None, expires: str | None, seconds: int) -> None:
    # Given the origin's Cache-Control and Expires / When the lifetime is computed
    assert lifetime(cache_control, expires, FETCHED, default=86_400) == seconds


@pytest.mark.parametrize(
    ("cache_control", "expires"),
    [
        ("max-age=abc", None),
        ("max-age=", None),
        ("max-age=1e9", None),
        ("max-age=" + "9" * 400, None),
        ("=,=,,,max-age", None),
        ("max-age=60" + ",x" * 5000, None),  # absurdly long header
        ("\x00\xff", "not a date"),
        (None, "Tue, 99 Foo 2026 99:99:99 GMT"),
        (None, "x" * 10_000),
        (None, ""),
    ],
)
def test_hostile_headers_never_raise_and_fall_back(
    cache_control: str | None, expires: str | None
) -> None:
    # Given header values no origin should send / Then the next rule (the default) applies
    assert lifetime(cache_control, expires, FETCHED, default=777) == 777


def test_huge_and_negative_values_are_clamped() -> None:
    assert lifetime("max-age=999999999999999", None, FETCHED) == MAX_LIFETIME_SECONDS
    assert lifetime("max-age=-5", None, FETCHED) == 0
    assert lifetime(None, "Fri, 31 Dec 9999 23:59:59 GMT", FETCHED) == MAX_LIFETIME_SECONDS
    assert cache_lifetime("s-maxage=-1, max-age=50") == 0


def test_due_uses_the_later_of_fetched_and_checked() -> None:
    # Given a copy fetched at 06:00, found unchanged at 08:00, with a one-hour lifetime
    checked = FETCHED + timedelta(hours=2)
    # Then it is due at 09:00, not 07:00
    assert due_at(FETCHED, checked, 3600) == FETCHED + timedelta(hours=3)
    assert not is_due(FETCHED + timedelta(hours=2, minutes=59), FETCHED, checked, 3600)
    assert is_due(FETCHED + timedelta(hours=3), FETCHED, checked, 3600)
    # And a checked-at older than fetched-at (a replaced copy) does not shorten it
    assert due_at(FETCHED, FETCHED - timedelta(days=3), 60) == FETCHED + timedelta(seconds=60)


def test_due_at_never_overflows() -> None:
    far = datetime(9999, 12, 31, 23, 0, tzinfo=UTC)
    assert due_at(far, None, MAX_LIFETIME_SECONDS).year == 9999


def test_time_format_round_trips() -> None:
    assert format_time(FETCHED) == "2026-11-30T06:00:00Z"
    assert parse_time("2026-11-30T06:00:00Z") == FETCHED
    assert parse_time("2026-11-30T07:00:00+01:00") == FETCHED
    assert format_time(datetime(2026, 11, 30, 6, 0, 0)) == "2026-11-30T06:00:00Z"  # naive = UTC


@pytest.mark.parametrize(
    "value",
    [
        None,
        42,
        "",
        "yesterday",
        "2026-13-40T99:99:99Z",
        "2026-11-30 06:00:00",
        "0000-01-01T00:00:00Z",
        "2026-11-30T06:00:00Z" + "0" * 100,
        "\x00",
    ],
)
def test_parse_time_rejects_what_is_not_rfc3339(value: object) -> None:
    assert parse_time(value) is None
