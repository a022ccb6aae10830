"""One ``mode: "refresh"`` record, end to end: which path it takes, under which lease,
and how its replacing copy spans invocations (docs/BACKFILL.md "Freshness").

1. **The copy is missing**: a fill (``Backfiller._backfill_key``), which resumes a fill's
   checkpoint like any fill.
2. **The copy is not edgefill's**: ``foreign``, skipped before any lease; a continuation
   takes its lease first, so the upload it inherited is aborted rather than orphaned.
3. **The lease**: the same as a fill's, taken with the message's ``handover`` token as
   heir. A continuation takes the lease handed to it, checkpoint inside; anyone else
   (a fresh refresh, a duplicate or a forged continuation) finds it live: ``leased``.
4. **Under the lease** the copy is read again and revalidated (``refresh.py``) with the
   lease's progress: a first invocation makes the conditional GET; a continuation whose
   checkpoint still replaces the copy as it is resumes the replacing copy from it (no new
   conditional GET, ``IfMatch`` on the ETag read when the refresh began), one whose copy
   changed meanwhile is ``changed`` (upload aborted, the other writer's version stays).
5. **Handover**: a replacing copy that reaches the handover point hands over exactly as a
   fill does (``Backfiller._hand_over``: hop limit, checkpoint into the lease, lease to a
   fresh heir, continuation sent); the continuation is the same message, so it keeps
   ``mode: "refresh"``. The lease is kept for it; otherwise it is released.
6. **Outcome**: ``replaced`` (invalidated and warmed after, once the last invocation
   completes the copy), ``unchanged``, ``deleted`` or ``changed``, logged and counted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_lambda_powertools.metrics import MetricUnit

from backfill_worker.continuation import LeaseSession
from backfill_worker.copy import CopyFailed, CopyRefused
from backfill_worker.due_index import DueIndex
from backfill_worker.lease import SingleFlight
from backfill_worker.record_outcome import Outcome, Skip, TransientFailure
from backfill_worker.refresh import Refresh, RefreshResult, is_edgefills
from shared.keys import ObjectKey
from shared.messages import BackfillMessage
from shared.object_store import StoreError
from shared.origin import OriginError
from shared.revalidation_store import StoredCopy

if TYPE_CHECKING:
    from backfill_worker.backfill import Backfiller, InvocationContext


class RefreshRecord:
    """One refresh message for ``key``, processed by ``worker`` (its adapters, its plan,
    its handover and outcome reporting)."""

    def __init__(
        self,
        worker: Backfiller,
        message: BackfillMessage,
        key: ObjectKey,
        context: InvocationContext | None,
        owner: str,
        seconds: float,
    ) -> None:
        if worker.copies is None:
            raise TransientFailure("config", "refresh needs the revalidation store")
        self.worker = worker
        self.message = message
        self.key = key
        self.context = context
        self.owner = owner
        self.seconds = seconds
        self.copies = worker.copies
        self.refresh = Refresh(
            worker.store,
            worker.copies,
            DueIndex(worker.copies),
            worker.origin,
            worker.config.revalidate_after,
            worker._utc_now,
        )

    def run(self) -> Outcome:
        """Steps 1 to 6 of the module docstring; raises ``Skip`` or ``TransientFailure``."""
        worker, message, key = self.worker, self.message, self.key
        try:
            stored = self.copies.head(key.key)
            if stored is None:
                return worker._backfill_key(message, key, self.context)  # missing: a fill
            if not is_edgefills(stored) and message.handover is None:
                raise Skip("foreign", f"{key.key!r} was not written by edgefill; left alone")
            result = self._under_lease()
        except StoreError as error:
            raise TransientFailure("s3", str(error)) from error
        if result is None:
            return worker._backfill_key(message, key, self.context)  # removed meanwhile
        if isinstance(result, RefreshResult):
            return self._refreshed(result)
        return result  # handed over

    def _under_lease(self) -> RefreshResult | Outcome | None:
        """Steps 3 to 5; None when the copy was removed meanwhile (the caller fills it)."""
        worker, key = self.worker, self.key
        flight = SingleFlight(worker.store, worker.wall_clock)
        lease = flight.acquire(key.key, self.owner, self.seconds, heir=self.message.handover)
        if lease is None:
            raise Skip("leased", f"another worker is copying or refreshing {key.key!r}")
        session = LeaseSession(flight, lease, worker.store, key.key)
        try:
            stored = self.copies.head(key.key)  # it may have changed meanwhile
            if stored is None or not is_edgefills(stored):
                session.abandon_inherited()  # a replace of a copy no longer there
                if stored is None:
                    return None
                raise Skip("foreign", f"{key.key!r} was not written by edgefill; left alone")
            result = self._revalidate(stored, session)
            if result.status == "handed_over" and result.copy is not None:
                return worker._hand_over(self.message, key, session, result.copy)
            return result
        finally:
            worker._log_notes(session)
            if not session.keep_lease:
                worker._release(flight, lease)

    def _revalidate(self, stored: StoredCopy, session: LeaseSession) -> RefreshResult:
        worker, refresh = self.worker, self.refresh
        query = self.message.query if worker.config.query == "forward" else ""
        url = worker.origin.url_for(self.message.uri, query)
        plan = worker.plan(self.context)
        try:
            return refresh.revalidate(self.key.key, url, plan, stored, session.progress())
        except OriginError as error:
            if error.permanent:
                # The copy stays as it is and is revalidated again a lifetime from now:
                # its due entry was spent on this refresh.
                refresh.record(self.key.key, stored, checked_at=refresh.now())
                raise Skip(error.kind, error.reason) from error
            raise TransientFailure(error.kind, error.reason) from error
        except CopyRefused as error:
            refresh.record(self.key.key, stored, checked_at=refresh.now())
            raise Skip(error.reason, error.detail, error.directive) from error
        except CopyFailed as error:
            raise TransientFailure(error.reason, error.detail) from error

    def _refreshed(self, result: RefreshResult) -> Outcome:
        worker, key = self.worker, self.key
        extra: dict[str, object] = {"key": key.key, "outcome": result.status}
        if result.copy is not None and result.status == "replaced":
            extra["invocations"] = result.copy.invocations
            extra["originBytes"] = result.copy.origin_bytes
        worker.logger.info("refresh", extra=extra)
        worker._count("Refreshed", result.status)
        if result.status == "replaced":
            worker.pending.replaced(self.message.uri)
            worker.metrics.add_metric(name="BytesCopied", unit=MetricUnit.Bytes, value=result.size)
        elif result.status == "deleted":
            worker.pending.deleted(self.message.uri)
        status = "copied" if result.status == "replaced" else "refreshed"
        return Outcome(status, result.status, key.key, result.size)
