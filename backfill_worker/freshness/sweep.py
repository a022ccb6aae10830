"""One run of the scheduled sweep: a refresh message for every copy due by the next run.

The sweep reads only the due index (``due_index.py``): the entries due first come first
in key order, so a run costs one listing per 1 000 due entries, one GET and one PUT per
due entry, one SendMessageBatch per 10 and one DeleteObjects per 1 000, however many
copies the bucket holds. It never looks at an object itself, so it never touches one
edgefill did not write (those have no entry) nor anything under ``_edgefill/``.

**On time.** A run takes the entries due up to ``lookahead`` seconds from now
(``EDGEFILL_SWEEP_LOOKAHEAD``, at most SQS's 900 s), and sends each refresh with an SQS
``DelaySeconds`` that brings it to its copy's due time: with a look-ahead equal to the
schedule's period, every copy's revalidation starts within seconds of its due time
instead of up to one period after it. An overdue entry goes at once.

**Nothing lost** (the entry is deleted only once the refresh stands elsewhere): before a
refresh is sent, the entry that stands for it is written (``in_flight``: the same copy,
since when it is due, due again ``RESEND_AFTER`` later); the message names it
(``retryAt``), and the refresh removes it once it has written what comes next. Then the
refresh is sent, then the original entry is removed. A crash in between sends it again
(a refresh is idempotent and single-flight; a duplicate finds its entry gone and does
nothing); a refresh lost to the DLQ is sent again when its entry comes due; a failed
send removes the entry that would have stood for it and keeps the original for the next
run. An entry that cannot be read or names a key outside the prefix is logged and removed.

Deadline: the run checks the invocation's remaining time between chunks and stops
cleanly with ``reserve_seconds`` left; the next run starts at the earliest entry left.

The handler is ``backfill_worker/sweep.py``; what its container builds once (the index,
the SQS client, the look-ahead) is ``backfill_worker/runtime.py:sweep_runtime``.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from backfill_worker.freshness.due_index import (
    DueEntry,
    DueIndex,
    due_of,
    entry_key,
    in_flight,
)
from shared.keys import InvalidKey, ObjectKey
from shared.messages import BackfillMessage, MessageError, format_time, to_json
from shared.object_store import StoreError
from shared.observability import Log
from shared.queues import MAX_DELAY_SECONDS, send_messages

# Entries handled between two deadline checks: 100 GETs and PUTs (8 at a time), 10 batches.
CHUNK: Final = 100
# Entry reads and writes in flight at once (each a few hundred bytes).
READERS: Final = 8


@dataclass(frozen=True, slots=True)
class RefreshQueue:
    """Where the sweep sends refresh messages (``EDGEFILL_BACKFILL_QUEUE_URL``), and the
    key prefix that turns an object key back into its viewer URI."""

    sqs: Any
    queue_url: str
    key_prefix: str


@dataclass
class SweepReport:
    """What one run did."""

    due: int = 0
    sent: int = 0
    send_failed: int = 0
    bad_entries: int = 0
    finished: bool = False  # False: stopped at the deadline, the next run continues
    delayed: int = 0  # refreshes sent with a delay, to start at their copy's due time

    def as_dict(self) -> dict[str, Any]:
        return {
            "due": self.due,
            "sent": self.sent,
            "sendFailed": self.send_failed,
            "badEntries": self.bad_entries,
            "finished": self.finished,
            "delayed": self.delayed,
        }


def sweep(
    index: DueIndex,
    queue: RefreshQueue,
    now: datetime,
    time_left: Callable[[], float],
    log: Log,
    reserve_seconds: float = 30.0,
    lookahead: int = 0,
) -> SweepReport:
    """Send a refresh message for each entry due by ``now + lookahead`` seconds, each
    delayed to its due time; see the module docstring."""
    if not 0 <= lookahead <= MAX_DELAY_SECONDS:
        raise ValueError(f"lookahead must be 0 to {MAX_DELAY_SECONDS} s, got {lookahead}")
    until = now + timedelta(seconds=lookahead)
    start_after: str | None = None
    with ThreadPoolExecutor(READERS, "sweep-read") as pool:
        run = _SweepRun(index, queue, now, log, pool)
        while True:
            if time_left() < reserve_seconds:
                return run.stopped_at_deadline()
            page = index.page(until, start_after)
            for start in range(0, len(page.entries), CHUNK):
                if time_left() < reserve_seconds:
                    return run.stopped_at_deadline()
                chunk = page.entries[start : start + CHUNK]
                run.send_chunk(chunk, list(pool.map(index.read_entry, chunk)))
            start_after = page.last
            if page.finished:
                run.report.finished = True
                return run.report


@dataclass
class _Refresh:
    """One due entry about to be sent: its message, its delay, the entry standing for it."""

    entry: str
    body: str
    delay: int
    standing_key: str
    standing: DueEntry


@dataclass
class _SweepRun:
    """One run's inputs and its report so far."""

    index: DueIndex
    queue: RefreshQueue
    now: datetime
    log: Log
    pool: ThreadPoolExecutor
    report: SweepReport = field(default_factory=SweepReport)

    def stopped_at_deadline(self) -> SweepReport:
        self.log.warning(
            "sweep stopped at its deadline; the next run continues", extra=self.report.as_dict()
        )
        return self.report

    def send_chunk(self, entries: list[str], bodies: list[DueEntry | None]) -> None:
        """Send the refreshes of ``entries`` (read as ``bodies``) in the order of the
        module docstring: standing entries, messages, then the removals."""
        report, log = self.report, self.log
        report.due += len(entries)
        refreshes: list[_Refresh] = []
        bad: list[str] = []
        for entry, body in zip(entries, bodies, strict=True):
            refresh = self._refresh_of(entry, body) if body is not None else None
            if refresh is None:
                bad.append(entry)
            else:
                refreshes.append(refresh)
        if bad:
            report.bad_entries += len(bad)
            log.error(
                "due entries unreadable or outside the prefix; removed",
                extra={"entries": bad[:10]},
            )
        standing = self._write_standing(refreshes)
        failed = self._send(standing)
        done = [r.entry for position, r in enumerate(standing) if position not in failed]
        unsent = [r.standing_key for position, r in enumerate(standing) if position in failed]
        report.sent += len(done)
        report.delayed += sum(1 for p, r in enumerate(standing) if p not in failed and r.delay)
        self._remove(done + bad + unsent)

    def _write_standing(self, refreshes: list[_Refresh]) -> list[_Refresh]:
        """Write each refresh's standing entry; those S3 refused stay for the next run."""

        def write(refresh: _Refresh) -> bool:
            try:
                self.index.write_as(refresh.standing_key, refresh.standing)
            except StoreError:
                return False
            return True

        written = list(self.pool.map(write, refreshes))
        kept = [refresh for refresh, ok in zip(refreshes, written, strict=True) if ok]
        if len(kept) < len(refreshes):
            self.log.error(
                "due entries could not stand for their refreshes; they stay for the next run",
                extra={"entries": [r.entry for r in refreshes if r not in kept][:10]},
            )
        return kept

    def _send(self, refreshes: list[_Refresh]) -> set[int]:
        """Send the messages; the positions of those not sent."""
        if not refreshes:
            return set()
        queue = self.queue
        bodies = [r.body for r in refreshes]
        sent = send_messages(queue.sqs, queue.queue_url, bodies, [r.delay for r in refreshes])
        failed = {position for position, _, _ in sent.failed}
        self.report.send_failed += len(failed)
        if failed:
            self.log.error(
                "refresh messages not sent; their entries stay for the next run",
                extra={"failed": [f"{code}: {reason}" for _, code, reason in sent.failed[:5]]},
            )
        return failed

    def _remove(self, entries: list[str]) -> None:
        try:
            leftover = self.index.remove(entries)
        except StoreError as error:
            leftover = entries[:10]
            self.log.warning("due entries not removed", extra={"detail": str(error)})
        if leftover:
            # Their refreshes stand elsewhere: the next run sends them again, which a
            # refresh absorbs (it finds its entry gone, or the copy just revalidated).
            self.log.warning("due entries not removed", extra={"entries": leftover[:10]})

    def _refresh_of(self, entry: str, body: DueEntry) -> _Refresh | None:
        """The refresh of an entry, or None when its key is not a copy's."""
        prefix = self.queue.key_prefix
        due = due_of(entry)
        if due is None:
            return None
        resend, standing = in_flight(body, due, self.now)
        standing_key, retry_at = entry_key(resend, body.key), format_time(resend)
        try:
            uri = ObjectKey(body.key).to_uri(prefix)
            if ObjectKey.from_uri(uri, prefix).key != body.key:  # refuses _edgefill/, traversal
                return None
            message = BackfillMessage(
                uri=uri, mode="refresh", at=format_time(self.now), retry_at=retry_at
            )
        except (InvalidKey, MessageError):
            return None
        delay = max(0, min(MAX_DELAY_SECONDS, int((due - self.now).total_seconds())))
        return _Refresh(entry, to_json(message), delay, standing_key, standing)
