"""One backfill record: parse the message, check the key and the filters, then dispatch by
mode to a fill (``fill/``) or a refresh (``freshness/``); log and count how it ended.

This is the one module that knows both flows: a refresh of a copy that is missing is a
fill, so the dispatch is here. Both run as a leased copy (``flight/leased_copy.py``),
built here per record from the worker's adapters.

Outcomes are of two kinds. Permanent ones (bad message or key, filtered, oversize,
unsafe, origin 4xx, foreign redirect) are logged with their reason and counted, and the
record succeeds: retrying cannot change them. Transient ones (origin 5xx, timeouts,
resets, truncation, checksum mismatch, S3 errors) raise ``TransientFailure`` so the
record lands in ``batchItemFailures`` and SQS retries it (then the DLQ); by then any
multipart upload is aborted and the lease released, unless a resumable copy kept both
for the redelivery.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import unquote

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from backfill_worker.fill.expand import PlaylistExpander
from backfill_worker.fill.fill import Fill
from backfill_worker.fill.missing import MissingPaths
from backfill_worker.flight.invocation import Invocation, InvocationContext
from backfill_worker.flight.leased_copy import LeasedCopy
from backfill_worker.flight.outcome import Outcome, Skip, TransientFailure
from backfill_worker.flight.telemetry import Telemetry
from backfill_worker.freshness.due_index import DueIndex, Schedule
from backfill_worker.freshness.invalidation import PendingInvalidations
from backfill_worker.freshness.refresh import RefreshRecord
from backfill_worker.freshness.stamp import FreshCopies
from backfill_worker.transfer.plan import CopyPlan
from shared.config import BackfillConfig
from shared.keys import InvalidKey, ObjectKey
from shared.messages import BackfillMessage, MessageError, parse_backfill
from shared.object_store import ObjectStore
from shared.origin import OriginClient
from shared.redact import query_names

# Bad input is an error someone must look at; a key already there or being copied is the
# normal case of a hot miss; anything else (uncacheable, oversize, origin 4xx) is a warning.
_SKIP_LOG_LEVEL: Final = {
    "bad_message": logging.ERROR,
    "bad_key": logging.ERROR,
    "missing": logging.INFO,  # a path the origin does not have, remembered
    "exists": logging.INFO,
    "leased": logging.INFO,
    "appeared": logging.INFO,
    "filtered": logging.INFO,
    "foreign": logging.INFO,
    "query": logging.INFO,
    "settled": logging.INFO,  # a refresh delivered again after it was done
    "superseded": logging.INFO,  # a refresh of a version rewritten since
}


@dataclass
class Backfiller:
    """The worker with its adapters; built once per container (``runtime.backfiller``)."""

    config: BackfillConfig
    store: ObjectStore
    origin: OriginClient
    sqs: Any | None
    logger: Logger
    metrics: Metrics
    clock: Callable[[], float] = time.monotonic
    # Missing-path markers and lease expiries outlive a worker: wall clock (tests move it).
    wall_clock: Callable[[], float] = time.time
    # Video: a copied playlist or manifest queues fills for its tree (fill/expand.py).
    expander: PlaylistExpander | None = None

    # Time kept back at the end of an invocation to abort an unfinished upload and release
    # the lease (a few S3 calls, plus a part upload already under way).
    deadline_reserve_seconds: float = 30.0
    # Freshness (freshness/): copies' state and the due index, CloudFront for
    # invalidations, and the paths a batch replaced or deleted.
    copies: ObjectStore | None = None
    cloudfront: Any | None = None
    pending: PendingInvalidations = field(default_factory=PendingInvalidations)

    def plan(self, context: InvocationContext | None) -> CopyPlan:
        """The copy plan of a record processed now in the invocation of ``context``."""
        return self._invocation(context).plan(self.config)

    def backfill(self, body: str, context: InvocationContext | None = None) -> Outcome:
        """Process one message body; raises ``TransientFailure`` when it must be retried."""
        telemetry = self._telemetry()
        self.metrics.add_metric(name="RecordsReceived", unit=MetricUnit.Count, value=1)
        try:
            message, key = self._accept(body)
            leased = self._leased_copy(message, key, context)
            if message.mode == "refresh":
                refreshed = self._refresh(leased).run()
                if refreshed is not None:
                    return refreshed
            return self._fill(leased).run()  # a fill, or a refresh of a missing copy
        except Skip as skip:
            level = _SKIP_LOG_LEVEL.get(skip.reason, logging.WARNING)
            log = {logging.ERROR: self.logger.error, logging.INFO: self.logger.info}.get(
                level, self.logger.warning
            )
            extra = {"reason": skip.reason, "detail": skip.detail}
            if skip.directive is not None:
                extra["directive"] = skip.directive
            if skip.rule is not None:
                extra["rule"] = skip.rule
            log("backfill skipped", extra=extra)
            telemetry.count_by_reason("Skipped", skip.reason)
            return Outcome("skipped", skip.reason)
        except TransientFailure as failure:
            self.logger.error(
                "backfill failed; will retry",
                extra={"reason": failure.reason, "detail": str(failure)},
            )
            telemetry.count_by_reason("Failed", failure.reason)
            raise

    def flush_invalidations(self) -> None:
        """End of an invocation: one CreateInvalidation for every path the batch replaced
        or deleted, then a prewarm after it for the replaced ones."""
        report = self.pending.flush(
            self.cloudfront,
            self.config.distribution_id,
            self.sqs,
            self.config.prewarm_queue_url,
            self.logger,
        )
        if report.invalidation_ids:
            self.metrics.add_metric(
                name="InvalidatedPaths", unit=MetricUnit.Count, value=report.paths
            )
        if report.failed:
            self._telemetry().count_by_reason("Failed", "invalidation")

    def _accept(self, body: str) -> tuple[BackfillMessage, ObjectKey]:
        try:
            message = parse_backfill(body)
        except MessageError as error:
            raise Skip("bad_message", f"message rejected: {error}") from None
        try:
            key = ObjectKey.from_uri(message.uri, self.config.key_prefix)
        except InvalidKey as error:  # reason: bad_key, or non_canonical (CONTRACTS §4)
            raise Skip(error.reason, f"uri rejected: {error}") from None
        decoded = unquote(message.uri)
        if not self.config.accepts(decoded):
            raise Skip("filtered", f"{decoded[:200]!r} is excluded by EDGEFILL_INCLUDE/EXCLUDE")
        if self.config.query == "forward" and message.query:
            # The bucket holds one object per path: one viewer's query must not pick it.
            raise Skip("query", f"query with parameters {query_names(message.query)} not copied")
        return message, key

    def _invocation(self, context: InvocationContext | None) -> Invocation:
        # Copies hand over only when the continuation has a queue to go to.
        hands_over = self.config.backfill_queue_url is not None and self.sqs is not None
        return Invocation(
            context,
            self.deadline_reserve_seconds,
            self.config.handover_seconds if hands_over else None,
        )

    def _telemetry(self) -> Telemetry:
        return Telemetry(self.logger, self.metrics)

    def _utc_now(self) -> datetime:
        return datetime.fromtimestamp(self.wall_clock(), UTC)

    def _leased_copy(
        self, message: BackfillMessage, key: ObjectKey, context: InvocationContext | None
    ) -> LeasedCopy:
        return LeasedCopy(
            message=message,
            key=key,
            invocation=self._invocation(context),
            config=self.config,
            store=self.store,
            origin=self.origin,
            sqs=self.sqs,
            telemetry=self._telemetry(),
            wall_clock=self.wall_clock,
        )

    def _fill(self, leased: LeasedCopy) -> Fill:
        return Fill(
            leased=leased,
            missing=MissingPaths(self.store, self.config.missing_ttl, self.wall_clock),
            freshness=FreshCopies(
                self.copies,
                self.config.revalidate_after,
                self._utc_now,
                leased.telemetry,
                self.config.min_revalidate,
            ),
            expander=self.expander,
            clock=self.clock,
        )

    def _refresh(self, leased: LeasedCopy) -> RefreshRecord:
        missing = MissingPaths(self.store, self.config.missing_ttl, self.wall_clock)
        return RefreshRecord(
            leased,
            self.copies,
            self.pending,
            self._schedule,
            self._utc_now,
            remember_missing=missing.remember,
        )

    def _schedule(self, copies: ObjectStore) -> Schedule:
        return Schedule(DueIndex(copies), self.config.revalidate_after, self.config.min_revalidate)
