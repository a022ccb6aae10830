"""The invalidations a replace or a delete still owes CloudFront, kept in the bucket until
CloudFront has them, and the windows that batch them across invocations.

A replaced or deleted copy is reported done (its record succeeds, SQS forgets the
message) only once its path is recorded here: a worker that dies before it invalidates
loses nothing, and a retry of the record could not tell (it finds the copy unchanged).
Every invocation recording paths would otherwise create its own invalidation (one per
object with the template's batch size of 1), and CloudFront takes only 3 000 paths, 15 of
them wildcards, in progress at once. So the paths wait here for their batching window:

- ``_edgefill/invalidations/paths/<time>/<nonce>.<kind><uri>``: one object per path
  recorded (``kind``: ``replaced`` or ``deleted``; ``time``: RFC 3339 UTC, so S3's key
  order is the order paths were recorded in, to the second). The URI, percent-encoded
  ASCII starting with ``/``, ends the key, so one LIST reads a thousand of them; a URI
  too long for S3's 1 024-byte keys ends at ``<kind>`` and the body names it. Each
  record has its own key: a path recorded again while a flush is under way is a new
  record, which the flush's delete never touches. Body
  ``{"v": 1, "uri", "kind", "at"}``.
- ``_edgefill/invalidations/windows/<window start>``: the window (of
  ``EDGEFILL_INVALIDATION_WINDOW`` seconds, 60 by default) in which paths were recorded,
  created (``IfNoneMatch='*'``) by the first record of the window. Its creator sends the
  reminder, ``{"v": 1, "type": "invalidations", "window"}``, to the worker's own queue
  with an SQS delay of one window: one reminder per window, whatever the number of
  invocations in it. The reminder's
  invocation sends every path pending, in batches (``shared/invalidations.py``), and
  deletes the window object.

The bucket policy keeps CloudFront out of ``_edgefill/``. A lifecycle rule expires
window objects a reminder did not delete (it died); records stay until invalidated.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from shared.config import DEFAULT_INVALIDATION_WINDOW
from shared.keys import RESERVED_PREFIX
from shared.messages import format_time, parse_time
from shared.object_store import ObjectAttributes, ObjectStore

JOURNAL_PREFIX: Final = RESERVED_PREFIX + "invalidations/"
PATHS_PREFIX: Final = JOURNAL_PREFIX + "paths/"
WINDOWS_PREFIX: Final = JOURNAL_PREFIX + "windows/"
# How long paths wait for others before one invalidation takes them all (the default of
# EDGEFILL_INVALIDATION_WINDOW): about what CloudFront takes to complete one.
WINDOW_SECONDS: Final = DEFAULT_INVALIDATION_WINDOW
KINDS: Final = ("replaced", "deleted")
MAX_KEY_BYTES: Final = 1024  # S3's limit on a key
_JSON: Final = ObjectAttributes(content_type="application/json")


@dataclass(frozen=True, slots=True)
class Recorded:
    """One path recorded in the journal: its key, the viewer URI, and why."""

    key: str
    uri: str
    kind: str  # "replaced" (warmed after the invalidation) or "deleted"
    at: float  # when it was recorded (seconds since the epoch)


class InvalidationJournal:
    """The journal in ``store``; ``remind(window)`` sends a window's reminder, delayed by
    ``window_seconds`` (None: no queue to send it to, so paths are sent at the end of each
    invocation instead)."""

    def __init__(
        self,
        store: ObjectStore,
        clock: Callable[[], float] = time.time,
        remind: Callable[[str], bool] | None = None,
        window_seconds: int = WINDOW_SECONDS,
    ) -> None:
        self.store = store
        self.clock = clock
        self.remind = remind
        self.window_seconds = window_seconds

    def record(self, uri: str, kind: str) -> str:
        """Record that ``uri`` must be invalidated (``kind``: why); its record's key.
        Raises ``StoreError``."""
        now = self.clock()
        at = format_time_of(now)
        stem = f"{PATHS_PREFIX}{at}/{uuid.uuid4().hex[:12]}.{kind}"
        key = stem + uri if len((stem + uri).encode("utf-8")) <= MAX_KEY_BYTES else stem
        body = json.dumps({"v": 1, "uri": uri, "kind": kind, "at": at}).encode("utf-8")
        self.store.put_small(key, body)
        return key

    def pending(self, limit: int) -> list[Recorded]:
        """Up to ``limit`` records, oldest first (LIST; a GET for each long URI).
        Raises ``StoreError``; an unreadable record is skipped (a forged key)."""
        found: list[Recorded] = []
        start_after: str | None = None
        while len(found) < limit:
            page, more = self.store.list_page(PATHS_PREFIX, start_after)
            for listed in page:
                record = self._read(listed.key)
                if record is not None:
                    found.append(record)
            if not more or not page:
                break
            start_after = page[-1].key
        return found[:limit]

    def oldest_age(self) -> float | None:
        """Seconds since the oldest record still pending was made; None when none is."""
        page, _ = self.store.list_page(PATHS_PREFIX, max_keys=1)
        if not page:
            return None
        at = _time_of(page[0].key)
        return None if at is None else self.clock() - at

    def forget(self, records: Sequence[Recorded]) -> list[str]:
        """Delete ``records`` (DeleteObjects); the keys S3 failed to delete."""
        return self.store.delete_keys([record.key for record in records])

    def schedule(self) -> bool:
        """Make sure a reminder comes for the current window: the first record of a window
        creates its object and sends the reminder. False when none will come (no queue,
        or SQS refused: the caller sends its paths itself). Raises ``StoreError``."""
        if self.remind is None:
            return False
        width = self.window_seconds
        window = format_time_of(math.floor(self.clock() / width) * width)
        key = WINDOWS_PREFIX + window
        if not self.store.put_if_absent(key, b'{"v":1}', _JSON):
            return True  # created by another record of this window, which sent the reminder
        if self.remind(window):
            return True
        self.store.delete_keys([key])  # a later record of the window tries again
        return False

    def close(self, window: str | None) -> None:
        """A reminder's invocation sent what was pending: its window object goes."""
        if window is not None and parse_time(window) is not None:
            self.store.delete_keys([WINDOWS_PREFIX + window])

    def _read(self, key: str) -> Recorded | None:
        rest = key[len(PATHS_PREFIX) :]
        at, _, name = rest.partition("/")
        nonce_kind, slash, uri = name.partition("/")
        kind = nonce_kind.rpartition(".")[2]
        when = _time_of(key)
        if kind not in KINDS or when is None:
            return None
        if slash:
            return Recorded(key, "/" + uri, kind, when)
        body = self.store.get_small(key)  # a URI too long for the key
        try:
            uri = json.loads(body or b"{}").get("uri")
        except (ValueError, AttributeError):
            return None
        if not isinstance(uri, str) or not uri.startswith("/"):
            return None
        return Recorded(key, uri, kind, when)


def format_time_of(seconds: float) -> str:
    """``seconds`` since the epoch as the journal's fixed-width RFC 3339 UTC time."""
    return format_time(datetime.fromtimestamp(seconds, UTC))


def _time_of(key: str) -> float | None:
    at = key[len(PATHS_PREFIX) :].partition("/")[0]
    moment = parse_time(at)
    return None if moment is None else moment.timestamp()
