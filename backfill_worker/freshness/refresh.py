"""One ``mode: "refresh"`` record, end to end: which path it takes, under which lease,
and how its replacing copy spans invocations (docs/BACKFILL.md "Freshness").

1. **The copy is missing**: a fill. ``run`` returns None and the record
   (``backfill_worker/record.py``) fills the key, resuming a fill's checkpoint like any
   fill.
2. **The copy is not edgefill's**: ``foreign``, skipped before any lease; a continuation
   takes its lease first, so the upload it inherited is aborted rather than orphaned.
3. **The lease**: the leased copy's (``flight/leased_copy.py``), as for a fill, taken with
   the message's ``handover`` token as heir. A continuation takes the lease handed to
   it, checkpoint inside; anyone else (a fresh refresh, a duplicate or a forged
   continuation) finds it live: ``leased``.
4. **Under the lease** the copy is read again and revalidated (``revalidation.py``) with
   the lease's progress: a first invocation makes the conditional GET; a continuation
   whose checkpoint still replaces the copy as it is resumes the replacing copy from it
   (no new conditional GET, ``IfMatch`` on the ETag read when the refresh began), one
   whose copy changed meanwhile ends ``COPY_CHANGED`` (upload aborted, the other
   writer's version stays). A permanent origin answer or a refusal keeps the copy and
   spends its due entry: it is due again a lifetime from now.
5. **Handover**: a replacing copy that reaches the handover point hands over exactly as
   a fill does (``LeasedCopy.hand_over``); the continuation is the same message, so it
   keeps ``mode: "refresh"``. The lease is kept for it; otherwise it is released.
6. **Outcome**: ``replaced`` (invalidated and warmed after, once the last invocation
   completes the copy), ``unchanged``, ``deleted`` or ``changed`` (``COPY_CHANGED``),
   logged (``refresh``) and counted (``Refreshed{reason}``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from aws_lambda_powertools.metrics import MetricUnit

from backfill_worker.flight.continuation import LeaseSession
from backfill_worker.flight.leased_copy import LeasedCopy
from backfill_worker.flight.outcome import Outcome, Skip, TransientFailure
from backfill_worker.freshness.due_index import DueIndex
from backfill_worker.freshness.invalidation import PendingInvalidations
from backfill_worker.freshness.revalidation import (
    RefreshResult,
    RefreshStatus,
    Revalidation,
    is_edgefills,
)
from backfill_worker.transfer.plan import CopyPlan
from backfill_worker.transfer.progress import Progress
from shared.object_store import ObjectStore, StoredCopy, StoreError


class RefreshRecord:
    """One refresh message, for ``leased.key``: its copies' store, the batch's pending
    invalidations, the default lifetime and the clock."""

    def __init__(
        self,
        leased: LeasedCopy,
        copies: ObjectStore | None,
        pending: PendingInvalidations,
        revalidate_after: int,
        now: Callable[[], datetime],
    ) -> None:
        self.leased = leased
        self.copies = copies
        self.pending = pending
        self.revalidate_after = revalidate_after
        self.now = now

    def run(self) -> Outcome | None:
        """Steps 1 to 6 of the module docstring; None when the key must be filled (the
        copy is missing). Raises ``Skip`` or ``TransientFailure``."""
        leased, key = self.leased, self.leased.key.key
        leased.invocation.check_deadline()
        if self.copies is None:
            raise TransientFailure("config", "refresh needs the revalidation store")
        try:
            stored = self.copies.head(key)
            if stored is None:
                return None  # missing: a fill
            if not is_edgefills(stored) and leased.message.handover is None:
                raise Skip("foreign", f"{key!r} was not written by edgefill; left alone")
            result = self._under_lease(self.copies)
        except StoreError as error:
            raise TransientFailure("s3", str(error)) from error
        if result is None or isinstance(result, Outcome):
            return result  # removed meanwhile (a fill), or handed over
        return self._refreshed(result)

    def _under_lease(self, copies: ObjectStore) -> RefreshResult | Outcome | None:
        """Steps 3 to 5; None when the copy was removed meanwhile (the caller fills it)."""
        leased, key = self.leased, self.leased.key.key
        with leased.held(f"another worker is copying or refreshing {key!r}") as session:
            stored = copies.head(key)  # it may have changed meanwhile
            if stored is None or not is_edgefills(stored):
                session.abandon_inherited()  # a replace of a copy no longer there
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
        revalidation = Revalidation(
            leased.store,
            copies,
            DueIndex(copies),
            leased.origin,
            self.revalidate_after,
            self.now,
        )

        def revalidate(plan: CopyPlan, progress: Progress) -> RefreshResult:
            return revalidation.revalidate(key, leased.origin_url(), plan, stored, progress)

        def keep_for_a_lifetime(error: Exception) -> None:
            # The copy stays as it is and is revalidated again a lifetime from now: its
            # due entry was spent on this refresh.
            revalidation.record(key, stored, checked_at=revalidation.now())

        return leased.run(session, revalidate, refused=keep_for_a_lifetime)

    def _refreshed(self, result: RefreshResult) -> Outcome:
        telemetry, key, uri = self.leased.telemetry, self.leased.key.key, self.leased.message.uri
        status = str(result.status)
        extra: dict[str, object] = {"key": key, "outcome": status}
        if result.copy is not None and result.status == RefreshStatus.REPLACED:
            extra["invocations"] = result.copy.invocations
            extra["originBytes"] = result.copy.origin_bytes
        telemetry.logger.info("refresh", extra=extra)
        telemetry.count_by_reason("Refreshed", status)
        if result.status == RefreshStatus.REPLACED:
            self.pending.replaced(uri)
            telemetry.metrics.add_metric(
                name="BytesCopied", unit=MetricUnit.Bytes, value=result.size
            )
        elif result.status == RefreshStatus.DELETED:
            self.pending.deleted(uri)
        kind = "copied" if result.status == RefreshStatus.REPLACED else "refreshed"
        return Outcome(kind, status, key, result.size)
