"""One run of the scheduled sweep: a refresh message for every copy that is due.

The sweep reads only the due index (``due_index.py``): the entries due
now come first in key order, so a run costs one listing per 1 000 due entries, one GET
per due entry, one SendMessageBatch per 10 and one DeleteObjects per 1 000, however
many copies the bucket holds. It never looks at an object itself, so it never touches
one edgefill did not write (those have no entry) nor anything under ``_edgefill/``.

Order of work, so that nothing is lost: an entry is deleted only after its refresh
message was accepted by SQS. A run that crashes between the two sends the message again
next time (a refresh is idempotent and single-flight). An entry whose send failed stays
for the next run; an entry that cannot be read or names a key outside the prefix is
logged and removed.

Deadline: the run checks the invocation's remaining time between chunks and stops
cleanly with ``reserve_seconds`` left; the next run starts at the earliest entry left.

The handler is ``backfill_worker/sweep.py``; what its container builds once (the index,
the SQS client) is ``backfill_worker/runtime.py:sweep_runtime``.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from backfill_worker.freshness.due_index import DueIndex
from shared.keys import InvalidKey, ObjectKey
from shared.messages import BackfillMessage, MessageError, format_time, to_json
from shared.observability import Log
from shared.queues import send_messages

# Entries handled between two deadline checks: 100 GETs (8 at a time) and 10 batches.
CHUNK: Final = 100
# Entry reads in flight at once (each a few hundred bytes).
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

    def as_dict(self) -> dict[str, Any]:
        return {
            "due": self.due,
            "sent": self.sent,
            "sendFailed": self.send_failed,
            "badEntries": self.bad_entries,
            "finished": self.finished,
        }


def sweep(
    index: DueIndex,
    queue: RefreshQueue,
    now: datetime,
    time_left: Callable[[], float],
    log: Log,
    reserve_seconds: float = 30.0,
) -> SweepReport:
    """Send a refresh message for each entry due at ``now``; see the module docstring."""
    run = _SweepRun(index, queue, now, log)
    start_after: str | None = None
    with ThreadPoolExecutor(READERS, "sweep-read") as readers:
        while True:
            if time_left() < reserve_seconds:
                return run.stopped_at_deadline()
            page = index.page(now, start_after)
            for start in range(0, len(page.entries), CHUNK):
                if time_left() < reserve_seconds:
                    return run.stopped_at_deadline()
                chunk = page.entries[start : start + CHUNK]
                run.send_chunk(chunk, list(readers.map(index.read, chunk)))
            start_after = page.last
            if page.finished:
                run.report.finished = True
                return run.report


@dataclass
class _SweepRun:
    """One run's inputs and its report so far."""

    index: DueIndex
    queue: RefreshQueue
    now: datetime
    log: Log
    report: SweepReport = field(default_factory=SweepReport)

    def stopped_at_deadline(self) -> SweepReport:
        self.log.warning(
            "sweep stopped at its deadline; the next run continues", extra=self.report.as_dict()
        )
        return self.report

    def send_chunk(self, entries: list[str], keys: list[str | None]) -> None:
        """Send the refresh messages of ``entries`` (whose object keys are ``keys``), then
        remove the entries sent and the bad ones."""
        report, log = self.report, self.log
        report.due += len(entries)
        bodies: list[str] = []
        sendable: list[str] = []
        bad: list[str] = []
        for entry, key in zip(entries, keys, strict=True):
            body = self._refresh_body(key) if key is not None else None
            if body is None:
                bad.append(entry)
                continue
            bodies.append(body)
            sendable.append(entry)
        if bad:
            report.bad_entries += len(bad)
            log.error(
                "due entries unreadable or outside the prefix; removed",
                extra={"entries": bad[:10]},
            )
        queue = self.queue
        sent = send_messages(queue.sqs, queue.queue_url, bodies) if bodies else None
        failed = {index_ for index_, _, _ in sent.failed} if sent is not None else set()
        done = [entry for position, entry in enumerate(sendable) if position not in failed]
        report.sent += len(done)
        report.send_failed += len(failed)
        if failed and sent is not None:
            log.error(
                "refresh messages not sent; their entries stay for the next run",
                extra={"failed": [f"{code}: {reason}" for _, code, reason in sent.failed[:5]]},
            )
        leftover = self.index.remove(done + bad)
        if leftover:
            # Their messages went: the next run sends them again, which a refresh absorbs.
            log.warning("due entries not removed", extra={"entries": leftover[:10]})

    def _refresh_body(self, key: str) -> str | None:
        """The refresh message of an object key, or None when the key is not a copy's."""
        prefix = self.queue.key_prefix
        try:
            uri = ObjectKey(key).to_uri(prefix)
            if ObjectKey.from_uri(uri, prefix).key != key:  # refuses _edgefill/ and traversal
                return None
            return to_json(BackfillMessage(uri=uri, mode="refresh", at=format_time(self.now)))
        except (InvalidKey, MessageError):
            return None
