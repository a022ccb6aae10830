"""How long a copy stays fresh, and when edgefill revalidates it against the origin.

The freshness rules are RFC 9111's, read by ``shared/cache_control.py`` (the parser
storability uses too): the **freshness lifetime** (§4.2.1: ``s-maxage``, else
``max-age``, else ``Expires − Date``; §4.2.2: else 10 % of the time since Last-Modified,
at most ``EDGEFILL_REVALIDATE_AFTER``; else ``EDGEFILL_REVALIDATE_AFTER``) less the
**current age** when the response was received (§4.2.3: Age, and the apparent age from
Date) is how long the copy is still fresh: its *remaining* freshness.

A copy is **due** at ``start + max(remaining, EDGEFILL_MIN_REVALIDATE)``, where ``start``
is when its bytes were fetched (``fetched-at``) or when it was last found unchanged
(``checked-at``). The floor is edgefill's own: it governs when *edgefill* revalidates
(``max-age=1`` must not make every sweep refresh a copy), never what S3 serves, which is
always the origin's Cache-Control and Expires as sent. A lifetime is capped at
``MAX_LIFETIME_SECONDS`` so a due time always fits the index's four-digit year.

A copy's lifetime is computed from what S3 keeps of it (Cache-Control, Expires, and the
metadata below), so a fill, a replace and a re-index of the same copy agree on its due
time to the second; a 304 brings its own Date, Age and header fields.

The metadata names and the time format (RFC 3339 UTC, ``2026-11-30T06:00:00Z``,
``shared.messages.format_time``) are a public contract (docs/CONTRACTS.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from shared.cache_control import Lifetime, current_age, format_http_date, freshness_lifetime
from shared.config import DEFAULT_REVALIDATE_AFTER
from shared.messages import parse_time
from shared.object_store import StoredCopy

# Object metadata (x-amz-meta-*) edgefill writes with every copy: when the bytes were
# fetched, and what the origin said that a lifetime is computed from later: its
# validators, its Date and its Age (``transfer/storable.py`` keeps them). ``checked-at``
# is not among them: it lives in the due index (``due_index.py``), since metadata cannot
# change without writing the object again.
FETCHED_AT: Final = "fetched-at"
ORIGIN_ETAG: Final = "origin-etag"
ORIGIN_LAST_MODIFIED: Final = "origin-last-modified"
ORIGIN_DATE: Final = "origin-date"
ORIGIN_AGE: Final = "origin-age"

# Ten years: longer lifetimes mean "never" in practice, and the cap keeps every due time
# inside datetime's range whatever number the origin sends.
MAX_LIFETIME_SECONDS: Final = 10 * 365 * 86_400
# The rule name a due entry records when the floor, not the origin, set its time.
MINIMUM_RULE: Final = "minimum"


@dataclass(frozen=True, slots=True)
class Freshness:
    """How fresh a response was on receipt: its lifetime (and the rule that gave it) and
    its current age then."""

    lifetime: Lifetime
    age: int

    @property
    def remaining(self) -> int:
        """Seconds it stays fresh after receipt (0 when stale already)."""
        return max(0, self.lifetime.seconds - self.age)


def stored_fields(copy: StoredCopy) -> dict[str, str]:
    """The header fields S3 keeps for ``copy``, by lower-case name, as the origin sent
    them: the representation headers, and the validators, Date and Age from metadata."""
    fields = {
        name: value
        for name, value in (
            ("cache-control", copy.cache_control),
            ("expires", copy.expires),
            ("content-type", copy.content_type),
            ("content-disposition", copy.content_disposition),
            ("content-language", copy.content_language),
            ("content-encoding", copy.content_encoding),
        )
        if value is not None
    }
    for name, meta in (
        ("etag", ORIGIN_ETAG),
        ("last-modified", ORIGIN_LAST_MODIFIED),
        ("date", ORIGIN_DATE),
        ("age", ORIGIN_AGE),
    ):
        value = copy.metadata.get(meta)
        if value is not None:
            fields[name] = value
    return fields


def freshness_of(fields: Mapping[str, str], received_at: datetime, default: int) -> Freshness:
    """The freshness of a response with lower-cased ``fields`` received at
    ``received_at`` (``default``: ``EDGEFILL_REVALIDATE_AFTER``)."""
    return Freshness(
        freshness_lifetime(fields, received_at, default), current_age(fields, received_at)
    )


def copy_freshness(copy: StoredCopy, now: datetime, default: int) -> tuple[datetime, Freshness]:
    """When ``copy`` was fetched (its ``fetched-at``, else ``now``) and how fresh it was
    then, from what S3 keeps of it."""
    fetched_at = parse_time(copy.metadata.get(FETCHED_AT)) or now
    return fetched_at, freshness_of(stored_fields(copy), fetched_at, default)


def next_interval(freshness: Freshness, floor: int) -> tuple[int, str]:
    """Seconds from the fetch (or check) to the next revalidation, and the rule that set
    them: the remaining freshness, at least ``floor`` (``EDGEFILL_MIN_REVALIDATE``)."""
    remaining = min(freshness.remaining, MAX_LIFETIME_SECONDS)
    if remaining < floor:
        return floor, MINIMUM_RULE
    return remaining, freshness.lifetime.rule


def lifetime(
    cache_control: str | None,
    expires: str | datetime | None,
    fetched_at: datetime,
    default: int = DEFAULT_REVALIDATE_AFTER,
) -> int:
    """The freshness lifetime of a copy from its Cache-Control and Expires alone (no
    Date, Age or Last-Modified): §4.2.1, else ``default``; capped."""
    fields: dict[str, str] = {}
    if cache_control is not None:
        fields["cache-control"] = cache_control
    if isinstance(expires, datetime):
        fields["expires"] = format_http_date(expires)
    elif expires is not None:
        fields["expires"] = expires
    return _clamp(freshness_lifetime(fields, fetched_at, default).seconds)


def due_at(fetched_at: datetime, checked_at: datetime | None, seconds: int) -> datetime:
    """When a copy fetched at ``fetched_at`` (last found unchanged at ``checked_at``) is
    due, ``seconds`` after the later of the two."""
    start = fetched_at if checked_at is None else max(fetched_at, checked_at)
    try:
        return start + timedelta(seconds=_clamp(seconds))
    except OverflowError:  # a hostile fetched-at near year 9999
        return datetime.max.replace(tzinfo=UTC)


def is_due(now: datetime, fetched_at: datetime, checked_at: datetime | None, seconds: int) -> bool:
    """``now ≥ max(fetched-at, checked-at) + seconds``."""
    return now >= due_at(fetched_at, checked_at, seconds)


def _clamp(seconds: int) -> int:
    return max(0, min(seconds, MAX_LIFETIME_SECONDS))
