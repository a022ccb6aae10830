"""Invalidations of replaced and deleted copies: recorded before the record is reported
done, batched across invocations, retried until CloudFront has them.

1. **Recorded**: ``replaced(uri)`` / ``deleted(uri)`` (the refresh's calls) keep the path
   in memory and, with a journal (``invalidation_journal.py``: the worker invalidates a
   distribution), in the bucket under ``_edgefill/invalidations/``, before the refresh
   returns: a worker that dies before it invalidates loses nothing, although a retry of
   the record would find the copy unchanged. The first path of each batching window
   schedules that window's reminder on the worker's own queue.
2. **Batched**: at the end of an invocation (``settle``) paths recorded and scheduled wait
   for their window's reminder, so invocations of one record each (the template's batch
   size of 1) do not each create an invalidation. Without a journal or a queue, a path
   that could not be recorded or scheduled, or a journal whose oldest path is
   ``STALE_WINDOWS`` windows old (its reminder lost), everything pending is sent at once.
3. **Sent** (``flush``; ``flush_due`` for a reminder): every path pending, oldest first,
   in batches within CloudFront's limits (3 000 paths, 15 wildcards:
   ``shared/invalidations.py``), each batch's ``CallerReference`` derived from its
   records, so a batch sent again after a crash is the invalidation CloudFront already
   has. A throttled batch or ``TooManyInvalidationsInProgress`` is retried with backoff
   (``shared/backoff.py``); still refused, it and the batches after it stay pending for
   the next reminder (``flush_due`` schedules one). Any other refusal (access denied, no
   such distribution) would be the same next time: logged with the paths and the
   ``edgefill invalidate`` to run, counted, and forgotten. Replaced paths are then warmed
   by one prewarm message per invalidation, ``"afterInvalidation": "<id>"``.

Paths are the viewer URIs as CloudFront passes them to the origin (percent-encoded: the
edge's cache key), with ``*`` never encoded, as AWS asks: CloudFront reads a ``*`` only
as a final wildcard, so a URI holding one is invalidated up to and including its first
``*`` (a wildcard covering it, and other paths starting alike). Under
``EDGEFILL_QUERY=forward`` the cache key holds the query, so each path is invalidated as
``path*``: every query of it (and paths it begins), counted against the 15 wildcards in
progress. Without ``EDGEFILL_DISTRIBUTION_ID`` nothing is recorded or invalidated and
the log says so: edges keep the old copy until their TTL.
"""

from __future__ import annotations

import hashlib
import random
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from botocore.exceptions import BotoCoreError, ClientError

from backfill_worker.freshness.invalidation_journal import InvalidationJournal, Recorded
from shared.backoff import backoff_with_jitter
from shared.invalidations import (
    MAX_PATHS,
    batches,
    create_invalidation,
    error_text,
    is_busy,
)
from shared.messages import MAX_PATHS as MAX_PREWARM_PATHS
from shared.messages import PrewarmMessage, to_json
from shared.object_store import StoreError
from shared.observability import Log
from shared.queues import send_and_log

# CloudFront takes at most 3 000 paths in progress per distribution (15 wildcards).
MAX_PATHS_PER_INVALIDATION: Final = MAX_PATHS
# A busy CreateInvalidation is tried this many times, waiting 0.5–1, 1–2, then 2–4 s:
# at most 7 s of an invocation's end, after which the next reminder tries again.
CREATE_ATTEMPTS: Final = 4
RETRY_BASE_SECONDS: Final = 1.0
RETRY_CAP_SECONDS: Final = 4.0
# A pending path this many windows old was missed by its window's reminder (lost, or in
# the DLQ): the next invocation recording a path sends everything at once.
STALE_WINDOWS: Final = 5


def invalidation_path(uri: str, every_query: bool = False) -> str:
    """The CloudFront invalidation path of a viewer URI (already percent-encoded): the URI,
    ``*`` never encoded (up to its first ``*``, read as a wildcard), and with
    ``every_query`` a final ``*`` for every query string of it."""
    star = uri.find("*")
    if star >= 0:
        return uri[: star + 1]
    return uri + "*" if every_query else uri


