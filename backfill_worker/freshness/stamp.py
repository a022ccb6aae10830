"""What freshness adds to every copy a fill makes: its ``fetched-at`` stamp before the
copy, and its due entry after it (``due_index.py``), from what S3 then holds.

No fill leaves a stored copy without a due entry:

- an entry that cannot be written after a copy fails the record (``Failed{reason=
  due_index}``, after the prewarm and the playlist's expansion went): SQS delivers it
  again, and the redelivery, finding the copy, writes the entry;
- a fill skipped as ``exists`` writes the copy's entry when it is missing. The entry of a
  copy is the same whoever computes it (``Schedule.after_fetch``), so this costs one
  HeadObject of the entry, and a write only when it was missing. A copy already
  revalidated has a later entry; re-indexing it adds one revalidation (a 304).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from backfill_worker.flight.outcome import TransientFailure
from backfill_worker.flight.telemetry import Telemetry
from backfill_worker.freshness.due_index import DueIndex, Schedule, entry_key
from backfill_worker.freshness.lifetime import FETCHED_AT
from shared.messages import format_time
from shared.object_store import ObjectStore, StoredCopy, StoreError


@dataclass
class FreshCopies:
    """The freshness of new copies; ``copies`` None: copies get no due entry."""

    copies: ObjectStore | None
    revalidate_after: int
    now: Callable[[], datetime]
    telemetry: Telemetry
    min_revalidate: int

    def stamp(self) -> dict[str, str]:
        """The metadata a new copy carries: when its bytes were fetched."""
        return {FETCHED_AT: format_time(self.now())}

    def index(self, key: str) -> None:
        """Write the due entry of a copy just made (from what S3 now holds); raises
        ``TransientFailure("due_index")`` when it cannot."""
        if self.copies is None:
            return
        try:
            copy = self.copies.head(key)
            if copy is not None:
                self._schedule(self.copies).after_fetch(key, copy, self.now())
        except StoreError as error:
            self._not_written(key, error)

    def reindex(self, key: str, copy: StoredCopy) -> None:
        """A fill found ``copy`` already there: write its due entry if it is missing."""
        if self.copies is None:
            return
        schedule = self._schedule(self.copies)
        entry = schedule.fetched_entry(key, copy, self.now())
        try:
            if not schedule.index.exists(entry_key(entry.due, key)):
                schedule.index.write(entry)
                self.telemetry.logger.info(
                    "due entry written for a copy that had none", extra={"key": key}
                )
        except StoreError as error:
            self._not_written(key, error)

    def _schedule(self, copies: ObjectStore) -> Schedule:
        return Schedule(DueIndex(copies), self.revalidate_after, self.min_revalidate)

    def _not_written(self, key: str, error: StoreError) -> None:
        self.telemetry.logger.error(
            "due index entry not written", extra={"key": key, "detail": str(error)}
        )
        raise TransientFailure("due_index", f"due entry of {key!r} not written: {error}")
