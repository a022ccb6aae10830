"""The due index: when each copy must next be revalidated, kept where a sweep can find
the due ones without looking at the others.

An entry is ``_edgefill/due/<due time>/<sha256 of the object key>``, an object of a few
hundred bytes holding ``{"v": 1, "key", "fetchedAt", "checkedAt", "lifetime"}`` and, since
issue 18, ``rule`` (what set the lifetime), ``copyVersion`` (the copy's S3 ETag and
Last-Modified when the entry was written), and on the entries that stand for a refresh
in flight or retry a failed one, ``staleSince`` (when the copy became due) and
``failures``. The due time is RFC 3339 UTC with seconds, fixed width, so S3's key order
*is* due order: a sweep lists from the start and stops at the first entry not yet due.
Its cost is one ListObjectsV2 per 1 000 due entries plus one GET per due entry, whatever
the number of copies in the bucket.

Who writes what, so that no stored copy is ever left without an entry:

- every copy made (a fill, a replace, a header update) gets an entry a lifetime after
  it (``Schedule.after_fetch``), and so does a fill skipped as ``exists`` when the copy's
  entry is missing (a worker that died between the copy and its entry);
- a revalidation that found the copy unchanged writes the next one (``after_check``:
  ``checked-at`` lives here, see docs/BACKFILL.md "Freshness");
- the sweep, before it sends a refresh, writes the entry that stands for that refresh
  (``in_flight``: due again ``RESEND_AFTER`` later, should the refresh be lost, in the DLQ
  or wherever); the refresh removes it once it has written what comes next;
- a refresh the origin failed (5xx, timeout) writes a retry entry with backoff
  (``retry``).

Processed entries are gone, so the index is its own cursor: a sweep that stopped at its
deadline is continued by the next one from the earliest entry left.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Final

from backfill_worker.freshness.lifetime import (
    Freshness,
    copy_freshness,
    due_at,
    freshness_of,
    next_interval,
)
from shared.keys import MAX_KEY_BYTES, RESERVED_PREFIX
from shared.messages import format_time, parse_time
from shared.object_store import MAX_LIST_KEYS, ObjectStore, StoredCopy

DUE_PREFIX: Final = RESERVED_PREFIX + "due/"
# "2026-11-30T06:00:00Z" is 20 characters, then "/" and 64 hex digits.
_TIME_WIDTH: Final = 20
# An entry standing for a refresh in flight is due again this long after the refresh was
# meant to start: a refresh normally ends in seconds; one lost (in the DLQ, or dropped)
# is sent again an hour later. A duplicate costs nothing: it finds its entry gone.
RESEND_AFTER: Final = timedelta(hours=1)
# A refresh the origin failed is retried after 1 minute, then 2, 4 … at most an hour
# (each retry waits for the sweep that reaches its entry).
RETRY_FIRST_SECONDS: Final = 60
RETRY_MAX_SECONDS: Final = 3600
RETRY_RULE: Final = "retry"
_MAX_FAILURES: Final = 1000


def entry_key(due: datetime, object_key: str) -> str:
    """The index entry of ``object_key`` due at ``due``."""
    digest = hashlib.sha256(object_key.encode("utf-8")).hexdigest()
    return f"{DUE_PREFIX}{format_time(due)}/{digest}"


def due_of(entry: str) -> datetime | None:
    """The due time written in an entry's key, or None for a key that is not an entry."""
    if not entry.startswith(DUE_PREFIX):
        return None
    return parse_time(entry[len(DUE_PREFIX) : len(DUE_PREFIX) + _TIME_WIDTH])


def retry_seconds(failures: int) -> int:
    """The wait before retry number ``failures`` (1, 2, …): 60 s doubling, at most 1 h."""
    return min(RETRY_MAX_SECONDS, RETRY_FIRST_SECONDS * 2 ** min(max(failures - 1, 0), 16))


@dataclass(frozen=True, slots=True)
class DueEntry:
    """One entry's body: the copy ``key``, fetched at ``fetched_at``, last found
    unchanged at ``checked_at``, due ``lifetime`` seconds after the later of the two."""

    key: str
    fetched_at: datetime
    checked_at: datetime | None
    lifetime: int
    rule: str | None = None
    copy_version: str | None = None
    stale_since: datetime | None = None
    failures: int = 0

    @property
    def due(self) -> datetime:
        return due_at(self.fetched_at, self.checked_at, self.lifetime)

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "v": 1,
            "key": self.key,
            "fetchedAt": format_time(self.fetched_at),
            "checkedAt": None if self.checked_at is None else format_time(self.checked_at),
            "lifetime": self.lifetime,
        }
        optional: dict[str, Any] = {
            "rule": self.rule,
            "copyVersion": self.copy_version,
            "staleSince": None if self.stale_since is None else format_time(self.stale_since),
            "failures": self.failures or None,
        }
        body.update({name: value for name, value in optional.items() if value is not None})
        return body


