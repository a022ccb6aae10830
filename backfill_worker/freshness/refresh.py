"""One ``mode: "refresh"`` record, end to end: which path it takes, under which lease,
what it leaves in the due index, and how its replacing copy spans invocations
(docs/BACKFILL.md "Freshness").

1. **Its due entry**: a refresh the sweep sent carries ``retryAt``, the time of the
   index entry that stands for it (``due_index.py``). When the copy exists and that entry
   is gone, another delivery of this refresh already settled it: ``settled``, no origin
   request. When the entry names an older version of the copy (a replace or an update
   wrote a newer one, with its own entry), it is removed: ``superseded``.
2. **The copy is missing**: a fill. ``run`` returns None and the record
   (``backfill_worker/record.py``) fills the key, resuming a fill's checkpoint like any
   fill; the refresh's entry is removed first (the fill indexes what it makes).
3. **The copy is not edgefill's**: ``foreign``, skipped before any lease; a continuation
   takes its lease first, so the upload it inherited is aborted rather than orphaned.
4. **The lease**: the leased copy's (``flight/leased_copy.py``), as for a fill, taken with
   the message's ``handover`` token as heir. A continuation takes the lease handed to
   it, checkpoint inside; anyone else (a fresh refresh, a duplicate or a forged
   continuation) finds it live: ``leased`` (its entry stays: the holder settles).
5. **Under the lease** the copy is read again and revalidated (``revalidation.py``) with
   the lease's progress. When the origin fails (5xx, 408, 429, timeout, reset) a refresh
   from the sweep keeps the copy **in revalidation**: ``kept``, with a retry entry after
   a backoff; unless the copy may no longer be served stale (``must-revalidate``,
   ``proxy-revalidate``, ``s-maxage`` past its due time plus ``STALE_GRACE``,
   ``stale-if-error=N`` past N seconds): then it is ``withdrawn``. A refresh sent by
   hand (no ``retryAt``) is retried by SQS instead, its copy's entry untouched.
6. **Handover**: a replacing copy that reaches the handover point hands over exactly as
   a fill does (``LeasedCopy.hand_over``); the continuation is the same message, so it
   keeps ``mode: "refresh"`` and ``retryAt``. The lease is kept for it; otherwise it is
   released.
7. **Settling**, in this order, so that a later S3 error loses nothing: the
   invalidation (``replaced`` and ``updated`` are warmed after it; ``deleted`` and
   ``withdrawn`` are not, and their origin status is remembered as a missing marker);
   then the next due entry (the copy's next revalidation, or the retry); then the
   refresh's own entry is removed. A next entry that cannot be written fails the record
   (``due_index``): SQS delivers it again, the redelivery finds a 304 and writes it,
   and the invalidation already went with this batch.
8. **Outcome**: ``unchanged``, ``updated``, ``replaced``, ``deleted``, ``withdrawn``,
   ``kept`` or ``changed`` (``COPY_CHANGED``), logged (``refresh``) and counted
   (``Refreshed{reason}``; a removal also ``Withdrawn{reason}``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from aws_lambda_powertools.metrics import MetricUnit

from backfill_worker.flight.continuation import LeaseSession
from backfill_worker.flight.leased_copy import LeasedCopy
from backfill_worker.flight.outcome import Outcome, Skip, TransientFailure
from backfill_worker.freshness.due_index import DueEntry, DueIndex, Schedule, entry_key
from backfill_worker.freshness.invalidation import PendingInvalidations
from backfill_worker.freshness.revalidation import (
    RefreshResult,
    RefreshStatus,
    Revalidation,
    Withdrawal,
    is_edgefills,
    stale_deadline,
)
from backfill_worker.transfer.plan import CopyPlan
from backfill_worker.transfer.progress import Progress
from shared.messages import format_time, parse_time
from shared.object_store import ObjectStore, StoredCopy, StoreError

# Remembers an origin status for a key (``fill/missing.py``'s ``MissingPaths.remember``,
# handed in by the record: freshness never imports fill).
RememberMissing = Callable[[str, int], object]
# Transient failures that are the origin's (the others, S3's or ours, are retried by SQS).
_ORIGIN_FAILURES = frozenset({"origin"})


class RefreshRecord:
    """One refresh message, for ``leased.key``: its copies' store, the batch's pending
    invalidations, when copies are revalidated, the clock and the missing-path memory."""

    def __init__(
        self,
        leased: LeasedCopy,
        copies: ObjectStore | None,
        pending: PendingInvalidations,
        schedule: Callable[[ObjectStore], Schedule],
        now: Callable[[], datetime],
        remember_missing: RememberMissing | None = None,
    ) -> None:
        self.leased = leased
        self.copies = copies
        self.pending = pending
        self.schedule_of = schedule
        self.now = now
        self.remember_missing = remember_missing
        self.trigger_key: str | None = None
        self.trigger: DueEntry | None = None

    def run(self) -> Outcome | None:
        """Steps 1 to 8 of the module docstring; None when the key must be filled (the
        copy is missing). Raises ``Skip`` or ``TransientFailure``."""
        leased, key = self.leased, self.leased.key.key
        leased.invocation.check_deadline()
        if self.copies is None:
            raise TransientFailure("config", "refresh needs the revalidation store")
        copies = self.copies
        try:
            stored = copies.head(key)
            self._read_trigger(copies)
            if stored is None:
                self._drop_trigger(copies)
                return None  # missing: a fill
            self._check_trigger(copies, stored)
            if not is_edgefills(stored) and leased.message.handover is None:
                self._drop_trigger(copies)
                raise Skip("foreign", f"{key!r} was not written by edgefill; left alone")
            result = self._under_lease(copies)
        except StoreError as error:
            raise TransientFailure("s3", str(error)) from error
        if result is None or isinstance(result, Outcome):
            return result  # removed meanwhile (a fill), or handed over
        return self._settle(copies, result)

    # -- step 1: the refresh's own due entry

    def _read_trigger(self, copies: ObjectStore) -> None:
        retry_at = parse_time(self.leased.message.retry_at)
        if retry_at is None:
            return
        self.trigger_key = entry_key(retry_at, self.leased.key.key)
        self.trigger = DueIndex(copies).read_entry(self.trigger_key)

    def _check_trigger(self, copies: ObjectStore, stored: StoredCopy) -> None:
        if self.trigger_key is None or self.leased.message.handover is not None:
            return  # a continuation carries on what its first invocation began
        key = self.leased.key.key
        if self.trigger is None:
            raise Skip("settled", f"the refresh of {key!r} was already done (its entry is gone)")
        if self.trigger.copy_version not in (None, stored.version):
            self._drop_trigger(copies)
            raise Skip("superseded", f"{key!r} was rewritten since this refresh was due")

    def _drop_trigger(self, copies: ObjectStore) -> None:
        if self.trigger_key is not None:
            DueIndex(copies).remove([self.trigger_key])
            self.trigger_key = None

    # -- steps 4 to 6

    def _under_lease(self, copies: ObjectStore) -> RefreshResult | Outcome | None:
        """Steps 4 to 6; None when the copy was removed meanwhile (the caller fills it)."""
        leased, key = self.leased, self.leased.key.key
        with leased.held(f"another worker is copying or refreshing {key!r}") as session:
            stored = copies.head(key)  # it may have changed meanwhile
            if stored is None or not is_edgefills(stored):
                session.abandon_inherited()  # a replace of a copy no longer there
                self._drop_trigger(copies)
                if stored is None:
                    return None
                raise Skip("foreign", f"{key!r} was not written by edgefill; left alone")
            result = self._revalidate(copies, stored, session)
            if result.status == RefreshStatus.HANDED_OVER and result.copy is not None:
                checkpoint = result.copy.handover
                assert checkpoint is not None
                return leased.hand_over(session, checkpoint)
            return result

    def _revalidate(
        self, copies: ObjectStore, stored: StoredCopy, session: LeaseSession
    ) -> RefreshResult:
        leased, key = self.leased, self.leased.key.key
        revalidation = Revalidation(leased.store, copies, leased.origin, self.now)

        def revalidate(plan: CopyPlan, progress: Progress) -> RefreshResult:
            return revalidation.revalidate(key, leased.origin_url(), plan, stored, progress)

        try:
            return leased.run(session, revalidate)
        except TransientFailure as failure:
            if self.trigger is None or failure.reason not in _ORIGIN_FAILURES:
                raise  # a refresh by hand: SQS retries it
            return self._origin_failed(revalidation, stored, failure)

    def _origin_failed(
        self, revalidation: Revalidation, stored: StoredCopy, failure: TransientFailure
    ) -> RefreshResult:
        """The origin failed a refresh from the sweep: kept, or withdrawn when it may no
        longer be served stale."""
        assert self.trigger is not None
        now = self.now()
        stale_since = self.trigger.stale_since or now
        deadline, rule = stale_deadline(stored, stale_since)
        if deadline is not None and now >= deadline:
            detail = f"the origin keeps failing ({failure.detail}) past {format_time(deadline)}"
            withdrawal = Withdrawal("stale", detail, "Cache-Control", rule)
            return revalidation.withdraw(self.leased.key.key, stored, withdrawal)
        self.leased.telemetry.logger.warning(
            "refresh failed at the origin; the copy stays and is revalidated again",
            extra={
                "key": self.leased.key.key,
                "detail": failure.detail[:300],
                "failures": self.trigger.failures + 1,
                "rule": rule,
                "removeAfter": None if deadline is None else format_time(deadline),
            },
        )
        return RefreshResult(RefreshStatus.KEPT, remove_after=deadline)

    # -- steps 7 and 8

    def _settle(self, copies: ObjectStore, result: RefreshResult) -> Outcome:
        key, uri = self.leased.key.key, self.leased.message.uri
        status = result.status
        if status in (RefreshStatus.REPLACED, RefreshStatus.UPDATED):
            self.pending.replaced(uri)  # invalidated, then warmed
        elif status in (RefreshStatus.DELETED, RefreshStatus.WITHDRAWN):
            self.pending.deleted(uri)  # invalidated only
            self._remember(result.withdrawal)
        try:
            self._schedule_next(copies, result)
        except StoreError as error:
            self.leased.telemetry.logger.error(
                "due index entry not written after the refresh; it will be retried",
                extra={"key": key, "outcome": str(status), "detail": str(error)},
            )
            raise TransientFailure("due_index", f"after {status}: {error}") from error
        try:
            self._drop_trigger(copies)
        except StoreError as error:
            # The next entry is written; the old one only costs one more refresh later.
            self.leased.telemetry.logger.warning(
                "due entry of the refresh not removed", extra={"key": key, "detail": str(error)}
            )
        return self._report(result)

    def _schedule_next(self, copies: ObjectStore, result: RefreshResult) -> None:
        key, status = self.leased.key.key, result.status
        schedule = self.schedule_of(copies)
        if status == RefreshStatus.KEPT:
            assert self.trigger is not None
            schedule.retry(self.trigger, self.now(), result.remove_after)
        elif status in (RefreshStatus.REPLACED, RefreshStatus.UPDATED, RefreshStatus.UNCHANGED):
            fresh = copies.head(key)  # the version now in S3 (its fetched-at, its ETag)
            if fresh is None:
                return  # removed since: nothing to revalidate
            if status == RefreshStatus.REPLACED:
                schedule.after_fetch(key, fresh, self.now())
            else:
                assert result.fields is not None and result.checked_at is not None
                schedule.after_check(key, fresh, dict(result.fields), result.checked_at)

    def _remember(self, withdrawal: Withdrawal | None) -> None:
        if withdrawal is None or withdrawal.status is None or self.remember_missing is None:
            return
        key = self.leased.key.key
        try:
            self.remember_missing(key, withdrawal.status)
        except StoreError as error:
            # The removal stands; only the next failover may ask the origin again.
            self.leased.telemetry.logger.warning(
                "missing-path marker not written", extra={"key": key, "detail": str(error)}
            )

    def _report(self, result: RefreshResult) -> Outcome:
        telemetry, key = self.leased.telemetry, self.leased.key.key
        status = str(result.status)
        extra: dict[str, object] = {"key": key, "outcome": status}
        log = telemetry.logger.info
        if result.copy is not None and result.status == RefreshStatus.REPLACED:
            extra["invocations"] = result.copy.invocations
            extra["originBytes"] = result.copy.origin_bytes
        withdrawal = result.withdrawal
        if withdrawal is not None:
            log = telemetry.logger.warning
            extra.update(reason=withdrawal.reason, detail=withdrawal.detail[:300])
            extra.update(directive=withdrawal.directive, rule=withdrawal.rule)
            telemetry.count_by_reason("Withdrawn", withdrawal.reason)
        log("refresh", extra=extra)
        telemetry.count_by_reason("Refreshed", status)
        if result.status == RefreshStatus.REPLACED:
            telemetry.metrics.add_metric(
                name="BytesCopied", unit=MetricUnit.Bytes, value=result.size
            )
        kind = "copied" if result.status == RefreshStatus.REPLACED else "refreshed"
        return Outcome(kind, status, key, result.size)
