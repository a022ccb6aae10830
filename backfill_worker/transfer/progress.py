"""When a copy's progress is written to its lease: after parts complete, coalesced.

A process killed mid-copy (out of memory, the Lambda timeout, a crash) loses only what
the lease does not record, so the checkpoint is rewritten as parts complete: by one
writer thread, which writes the newest state when something changed, at most once per
``MIN_INTERVAL`` seconds. Parts completing meanwhile are folded into the next write, so
a part upload never waits for one, and a copy of 10,000 parts (whose checkpoint is about
600 KB) does not rewrite it 10,000 times. A kill then loses at most the parts in flight
and those of the last second.
A write that finds the lease taken (``IfMatch`` fails) marks the progress ``lost``: the
copy stops without aborting the upload, which now belongs to another worker.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from backfill_worker.transfer.checkpoint import Checkpoint
from shared.object_store import StoreError

MIN_INTERVAL: Final = 1.0  # seconds between two checkpoint writes


@dataclass
class Progress:
    """What a copy gets from its record: the checkpoint it inherited (raw, untrusted),
    a way to save a new one, to keep one when the copy fails on the way, and to report
    what happened to the old one."""

    inherited: dict[str, Any] | None
    save: Callable[[Checkpoint], bool]  # False: the lease is no longer ours
    note: Callable[[str, str], None] = field(default=lambda event, detail: None)
    # The copy failed on the way: keep this checkpoint for the record's redelivery (the
    # lease is left to expire at once, checkpoint inside). False: it could not be kept.
    keep: Callable[[Checkpoint], bool] = field(default=lambda checkpoint: False)


class ProgressWriter:
    """Writes ``snapshot()`` through ``progress.save`` whenever ``changed()`` was called."""

    def __init__(self, progress: Progress, snapshot: Callable[[], Checkpoint | None]) -> None:
        self._progress = progress
        self._snapshot = snapshot
        self._dirty = False
        self._stopping = False
        self.lost = False
        self.failures = 0
        self._wake = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="checkpoint", daemon=True)
        self._thread.start()

    def changed(self) -> None:
        with self._wake:
            self._dirty = True
            self._wake.notify()

    def stop(self) -> None:
        """Stop after the write under way (a final state is saved by the caller)."""
        with self._wake:
            self._stopping = True
            self._wake.notify()
        self._thread.join()

    def _run(self) -> None:
        while True:
            with self._wake:
                self._wake.wait_for(lambda: self._dirty or self._stopping)
                if self._stopping:
                    return
                self._dirty = False
            written = time.monotonic()
            checkpoint = self._snapshot()
            if checkpoint is None:
                continue
            try:
                if not self._progress.save(checkpoint):
                    self.lost = True
                    return
            except StoreError:
                # A missed intermediate save costs at most the parts since the last one,
                # and only if this process then dies; the copy itself goes on.
                self.failures += 1
            with self._wake:
                rest = MIN_INTERVAL - (time.monotonic() - written)
                if rest > 0:
                    self._wake.wait_for(lambda: self._stopping, timeout=rest)
