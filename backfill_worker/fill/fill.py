"""One ``mode: "fill"`` record: a missing object copied from the origin, once.

exists? → missing marker? → lease → exists? → missing marker? → copy → prewarm (and the
playlist's tree). A key already in the bucket is skipped with a HEAD before any origin
request, and again once the lease is won (a copy may have finished meanwhile, which also
makes an inherited upload an orphan: it is aborted). A path the origin recently answered
404/410 for is skipped (``missing.py``), checked on both sides of the lease too.

The lease, the copy's errors, the handover and the release are the leased copy's
(``flight/leased_copy.py``), as for a refresh. A copy that was made is logged
(``backfill copied``), counted, announced to the prewarm queue, for a playlist expanded
(``expand.py``), and indexed for revalidation (what ``CopyFreshness`` does,
``freshness/stamp.py``); a prewarm message that cannot be sent is logged and counted
(``Failed{reason=prewarm_send}``), never retried: the object is in place. A due entry
that cannot be written fails the record: the redelivery finds the copy ``exists`` and
writes it (a skip as ``exists`` always writes a missing entry).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from aws_lambda_powertools.metrics import MetricUnit

from backfill_worker.fill.expand import PlaylistExpander
from backfill_worker.fill.missing import MISSING_STATUSES, MissingPaths
from backfill_worker.flight.leased_copy import LeasedCopy
from backfill_worker.flight.outcome import Outcome, Skip, TransientFailure
from backfill_worker.flight.telemetry import SERVICE
from backfill_worker.transfer.copy import CopyResult, CopyTerms, copy_object
from backfill_worker.transfer.plan import CopyPlan
from backfill_worker.transfer.progress import Progress
from shared.messages import PrewarmMessage, to_json
from shared.object_store import StoredCopy, StoreError
from shared.origin import OriginError
from shared.queues import send_and_log


class CopyFreshness(Protocol):
    """What freshness adds to a fill: the metadata a new copy carries (``fetched-at``),
    the copy's due entry once it is made, and the entry of a copy found already there
    when it has none. ``index`` and ``reindex`` raise ``TransientFailure`` when the entry
    cannot be written (the redelivery writes it)."""

    def stamp(self) -> Mapping[str, str]: ...

    def index(self, key: str) -> None: ...

    def reindex(self, key: str, copy: StoredCopy) -> None: ...


@dataclass
class Fill:
    """One fill of ``leased.key``."""

    leased: LeasedCopy
    missing: MissingPaths
    freshness: CopyFreshness
    # Video: a copied playlist or manifest queues fills for its tree (expand.py).
    expander: PlaylistExpander | None = None
    clock: Callable[[], float] = time.monotonic  # how long the copy took

    def run(self) -> Outcome:
        """The fill, end to end; raises ``Skip`` or ``TransientFailure``."""
        leased, key = self.leased, self.leased.key.key
        leased.invocation.check_deadline()
        try:
            self._skip_if_exists(leased.store.head(key))
            self._skip_if_missing()
            with leased.held(f"another worker is copying {key!r}") as session:
                existing = leased.store.head(key)  # copied while we waited for the lease
                if existing is not None:
                    session.abandon_inherited()
                    self._skip_if_exists(existing)
                self._skip_if_missing()  # found missing while we waited
                started = self.clock()
                result = leased.run(session, self._copy, refused=self._remember_if_missing)
                if result.handover is not None:
                    return leased.hand_over(session, result.handover)
                self._report(result, self.clock() - started)
        except StoreError as error:
            raise TransientFailure("s3", str(error)) from error
        if result.created:
            self._prewarm()
            if self.expander is not None:  # once per copy, never on a skip
                self.expander.expand(leased.message, leased.key)
            # Last: a failure here fails the record, and its redelivery finds the copy
            # (``exists``) and writes the entry, without a second prewarm or expansion.
            self.freshness.index(key)
        return Outcome(
            "copied" if result.created else "skipped",
            "copied" if result.created else "appeared",
            key,
            result.size,
        )

    def _copy(self, plan: CopyPlan, progress: Progress) -> CopyResult:
        leased = self.leased
        terms = CopyTerms(metadata=self.freshness.stamp())
        return copy_object(
            leased.origin,
            leased.store,
            leased.key.key,
            leased.origin_url(),
            plan,
            terms,
            progress=progress,
        )

    def _skip_if_exists(self, copy: StoredCopy | None) -> None:
        """A copy already there is skipped, its due entry written if it had none."""
        key = self.leased.key.key
        if copy is not None:
            self.freshness.reindex(key, copy)
            raise Skip("exists", f"{key!r} is already in the bucket")

    def _skip_if_missing(self) -> None:
        key = self.leased.key.key
        known = self.missing.recall(key)
        if known is not None:
            left = max(0, round(known.until - self.missing.clock()))
            raise Skip(
                "missing",
                f"the origin answered {known.status} for {key!r}; not asked again "
                f"for {left} s (EDGEFILL_MISSING_TTL)",
            )

    def _remember_if_missing(self, error: Exception) -> None:
        if not isinstance(error, OriginError) or error.status not in MISSING_STATUSES:
            return
        key = self.leased.key.key
        try:
            self.missing.remember(key, error.status)
        except StoreError as store_error:
            # The 404 outcome stands; only the next failover may ask the origin again.
            self.leased.telemetry.logger.warning(
                "missing-path marker not written", extra={"key": key, "detail": str(store_error)}
            )

    def _report(self, result: CopyResult, seconds: float) -> None:
        telemetry, key = self.leased.telemetry, self.leased.key.key
        if not result.created:
            telemetry.logger.info(
                "object appeared during the copy; kept the existing one", extra={"key": key}
            )
            telemetry.count_by_reason("Skipped", "appeared")
            return
        telemetry.logger.info(
            "backfill copied",
            extra={
                "key": key,
                "bytes": result.size,
                "seconds": round(seconds, 3),
                "mode": result.mode,
                # Every origin header the copy does not carry, and why.
                "droppedHeaders": dict(result.dropped_headers),
                "invocations": result.invocations,
                "originBytes": result.origin_bytes,
                "checksum": result.checksum,
            },
        )
        metrics = telemetry.metrics
        metrics.add_metric(name="ObjectsCopied", unit=MetricUnit.Count, value=1)
        metrics.add_metric(name="BytesCopied", unit=MetricUnit.Bytes, value=result.size)
        metrics.add_metric(name="CopySeconds", unit=MetricUnit.Seconds, value=seconds)

    def _prewarm(self) -> None:
        leased = self.leased
        queue = leased.config.prewarm_queue_url
        if queue is None or leased.sqs is None:
            return
        # The copy is the path's object: the prewarm warms the path, never a viewer's query.
        body = to_json(PrewarmMessage(paths=(leased.message.uri,), source=SERVICE))
        # The object is in the bucket; a retry would skip it as existing, so the prewarm
        # is reported rather than retried.
        logger = leased.telemetry.logger
        if send_and_log(leased.sqs, queue, [body], logger, "prewarm message not sent"):
            leased.telemetry.count_by_reason("Failed", "prewarm_send")
