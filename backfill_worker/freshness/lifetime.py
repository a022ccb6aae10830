"""How long a copy stays fresh, and when it is due for revalidation against the origin.

A copy is **due** when ``now ≥ max(fetched-at, checked-at) + lifetime``. The lifetime is
the origin's ``s-maxage`` (the shared-cache lifetime, which is what the bucket is), else
its ``max-age``, else ``Expires − fetched-at``, else ``EDGEFILL_REVALIDATE_AFTER``.

The headers come from the origin (or from the copy's stored Cache-Control / Expires):
hostile values never raise. A directive that does not parse is ignored (the next rule
applies), a negative lifetime counts as zero (due at once), and a lifetime is capped at
``MAX_LIFETIME_SECONDS`` so a due time always fits the index's four-digit year.

The metadata names and the time format (RFC 3339 UTC, ``2026-11-30T06:00:00Z``,
``shared.messages.format_time``) are a public contract (docs/CONTRACTS.md).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Final

from shared.config import DEFAULT_REVALIDATE_AFTER

# Object metadata (x-amz-meta-*) edgefill writes with every copy: when the bytes were
# fetched, and the origin's validators when it sent them (``transfer/storable.py``).
# ``checked-at`` is not among them: it lives in the due index (``due_index.py``), since
# metadata cannot change without writing the object again.
FETCHED_AT: Final = "fetched-at"
ORIGIN_ETAG: Final = "origin-etag"
ORIGIN_LAST_MODIFIED: Final = "origin-last-modified"

# Ten years: longer lifetimes mean "never" in practice, and the cap keeps every due time
# inside datetime's range whatever number the origin sends.
MAX_LIFETIME_SECONDS: Final = 10 * 365 * 86_400
_DIRECTIVE = re.compile(r"^\s*([A-Za-z-]+)\s*(?:=\s*\"?([^\",]*)\"?)?\s*$")
# Header values longer than this are not real Cache-Control or Expires values.
_MAX_HEADER: Final = 4096


def cache_lifetime(cache_control: str | None) -> int | None:
    """Seconds from ``s-maxage``, else ``max-age``; None when neither is usable."""
    if not cache_control or len(cache_control) > _MAX_HEADER:
        return None
    found: dict[str, int] = {}
    for part in cache_control.split(","):
        match = _DIRECTIVE.match(part)
        if not match or match.group(2) is None:
            continue
        name, raw = match.group(1).lower(), match.group(2).strip()
        if (
            name in ("s-maxage", "max-age")
            and name not in found
            and re.fullmatch(r"-?\d{1,30}", raw)
        ):
            found[name] = _clamp(int(raw))
    return found.get("s-maxage", found.get("max-age"))


def expires_lifetime(expires: str | datetime | None, fetched_at: datetime) -> int | None:
    """Seconds from ``fetched_at`` to ``Expires``; None when Expires is absent or not a
    date (RFC 9111: an invalid Expires means "already expired", which the default rule
    treats better than a zero lifetime for a copy that must be revalidated each sweep)."""
    if expires is None:
        return None
    moment: datetime | None
    if isinstance(expires, datetime):
        moment = expires
    else:
        if len(expires) > _MAX_HEADER:
            return None
        try:
            moment = parsedate_to_datetime(expires)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return _clamp(int((moment - fetched_at).total_seconds()))


def lifetime(
    cache_control: str | None,
    expires: str | datetime | None,
    fetched_at: datetime,
    default: int = DEFAULT_REVALIDATE_AFTER,
) -> int:
    """The copy's lifetime in seconds by the rules in the module docstring."""
    seconds = cache_lifetime(cache_control)
    if seconds is None:
        seconds = expires_lifetime(expires, fetched_at)
    if seconds is None:
        seconds = default
    return _clamp(seconds)


def due_at(fetched_at: datetime, checked_at: datetime | None, seconds: int) -> datetime:
    """When a copy fetched at ``fetched_at`` (last found unchanged at ``checked_at``) with
    a lifetime of ``seconds`` must be revalidated."""
    start = fetched_at if checked_at is None else max(fetched_at, checked_at)
    try:
        return start + timedelta(seconds=_clamp(seconds))
    except OverflowError:  # a hostile fetched-at near year 9999
        return datetime.max.replace(tzinfo=UTC)


def is_due(now: datetime, fetched_at: datetime, checked_at: datetime | None, seconds: int) -> bool:
    """``now ≥ max(fetched-at, checked-at) + lifetime``."""
    return now >= due_at(fetched_at, checked_at, seconds)


def _clamp(seconds: int) -> int:
    return max(0, min(seconds, MAX_LIFETIME_SECONDS))
