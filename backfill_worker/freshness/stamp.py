"""What freshness adds to every copy a fill makes: its ``fetched-at`` stamp before the
copy, and its due entry after it (``due_index.py``), from what S3 then holds.

A due entry that cannot be written is logged and counted (``Failed{reason=due_index}``)
but does not fail the record: the copy is in place, only its automatic revalidation is
missing, and a retry would find the object and skip it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from backfill_worker.flight.telemetry import Telemetry
from backfill_worker.freshness.due_index import DueIndex, record_copy
from backfill_worker.freshness.lifetime import FETCHED_AT
from shared.messages import format_time
from shared.object_store import ObjectStore, StoreError


@dataclass
class FreshCopies:
    """The freshness of new copies; ``copies`` None: copies get no due entry."""

    copies: ObjectStore | None
    revalidate_after: int
    now: Callable[[], datetime]
    telemetry: Telemetry

    def stamp(self) -> dict[str, str]:
        """The metadata a new copy carries: when its bytes were fetched."""
        return {FETCHED_AT: format_time(self.now())}

    def index(self, key: str) -> None:
        """Write the due entry of a copy just made (from what S3 now holds)."""
        if self.copies is None:
            return
        try:
            copy = self.copies.head(key)
            if copy is None:
                return
            record_copy(
                DueIndex(self.copies),
                key,
                copy,
                None,
                default_lifetime=self.revalidate_after,
                now=self.now(),
            )
        except StoreError as error:
            self.telemetry.logger.error(
                "due index entry not written", extra={"key": key, "detail": str(error)}
            )
            self.telemetry.count_by_reason("Failed", "due_index")
