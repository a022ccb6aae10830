"""One backfill record: parse the message, check the key and the filters, then dispatch by
mode to a fill (``fill/``) or a refresh (``freshness/``); log and count how it ended.

This is the one module that knows both flows: a refresh of a copy that is missing is a
fill, so the dispatch is here. Both run as a leased copy (``flight/leased_copy.py``),
built here per record from the worker's adapters.

Outcomes are of three kinds. Permanent outcomes (filtered, oversize, unsafe, origin
4xx, foreign redirect, exists) are logged with their reason and counted, and the record
succeeds: retrying cannot change them. Permanent refusals (a bad message or key, a copy
given up past its hop limit: a ``Skip`` with ``refused``, ``flight/outcome.py``) are
sent at once to the worker's DLQ with their reason (``shared/dead_letters.py``) and the
record succeeds; when that send fails the record fails (SQS delivers it again), and
without ``EDGEFILL_BACKFILL_DLQ_URL`` a refusal is skipped like an outcome, as before.
Transient ones (origin 5xx, timeouts, resets, truncation, checksum mismatch, S3 errors)
raise ``TransientFailure`` so the record lands in ``batchItemFailures`` and SQS retries
it (then the DLQ); by then any multipart upload is aborted and the lease released,
unless a resumable copy kept both for the redelivery.
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
from backfill_worker.freshness.invalidation import (
    FlushContext,
    FlushReport,
    PendingInvalidations,
)
from backfill_worker.freshness.invalidation_journal import InvalidationJournal
from backfill_worker.freshness.refresh import RefreshRecord
from backfill_worker.freshness.stamp import FreshCopies
from backfill_worker.transfer.plan import CopyPlan
from shared.config import BackfillConfig
from shared.dead_letters import DeadLetterNotSent, DeadLetters
from shared.keys import InvalidKey, ObjectKey
from shared.messages import (
    BackfillMessage,
    InvalidationsDue,
    MessageError,
    parse_backfill_queue,
    to_json,
)
from shared.object_store import ObjectStore
from shared.origin import OriginClient
from shared.queues import send_and_log
from shared.redact import query_names

# Bad input is an error someone must look at; a key already there or being copied is the
# normal case of a hot miss; anything else (uncacheable, oversize, origin 4xx) is a warning.
_SKIP_LOG_LEVEL: Final = {
    "bad_message": logging.ERROR,
    "bad_key": logging.ERROR,
    "wrong_region": logging.ERROR,  # a misrouted queue or stack: configuration to fix
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
    # Permanent refusals go here at once (EDGEFILL_BACKFILL_DLQ_URL); None: skipped.
    dead_letters: DeadLetters | None = None

    def plan(self, context: InvocationContext | None) -> CopyPlan:
        """The copy plan of a record processed now in the invocation of ``context``."""
        return self._invocation(context).plan(self.config)

    def __post_init__(self) -> None:
        # Replaced and deleted paths wait in the bucket until CloudFront has them, and
        # are batched across invocations by reminders on the worker's own queue.
        if self.config.distribution_id is not None and self.pending.journal is None:
            hands_back = self.config.backfill_queue_url is not None and self.sqs is not None
            self.pending.journal = InvalidationJournal(
                self.store,
                lambda: self.wall_clock(),
                self._remind if hands_back else None,
                self.config.invalidation_window,
            )
        self.pending.every_query = self.config.query == "forward"

    def backfill(
        self,
        body: str,
        context: InvocationContext | None = None,
        message_id: str | None = None,
    ) -> Outcome:
        """Process one message body (SQS ``message_id``); raises ``TransientFailure`` when
        it must be retried."""
        telemetry = self._telemetry()
        self.metrics.add_metric(name="RecordsReceived", unit=MetricUnit.Count, value=1)
        try:
            message = self._parse(body)
            if isinstance(message, InvalidationsDue):
                return self._invalidations_due(message)
            key = self._accept(message)
            leased = self._leased_copy(message, key, context)
            if message.mode == "refresh":
                refreshed = self._refresh(leased).run()
                if refreshed is not None:
                    return refreshed
            return self._fill(leased).run()  # a fill, or a refresh of a missing copy
        except Skip as skip:
            if skip.refused and self.dead_letters is not None:
                return self._refuse(body, skip, message_id, telemetry)
            self._log_skip("backfill skipped", skip)
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
        """Invalidate now every path pending (this process's and the bucket's journal),
        then warm the replaced ones after it."""
        self._count_invalidations(self.pending.send(self._flush_context()))

    def settle_invalidations(self) -> None:
        """End of an invocation: the paths it replaced or deleted wait, recorded, for
        their window's reminder; or are invalidated now when no reminder can come
        (``freshness/invalidation.py``)."""
        self._count_invalidations(self.pending.settle(self._flush_context()))

    def _invalidations_due(self, message: InvalidationsDue) -> Outcome:
        """A window's reminder: every pending invalidation is sent now."""
        report = self.pending.flush_due(message.window, self._flush_context())
        self._count_invalidations(report)
        return Outcome("invalidated", "invalidations", None, report.paths)

    def _flush_context(self) -> FlushContext:
        return FlushContext(
            self.cloudfront,
            self.config.distribution_id,
            self.sqs,
            self.config.prewarm_queue_url,
            self.logger,
        )

    def _count_invalidations(self, report: FlushReport) -> None:
        if report.invalidation_ids:
            self.metrics.add_metric(
                name="InvalidatedPaths", unit=MetricUnit.Count, value=report.paths
            )
        if report.failed:
            self._telemetry().count_by_reason("Failed", "invalidation")

    def _refuse(
        self, body: str, skip: Skip, message_id: str | None, telemetry: Telemetry
    ) -> Outcome:
        """A permanent refusal: the body, unchanged, to the DLQ with its reason, and the
        record succeeds. If the DLQ does not take it the record fails (``dead_letter``):
        SQS delivers it again, so a refusal is never dropped. (Without a DLQ configured
        the caller skips it, as before issue 19.)"""
        assert self.dead_letters is not None
        try:
            self.dead_letters.send(body, skip.reason, skip.detail, message_id)
        except DeadLetterNotSent as error:
            self.logger.error(
                "backfill failed; will retry",
                extra={"reason": error.reason, "refusal": skip.reason, "detail": error.detail},
            )
            telemetry.count_by_reason("Failed", error.reason)
            raise TransientFailure(error.reason, error.detail) from error
        self._log_skip("backfill refused; sent to the DLQ", skip, messageId=message_id)
        telemetry.count_by_reason("Refused", skip.reason)
        return Outcome("refused", skip.reason)

    def _log_skip(self, event: str, skip: Skip, **more: Any) -> None:
        level = _SKIP_LOG_LEVEL.get(skip.reason, logging.WARNING)
        log = {logging.ERROR: self.logger.error, logging.INFO: self.logger.info}.get(
            level, self.logger.warning
        )
        extra = {"reason": skip.reason, "detail": skip.detail, **more}
        if skip.directive is not None:
            extra["directive"] = skip.directive
        if skip.rule is not None:
            extra["rule"] = skip.rule
        log(event, extra=extra)

    def _remind(self, window: str) -> bool:
        """Send the reminder of batching window ``window`` to this worker's own queue."""
        assert self.sqs is not None and self.config.backfill_queue_url is not None
        body = to_json(InvalidationsDue(window=window))
        failure = send_and_log(
            self.sqs,
            self.config.backfill_queue_url,
            [body],
            self.logger,
            "invalidation reminder not sent",
            delay_seconds=self.config.invalidation_window,
        )
        return failure is None

    def _parse(self, body: str) -> BackfillMessage | InvalidationsDue:
        try:
            return parse_backfill_queue(body)
        except MessageError as error:
            raise Skip("bad_message", f"message rejected: {error}", refused=True) from None

    def _accept(self, message: BackfillMessage) -> ObjectKey:
        try:
            key = ObjectKey.from_uri(message.uri, self.config.key_prefix)
        except InvalidKey as error:  # reason: bad_key, or non_canonical (CONTRACTS §4)
            raise Skip(error.reason, f"uri rejected: {error}", refused=True) from None
        own = self.config.fills_region
        if message.region is not None and own is not None and message.region != own:
            # Another region's fill on this region's queue (a misrouted message, a queue
            # URL copied between stacks): writing it here would put an object in a bucket
            # whose viewers never asked for it. Refused for good, never retried.
            raise Skip(
                "wrong_region",
                f"region: the message is for {message.region}'s bucket; this worker fills"
                f" {own}'s ({self.config.bucket})",
                refused=True,
            )
        decoded = unquote(message.uri)
        if not self.config.accepts(decoded):
            raise Skip("filtered", f"{decoded[:200]!r} is excluded by EDGEFILL_INCLUDE/EXCLUDE")
        if self.config.query == "forward" and message.query:
            # The bucket holds one object per path: one viewer's query must not pick it.
            raise Skip("query", f"query with parameters {query_names(message.query)} not copied")
        return key

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