@dataclass
class FlushReport:
    """What one flush did: paths in the invalidations created, their IDs, the paths
    warmed after, a permanent refusal (``failed``), the paths left for a later flush
    (``pending``), and those left to their window's reminder by ``settle``
    (``deferred``)."""

    paths: int = 0
    invalidation_ids: list[str] = field(default_factory=list)
    warmed_paths: int = 0
    failed: str | None = None
    pending: int = 0
    deferred: int = 0


@dataclass(frozen=True, slots=True)
class FlushContext:
    """Where a flush sends: CloudFront's ``distribution_id`` (none: nothing is
    invalidated), the prewarm queue for the warm after, and the log."""

    cloudfront: Any | None
    distribution_id: str | None
    sqs: Any | None
    prewarm_queue_url: str | None
    log: Log

    @property
    def invalidates(self) -> bool:
        return self.cloudfront is not None and self.distribution_id is not None


@dataclass
class _Owed:
    """One invalidation path, the journal records it settles and the URIs warmed after."""

    records: list[Recorded] = field(default_factory=list)
    warm: list[str] = field(default_factory=list)
    unrecorded: list[tuple[str, str]] = field(default_factory=list)  # (uri, kind)


class PendingInvalidations:
    """Paths replaced or deleted, until CloudFront has them (records may run in threads:
    a lock guards). ``journal`` keeps them in the bucket (None: in memory only);
    ``every_query``: the cache key holds the query (``EDGEFILL_QUERY=forward``)."""

    def __init__(
        self,
        journal: InvalidationJournal | None = None,
        *,
        every_query: bool = False,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.journal = journal
        self.every_query = every_query
        self.sleep = sleep
        self.jitter = jitter
        self._lock = threading.Lock()
        self._replaced: dict[str, None] = {}
        self._deleted: dict[str, None] = {}
        self._scheduled: set[str] = set()  # recorded in the journal, a reminder coming
        self._recorded: set[str] = set()  # recorded in the journal
        self._unrecorded: list[str] = []  # why a record or a reminder failed, for the log

    def replaced(self, uri: str) -> None:
        """``uri``'s copy was replaced: invalidate it, then warm it."""
        with self._lock:
            self._replaced[uri] = None
        self._record(uri, "replaced")

    def deleted(self, uri: str) -> None:
        """``uri``'s copy was deleted: invalidate it."""
        with self._lock:
            self._deleted[uri] = None
        self._record(uri, "deleted")

    def take(self) -> tuple[list[str], list[str]]:
        """(replaced, deleted) URIs collected so far; the collection starts empty again."""
        with self._lock:
            replaced, deleted = list(self._replaced), list(self._deleted)
            self._replaced, self._deleted = {}, {}
            self._scheduled, self._recorded = set(), set()
        return replaced, deleted

    def flush(
        self,
        cloudfront: Any | None,
        distribution_id: str | None,
        sqs: Any | None,
        prewarm_queue_url: str | None,
        log: Log,
    ) -> FlushReport:
        """Invalidate every path pending now (this process's and the journal's), then warm
        the replaced ones after it (``send``)."""
        return self.send(FlushContext(cloudfront, distribution_id, sqs, prewarm_queue_url, log))

    def settle(self, to: FlushContext) -> FlushReport:
        """The end of an invocation: paths recorded and scheduled wait for their window's
        reminder; otherwise everything pending is sent now (``send``)."""
        with self._lock:
            own = list(self._replaced) + list(self._deleted)
            waiting = bool(own) and all(uri in self._scheduled for uri in own)
        if not own:
            return FlushReport()
        if waiting and to.invalidates and not self._stale(to.log):
            self.take()
            within = self.journal.window_seconds if self.journal is not None else 0
            to.log.info(
                "invalidation batched",
                extra={"paths": own[:20], "count": len(own), "withinSeconds": 2 * within},
            )
            return FlushReport(deferred=len(own))
        return self.send(to)

    def flush_due(self, window: str | None, to: FlushContext) -> FlushReport:
        """A window's reminder: send everything pending, close the window, and schedule
        another reminder for what is still pending (refused as busy, or recorded since)."""
        report = self.send(to)
        journal = self.journal
        if journal is None:
            return report
        try:
            journal.close(window)
            if journal.oldest_age() is not None and not journal.schedule():
                to.log.error(
                    "invalidations pending and no reminder sent: the next path recorded "
                    "sends them (or run `edgefill invalidate`)",
                    extra={"pending": report.pending},
                )
        except StoreError as error:
            to.log.warning("invalidation window not closed", extra={"detail": str(error)})
        return report

    def send(self, to: FlushContext) -> FlushReport:
        """Invalidate every path pending now (this process's and the journal's), in
        batches, then warm the replaced ones after each invalidation."""
        replaced, deleted = self.take()
        log = to.log
        if to.cloudfront is None or to.distribution_id is None:
            paths = list(dict.fromkeys(invalidation_path(uri) for uri in replaced + deleted))
            if paths:
                log.warning(
                    "EDGEFILL_DISTRIBUTION_ID is not set: nothing invalidated, edges keep the "
                    "old copy until their TTL",
                    extra={"paths": paths[:20], "count": len(paths)},
                )
            return FlushReport()
        cloudfront, distribution_id = to.cloudfront, to.distribution_id
        owed = self._owed(replaced, deleted, log)
        report = FlushReport()
        order = list(owed)
        for start, batch in _batch_starts(batches(order)):
            try:
                invalidation_id = self._create(cloudfront, distribution_id, batch, owed)
            except (ClientError, BotoCoreError) as error:
                if is_busy(error):
                    self._keep_for_later(order[start:], owed, error, log)
                    report.pending = len(order) - start
                    break
                report.failed = error_text(error)
                self._drop(batch, owed, report.failed, log)
                continue
            report.invalidation_ids.append(invalidation_id)
            report.paths += len(batch)
            self._settled(batch, owed, log)
            warm = [uri for path in batch for uri in owed[path].warm]
            report.warmed_paths += _warm_after(
                to.sqs, to.prewarm_queue_url, warm, invalidation_id, log
            )
        if report.invalidation_ids:
            log.info(
                "invalidation created",
                extra={"ids": report.invalidation_ids, "paths": order[:20], "count": report.paths},
            )
        return report

    # -- recording

    def _record(self, uri: str, kind: str) -> None:
        journal = self.journal
        if journal is None:
            return
        try:
            journal.record(uri, kind)
        except StoreError as error:
            with self._lock:
                self._unrecorded.append(f"{uri[:200]}: {error}"[:300])
            return
        try:
            scheduled = journal.schedule()
        except StoreError:
            scheduled = False  # sent at the end of the invocation instead
        with self._lock:
            self._recorded.add(uri)
            if scheduled:
                self._scheduled.add(uri)

    def _stale(self, log: Log) -> bool:
        """True when the journal's oldest path waited ``STALE_WINDOWS`` windows (or the
        journal cannot say): its reminder did not come."""
        assert self.journal is not None
        try:
            age = self.journal.oldest_age()
        except StoreError as error:
            log.warning("pending invalidations not listed", extra={"detail": str(error)})
            return True
        return age is not None and age > STALE_WINDOWS * self.journal.window_seconds

    # -- sending

    def _owed(self, replaced: list[str], deleted: list[str], log: Log) -> dict[str, _Owed]:
        """Every path pending, oldest first: the journal's records, then what this process
        holds that the journal does not (a record that failed, or no journal)."""
        owed: dict[str, _Owed] = {}
        records: list[Recorded] = []
        if self.journal is not None:
            try:
                records = self.journal.pending(MAX_PATHS)
            except StoreError as error:
                log.warning("pending invalidations not read", extra={"detail": str(error)})
        with self._lock:
            failures, self._unrecorded = self._unrecorded, []
        if failures:
            log.warning("invalidation not recorded", extra={"failures": failures[:10]})
        journaled = {record.uri for record in records}
        for record in records:
            entry = owed.setdefault(invalidation_path(record.uri, self.every_query), _Owed())
            entry.records.append(record)
            if record.kind == "replaced" and record.uri not in entry.warm:
                entry.warm.append(record.uri)
        for uri, kind in [(u, "replaced") for u in replaced] + [(u, "deleted") for u in deleted]:
            entry = owed.setdefault(invalidation_path(uri, self.every_query), _Owed())
            if uri not in journaled:
                entry.unrecorded.append((uri, kind))
            if kind == "replaced" and uri not in entry.warm:
                entry.warm.append(uri)
        return owed

    def _create(
        self, cloudfront: Any, distribution_id: str, batch: list[str], owed: dict[str, _Owed]
    ) -> str:
        """One invalidation of ``batch``, retried with backoff while CloudFront is busy."""
        reference = _caller_reference([r.key for path in batch for r in owed[path].records])
        for attempt in range(CREATE_ATTEMPTS):
            try:
                invalidation = create_invalidation(cloudfront, distribution_id, batch, reference)
                return str(invalidation["Id"])
            except (ClientError, BotoCoreError) as error:
                if not is_busy(error) or attempt + 1 == CREATE_ATTEMPTS:
                    raise
                self.sleep(
                    backoff_with_jitter(
                        RETRY_BASE_SECONDS, attempt, RETRY_CAP_SECONDS, self.jitter()
                    )
                )
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _settled(self, batch: list[str], owed: dict[str, _Owed], log: Log) -> None:
        """CloudFront has ``batch``: its records go (one left is sent again, idempotently)."""
        records = [record for path in batch for record in owed[path].records]
        if self.journal is None or not records:
            return
        try:
            left = self.journal.forget(records)
        except StoreError as error:
            left = [str(error)]
        if left:
            log.warning("invalidated paths not forgotten", extra={"keys": left[:10]})

    def _keep_for_later(
        self, paths: Sequence[str], owed: dict[str, _Owed], error: Exception, log: Log
    ) -> None:
        """CloudFront is busy: the journal keeps ``paths`` for the next reminder; what it
        did not hold is recorded now (or, failing that, kept in memory)."""
        for path in paths:
            for uri, kind in owed[path].unrecorded:
                try:
                    if self.journal is None:
                        raise StoreError("no journal")
                    self.journal.record(uri, kind)
                except StoreError:
                    with self._lock:  # this container's next flush sends it
                        (self._replaced if kind == "replaced" else self._deleted)[uri] = None
        log.warning(
            "invalidation deferred: CloudFront is busy; the paths stay pending",
            extra={"paths": list(paths[:20]), "count": len(paths), "error": error_text(error)},
        )

    def _drop(self, batch: list[str], owed: dict[str, _Owed], failure: str, log: Log) -> None:
        # The copies are already replaced or deleted, and CloudFront would refuse this
        # batch again: the operator is told exactly what to run.
        log.error(
            "CreateInvalidation failed: edges keep the old copy until their TTL; run "
            "`edgefill invalidate` for these paths",
            extra={"paths": batch[:50], "count": len(batch), "error": failure},
        )
        self._settled(batch, owed, log)


def _batch_starts(groups: list[list[str]]) -> list[tuple[int, list[str]]]:
    """Each batch with the index of its first path among all of them."""
    starts, at = [], 0
    for group in groups:
        starts.append((at, group))
        at += len(group)
    return starts


def _caller_reference(keys: Sequence[str]) -> str:
    """A batch's CallerReference: derived from its journal records, so the same records
    sent again (after a crash between CloudFront's answer and their deletion) are the
    invalidation CloudFront already has; unique for paths without records."""
    if not keys:
        return f"edgefill-{uuid.uuid4()}"
    digest = hashlib.sha256("\n".join(sorted(keys)).encode("utf-8")).hexdigest()
    return f"edgefill-{digest[:48]}"


def _warm_after(
    sqs: Any | None, queue_url: str | None, uris: list[str], invalidation_id: str, log: Log
) -> int:
    if sqs is None or queue_url is None or not uris:
        return 0
    bodies = [
        to_json(
            PrewarmMessage(
                paths=tuple(uris[start : start + MAX_PREWARM_PATHS]),
                source="refresh",
                after_invalidation=invalidation_id,
            )
        )
        for start in range(0, len(uris), MAX_PREWARM_PATHS)
    ]
    if send_and_log(sqs, queue_url, bodies, log, "prewarm after invalidation not sent"):
        return 0
    return len(uris)
