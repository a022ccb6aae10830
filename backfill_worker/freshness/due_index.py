"""The due index: when each copy must next be revalidated, kept where a sweep can find
the due ones without looking at the others.

An entry is ``_edgefill/due/<due time>/<sha256 of the object key>``, an object of a few
hundred bytes holding ``{"v": 1, "key": ..., "fetchedAt": ..., "checkedAt": ...,
"lifetime": ...}``. The due time is RFC 3339 UTC with seconds, fixed width, so S3's
key order *is* due order: a sweep lists from the start and stops at the first entry
not yet due. Its cost is one ListObjectsV2 per 1 000 due entries plus one GET per due
entry, whatever the number of copies in the bucket.

The worker writes an entry (``record_copy``) after every copy it makes (fill or
replace) and after every revalidation that found the copy unchanged (``checked-at``
lives here: see docs/BACKFILL.md "Freshness"); the sweep deletes an entry once the
refresh message for it is sent. Processed entries are gone, so the index is its own
cursor: a sweep that stopped at its deadline is continued by the next one from the
earliest entry left.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from backfill_worker.freshness.lifetime import FETCHED_AT, due_at, lifetime
from shared.keys import MAX_KEY_BYTES, RESERVED_PREFIX
from shared.messages import format_time, parse_time
from shared.object_store import MAX_LIST_KEYS, ObjectStore, StoredCopy

DUE_PREFIX: Final = RESERVED_PREFIX + "due/"
# "2026-11-30T06:00:00Z" is 20 characters, then "/" and 64 hex digits.
_TIME_WIDTH: Final = 20


def entry_key(due: datetime, object_key: str) -> str:
    """The index entry of ``object_key`` due at ``due``."""
    digest = hashlib.sha256(object_key.encode("utf-8")).hexdigest()
    return f"{DUE_PREFIX}{format_time(due)}/{digest}"


def due_of(entry: str) -> datetime | None:
    """The due time written in an entry's key, or None for a key that is not an entry."""
    if not entry.startswith(DUE_PREFIX):
        return None
    return parse_time(entry[len(DUE_PREFIX) : len(DUE_PREFIX) + _TIME_WIDTH])


@dataclass(frozen=True, slots=True)
class DuePage:
    """Entries due now from one listing page; ``last`` is where the next page starts and
    ``finished`` says no due entry follows (an entry not yet due, or the end)."""

    entries: list[str]
    last: str | None
    finished: bool


class DueIndex:
    """Write, list, read and remove due entries in the bucket."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    def record(
        self,
        object_key: str,
        fetched_at: datetime,
        checked_at: datetime | None,
        lifetime: int,
    ) -> str:
        """Write the entry of a copy; returns its key. Raises ``StoreError``."""
        due = due_at(fetched_at, checked_at, lifetime)
        body = {
            "v": 1,
            "key": object_key,
            "fetchedAt": format_time(fetched_at),
            "checkedAt": None if checked_at is None else format_time(checked_at),
            "lifetime": lifetime,
        }
        key = entry_key(due, object_key)
        self.store.put_small(key, json.dumps(body, ensure_ascii=True).encode("ascii"))
        return key

    def page(self, now: datetime, start_after: str | None = None) -> DuePage:
        """The entries due at ``now`` in the next listing page after ``start_after``."""
        listed, more = self.store.list_page(DUE_PREFIX, start_after, MAX_LIST_KEYS)
        due: list[str] = []
        for item in listed:
            when = due_of(item.key)
            if when is not None and when > now:
                return DuePage(due, item.key, finished=True)
            # An entry whose time does not parse is listed as due: the sweep then reads
            # it, finds it bad and removes it, instead of tripping over it every run.
            due.append(item.key)
        last = listed[-1].key if listed else start_after
        return DuePage(due, last, finished=not more)

    def read(self, entry: str) -> str | None:
        """The object key an entry names; None when the entry is gone or unreadable."""
        body = self.store.get_small(entry, limit=4 * MAX_KEY_BYTES + 1024)
        if body is None:
            return None
        try:
            raw = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return None
        key = raw.get("key") if isinstance(raw, dict) else None
        if not isinstance(key, str) or not key or len(key.encode("utf-8")) > MAX_KEY_BYTES:
            return None
        if hashlib.sha256(key.encode("utf-8")).hexdigest() != entry.rsplit("/", 1)[-1]:
            return None  # the body does not belong to this entry's name
        return key

    def remove(self, entries: list[str]) -> list[str]:
        """Delete entries; returns those S3 failed to delete."""
        if not entries:
            return []
        return self.store.delete_keys(entries)


def record_copy(
    index: DueIndex,
    key: str,
    copy: StoredCopy,
    checked_at: datetime | None,
    *,
    default_lifetime: int,
    now: datetime,
) -> None:
    """Write the due entry of ``copy`` (as S3 now holds it): fetched at its
    ``fetched-at`` (else ``now``), with the lifetime its headers give (else
    ``default_lifetime``), last found unchanged at ``checked_at``. Raises ``StoreError``."""
    fetched_at = parse_time(copy.metadata.get(FETCHED_AT)) or now
    seconds = lifetime(copy.cache_control, copy.expires, fetched_at, default_lifetime)
    index.record(key, fetched_at, checked_at, seconds)