@dataclass(frozen=True, slots=True)
class DuePage:
    """Entries due by the page's time from one listing page; ``last`` is where the next
    page starts and ``finished`` says no due entry follows (one not yet due, or the end)."""

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
        return self.write(DueEntry(object_key, fetched_at, checked_at, lifetime))

    def write(self, entry: DueEntry, at: datetime | None = None) -> str:
        """Write ``entry`` under its due time (or ``at``); returns its key. Raises
        ``StoreError``."""
        return self.write_as(entry_key(at or entry.due, entry.key), entry)

    def write_as(self, key: str, entry: DueEntry) -> str:
        """Write ``entry`` as index entry ``key``; returns it. Raises ``StoreError``."""
        self.store.put_small(key, json.dumps(entry.as_json(), ensure_ascii=True).encode("ascii"))
        return key

    def exists(self, entry: str) -> bool:
        """True when index entry ``entry`` is there (HeadObject). Raises ``StoreError``."""
        return self.store.exists(entry)

    def page(self, until: datetime, start_after: str | None = None) -> DuePage:
        """The entries due by ``until`` in the next listing page after ``start_after``."""
        listed, more = self.store.list_page(DUE_PREFIX, start_after, MAX_LIST_KEYS)
        due: list[str] = []
        for item in listed:
            when = due_of(item.key)
            if when is not None and when > until:
                return DuePage(due, item.key, finished=True)
            # An entry whose time does not parse is listed as due: the sweep then reads
            # it, finds it bad and removes it, instead of tripping over it every run.
            due.append(item.key)
        last = listed[-1].key if listed else start_after
        return DuePage(due, last, finished=not more)

    def read(self, entry: str) -> str | None:
        """The object key an entry names; None when the entry is gone or unreadable."""
        parsed = self.read_entry(entry)
        return None if parsed is None else parsed.key

    def read_entry(self, entry: str) -> DueEntry | None:
        """An entry's body; None when it is gone, unreadable, or not this entry's (its key
        does not hash to the entry's name). Raises ``StoreError``."""
        body = self.store.get_small(entry, limit=4 * MAX_KEY_BYTES + 1024)
        if body is None:
            return None
        try:
            raw = json.loads(body)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return None
        return _entry_from(raw, entry)

    def remove(self, entries: list[str]) -> list[str]:
        """Delete entries; returns those S3 failed to delete."""
        if not entries:
            return []
        return self.store.delete_keys(entries)


def _entry_from(raw: object, entry: str) -> DueEntry | None:
    if not isinstance(raw, dict):
        return None
    key = raw.get("key")
    if not isinstance(key, str) or not key or len(key.encode("utf-8")) > MAX_KEY_BYTES:
        return None
    if hashlib.sha256(key.encode("utf-8")).hexdigest() != entry.rsplit("/", 1)[-1]:
        return None  # the body does not belong to this entry's name
    fetched = parse_time(raw.get("fetchedAt")) or due_of(entry)
    if fetched is None:
        return None
    rule, version = raw.get("rule"), raw.get("copyVersion")
    return DueEntry(
        key=key,
        fetched_at=fetched,
        checked_at=parse_time(raw.get("checkedAt")),
        lifetime=_count(raw.get("lifetime")),
        rule=rule if isinstance(rule, str) else None,
        copy_version=version if isinstance(version, str) else None,
        stale_since=parse_time(raw.get("staleSince")),
        failures=min(_count(raw.get("failures")), _MAX_FAILURES),
    )


def _count(value: object) -> int:
    """A non-negative integer field of an entry; 0 for anything else."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return 0


def in_flight(entry: DueEntry, due: datetime, sent_at: datetime) -> tuple[datetime, DueEntry]:
    """The entry that stands for a refresh of ``entry`` (due at ``due``) sent at
    ``sent_at``, due ``RESEND_AFTER`` after the refresh is meant to start, and remembering
    since when the copy is due. Returns its due time and body (not yet written)."""
    resend = max(due, sent_at) + RESEND_AFTER
    stands = replace(entry, stale_since=entry.stale_since or due)
    return resend, stands


@dataclass(frozen=True, slots=True)
class Schedule:
    """When copies are revalidated: the index, ``EDGEFILL_REVALIDATE_AFTER`` (the lifetime
    a copy whose origin gave none gets, and the heuristic's cap) and
    ``EDGEFILL_MIN_REVALIDATE`` (the floor)."""

    index: DueIndex
    default_lifetime: int
    floor: int

    def after_fetch(self, key: str, copy: StoredCopy, now: datetime) -> str:
        """The entry of a copy just made (or found without one), from what S3 holds: due
        its remaining freshness after its ``fetched-at``. Deterministic: written twice
        for the same copy, it is the same entry. Raises ``StoreError``."""
        return self.index.write(self.fetched_entry(key, copy, now))

    def fetched_entry(self, key: str, copy: StoredCopy, now: datetime) -> DueEntry:
        """What ``after_fetch`` writes."""
        fetched_at, freshness = copy_freshness(copy, now, self.default_lifetime)
        return self._entry(key, copy, fetched_at, None, freshness)

    def after_check(
        self, key: str, copy: StoredCopy, fields: dict[str, str], checked_at: datetime
    ) -> str:
        """The entry of a copy found unchanged by a revalidation made at ``checked_at``,
        whose answer (a 304 merged into the stored fields, or a 200 of the same version)
        has ``fields``. Raises ``StoreError``."""
        fetched_at, _ = copy_freshness(copy, checked_at, self.default_lifetime)
        freshness = freshness_of(fields, checked_at, self.default_lifetime)
        return self.index.write(self._entry(key, copy, fetched_at, checked_at, freshness))

    def retry(self, trigger: DueEntry, now: datetime, deadline: datetime | None) -> str:
        """The entry retrying a refresh the origin failed, after ``retry_seconds`` (not
        later than ``deadline``, when the copy must be gone by then). Raises
        ``StoreError``."""
        failures = trigger.failures + 1
        when = now + timedelta(seconds=retry_seconds(failures))
        if deadline is not None:
            when = max(now, min(when, deadline))
        retry = replace(trigger, rule=RETRY_RULE, failures=failures)
        return self.index.write(retry, at=when)

    def _entry(
        self,
        key: str,
        copy: StoredCopy,
        fetched_at: datetime,
        checked_at: datetime | None,
        freshness: Freshness,
    ) -> DueEntry:
        seconds, rule = next_interval(freshness, self.floor)
        return DueEntry(key, fetched_at, checked_at, seconds, rule, copy.version)
