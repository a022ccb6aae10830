"""One backfill record: message → key → filters → exists? → lease → copy → prewarm.

Outcomes are of two kinds. Permanent ones (bad message or key, filtered, oversize,
unsafe, origin 4xx, foreign redirect) are logged with their reason and counted, and the
record succeeds: retrying cannot change them. Transient ones (origin 5xx, timeouts,
resets, truncation, checksum mismatch, S3 errors) raise ``TransientFailure`` so the
record lands in ``batchItemFailures`` and SQS retries it (then the DLQ); by then any
multipart upload is aborted and the lease released.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Final, Protocol
from urllib.parse import unquote

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from backfill_worker.continuation import ContinuationNotSent, GivenUp, LeaseSession
from backfill_worker.copy import (
    CopyFailed,
    CopyPlan,
    CopyRefused,
    CopyResult,
    CopyTerms,
    copy_object,
)
from backfill_worker.due_index import DueIndex
from backfill_worker.expand import PlaylistExpander
from backfill_worker.freshness import FETCHED_AT, format_time, lifetime, parse_time
from backfill_worker.invalidation import PendingInvalidations
from backfill_worker.lease import Lease, SingleFlight
from backfill_worker.missing import MISSING_STATUSES, MissingPaths
from backfill_worker.record_outcome import Outcome, Skip, TransientFailure
from backfill_worker.refresh_record import RefreshRecord
from shared import aws
from shared.config import BackfillConfig
from shared.keys import InvalidKey, ObjectKey
from shared.messages import BackfillMessage, MessageError, PrewarmMessage, parse_backfill, to_json
from shared.object_store import ObjectStore, StoreError
from shared.observability import worker_logger, worker_metrics
from shared.origin import OriginClient, OriginError
from shared.queues import region_from_queue_url, send_messages
from shared.redact import query_names
from shared.revalidation_store import RevalidationStore

SERVICE: Final = "backfill"
# Without a Lambda context (CLI, tests) a lease lasts this long plus the margin.
DEFAULT_LEASE_SECONDS: Final = 900.0
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
}


class InvocationContext(Protocol):
    """What the worker uses of the Lambda context."""

    aws_request_id: str

    def get_remaining_time_in_millis(self) -> int: ...


@dataclass
class Backfiller:
    """The worker's logic with its adapters; built once per container by ``backfiller()``."""

    config: BackfillConfig
    store: ObjectStore
    origin: OriginClient
    sqs: Any | None
    logger: Logger
    metrics: Metrics
    clock: Callable[[], float] = time.monotonic
    # Missing-path markers and lease expiries outlive a worker: wall clock (tests move it).
    wall_clock: Callable[[], float] = time.time
    # Video: a copied playlist or manifest queues fills for its tree (backfill_worker/expand).
    expander: PlaylistExpander | None = None

    # Time kept back at the end of an invocation to abort an unfinished upload and release
    # the lease (a few S3 calls, plus a part upload already under way).
    deadline_reserve_seconds: float = 30.0
    # Freshness (backfill_worker/refresh.py): copies' state and the due index, CloudFront
    # for invalidations, and the paths a batch replaced or deleted.
    copies: RevalidationStore | None = None
    cloudfront: Any | None = None
    pending: PendingInvalidations = field(default_factory=PendingInvalidations)

    def _utc_now(self) -> datetime:
        return datetime.fromtimestamp(self.wall_clock(), UTC)

    def _seconds_left(self, context: InvocationContext) -> float:
        """Copy budget left in the invocation: its remaining time minus the reserve."""
        return context.get_remaining_time_in_millis() / 1000 - self._reserve()

    def _reserve(self) -> float:
        # A worker that hands over keeps half its handover time for the parts in flight
        # and the cleanup margin inside it (the 30 s unless the handover is shorter).
        if self._hands_over():
            return min(self.deadline_reserve_seconds, self.config.handover_seconds / 2)
        return self.deadline_reserve_seconds

    def _hands_over(self) -> bool:
        return self.config.backfill_queue_url is not None and self.sqs is not None

    def plan(self, context: InvocationContext | None) -> CopyPlan:
        deadline = handover_at = None
        if context is not None:
            now, remaining = time.monotonic(), context.get_remaining_time_in_millis() / 1000
            deadline = now + remaining - self._reserve()
            if self._hands_over():
                handover_at = now + remaining - self.config.handover_seconds
        return CopyPlan(
            max_object_bytes=self.config.max_object_bytes,
            part_bytes=self.config.part_bytes,
            parts_in_flight=self.config.parts_in_flight,
            deadline=deadline,
            handover_at=handover_at,
        )

    def backfill(self, body: str, context: InvocationContext | None = None) -> Outcome:
        """Process one message body; raises ``TransientFailure`` when it must be retried."""
        self.metrics.add_metric(name="RecordsReceived", unit=MetricUnit.Count, value=1)
        try:
            message, key = self._accept(body)
            if message.mode == "refresh":
                return self._refresh_key(message, key, context)
            return self._backfill_key(message, key, context)
        except Skip as skip:
            level = _SKIP_LOG_LEVEL.get(skip.reason, logging.WARNING)
            log = {logging.ERROR: self.logger.error, logging.INFO: self.logger.info}.get(
                level, self.logger.warning
            )
            extra = {"reason": skip.reason, "detail": skip.detail}
            if skip.directive is not None:
                extra["directive"] = skip.directive
            log("backfill skipped", extra=extra)
            self._count("Skipped", skip.reason)
            return Outcome("skipped", skip.reason)
        except TransientFailure as failure:
            self.logger.error(
                "backfill failed; will retry",
                extra={"reason": failure.reason, "detail": str(failure)},
            )
            self._count("Failed", failure.reason)
            raise

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

    def _backfill_key(
        self, message: BackfillMessage, key: ObjectKey, context: InvocationContext | None
    ) -> Outcome:
        if context is not None and self._seconds_left(context) <= 0:
            # A record behind a long copy in its batch: starting it could not finish in
            # time, so it goes back to the queue untouched.
            raise TransientFailure("deadline", "no copy budget left in this invocation")
        try:
            if self.store.exists(key.key):
                raise Skip("exists", f"{key.key!r} is already in the bucket")
            missing = MissingPaths(self.store, self.config.missing_ttl, self.wall_clock)
            self._skip_if_missing(missing, key)
            flight = SingleFlight(self.store, self.wall_clock)
            owner, seconds = _owner_and_seconds(context)
            lease = flight.acquire(key.key, owner, seconds, heir=message.handover)
            if lease is None:
                raise Skip("leased", f"another worker is copying {key.key!r}")
            session = LeaseSession(flight, lease, self.store, key.key)
            try:
                if self.store.exists(key.key):  # copied while we waited for the lease
                    session.abandon_inherited()
                    raise Skip("exists", f"{key.key!r} is already in the bucket")
                self._skip_if_missing(missing, key)  # found missing while we waited
                result = self._copy(message, key, context, missing, session)
                if result.handover is not None:
                    return self._hand_over(message, key, session, result)
            finally:
                if not session.keep_lease:
                    self._release(flight, lease)
        except StoreError as error:
            raise TransientFailure("s3", str(error)) from error
        if result.created:
            self._prewarm(message)
            if self.expander is not None:  # once per copy, never on a skip
                self.expander.expand(message, key)
        return Outcome(
            "copied" if result.created else "skipped",
            "copied" if result.created else "appeared",
            key.key,
            result.size,
        )

    def _skip_if_missing(self, missing: MissingPaths, key: ObjectKey) -> None:
        known = missing.recall(key.key)
        if known is not None:
            left = max(0, round(known.until - self.wall_clock()))
            raise Skip(
                "missing",
                f"the origin answered {known.status} for {key.key!r}; not asked again "
                f"for {left} s (EDGEFILL_MISSING_TTL)",
            )

    def _copy(
        self,
        message: BackfillMessage,
        key: ObjectKey,
        context: InvocationContext | None,
        missing: MissingPaths,
        session: LeaseSession | None = None,
    ) -> CopyResult:
        query = message.query if self.config.query == "forward" else ""
        url = self.origin.url_for(message.uri, query)
        started = self.clock()
        terms = CopyTerms(metadata={FETCHED_AT: format_time(self._utc_now())})
        progress = session.progress() if session is not None else None
        try:
            result = copy_object(
                self.origin, self.store, key.key, url, self.plan(context), terms, progress=progress
            )
        except OriginError as error:
            if error.status in MISSING_STATUSES:
                self._remember_missing(missing, key, error.status)
            if error.permanent:
                raise Skip(error.kind, error.reason) from error
            raise TransientFailure(error.kind, error.reason) from error
        except CopyRefused as error:
            raise Skip(error.reason, error.detail, error.directive) from error
        except CopyFailed as error:
            raise TransientFailure(error.reason, error.detail) from error
        finally:
            if session is not None:
                self._log_notes(session)
        seconds = self.clock() - started
        if result.handover is not None:
            return result
        if result.created:
            self.logger.info(
                "backfill copied",
                extra={
                    "key": key.key,
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
            self.metrics.add_metric(name="ObjectsCopied", unit=MetricUnit.Count, value=1)
            self.metrics.add_metric(name="BytesCopied", unit=MetricUnit.Bytes, value=result.size)
            self.metrics.add_metric(name="CopySeconds", unit=MetricUnit.Seconds, value=seconds)
            self._index_copy(key.key)
        else:
            self.logger.info(
                "object appeared during the copy; kept the existing one", extra={"key": key.key}
            )
            self._count("Skipped", "appeared")
        return result

    # -- freshness ------------------------------------------------------------------

    def _refresh_key(
        self, message: BackfillMessage, key: ObjectKey, context: InvocationContext | None
    ) -> Outcome:
        """``mode: "refresh"``: revalidate the copy, resumably (refresh_record.py)."""
        if context is not None and self._seconds_left(context) <= 0:
            raise TransientFailure("deadline", "no copy budget left in this invocation")
        owner, seconds = _owner_and_seconds(context)
        return RefreshRecord(self, message, key, context, owner, seconds).run()

    def _index_copy(self, key: str) -> None:
        """Write the due-index entry of a copy just made (from what S3 now holds)."""
        if self.copies is None:
            return
        try:
            copy = self.copies.head(key)
            if copy is None:
                return
            fetched_at = parse_time(copy.metadata.get(FETCHED_AT)) or self._utc_now()
            seconds = lifetime(
                copy.cache_control, copy.expires, fetched_at, self.config.revalidate_after
            )
            DueIndex(self.copies).record(key, fetched_at, None, seconds)
        except StoreError as error:
            # The copy is in place; only its automatic revalidation is missing. A retry
            # would find the object and skip it, so this is reported, not retried.
            self.logger.error(
                "due index entry not written", extra={"key": key, "detail": str(error)}
            )
            self._count("Failed", "due_index")

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
            self._count("Failed", "invalidation")

    def _hand_over(
        self, message: BackfillMessage, key: ObjectKey, session: LeaseSession, result: CopyResult
    ) -> Outcome:
        """The copy reached its handover point: continue it in another invocation."""
        checkpoint = result.handover
        assert checkpoint is not None and self.config.backfill_queue_url is not None
        try:
            sent = session.hand_over(
                checkpoint,
                message,
                max_hops=self.config.max_hops,
                queue_url=self.config.backfill_queue_url,
                sqs=self.sqs,
            )
        except GivenUp as error:
            raise Skip(error.reason, error.detail) from error
        except ContinuationNotSent as error:
            raise TransientFailure("continuation", str(error)) from error
        done = sum(part.size for part in checkpoint.parts)
        self.logger.info(
            "backfill handed over",
            extra={
                "key": key.key,
                "hop": sent.hop,
                "partsDone": len(checkpoint.parts),
                "parts": checkpoint.count,
                "bytesDone": done,
                "bytes": checkpoint.length,
            },
        )
        self.metrics.add_metric(name="HandedOver", unit=MetricUnit.Count, value=1)
        return Outcome("handed_over", "handed_over", key.key, done)

    def _log_notes(self, session: LeaseSession) -> None:
        """What became of an inherited checkpoint that was not resumed."""
        for event, detail in session.notes:
            self.logger.warning(
                "checkpoint not resumed", extra={"event": event, "detail": detail[:300]}
            )

    def _remember_missing(self, missing: MissingPaths, key: ObjectKey, status: int) -> None:
        try:
            missing.remember(key.key, status)
        except StoreError as error:
            # The 404 outcome stands; only the next failover may ask the origin again.
            self.logger.warning(
                "missing-path marker not written", extra={"key": key.key, "detail": str(error)}
            )

    def _release(self, flight: SingleFlight, lease: Lease) -> None:
        try:
            if not flight.release(lease):
                self.logger.warning(
                    "lease was taken over before release", extra={"lease": lease.key}
                )
        except StoreError as error:
            # The lease expires by itself; the copy's own outcome matters more.
            self.logger.warning(
                "lease release failed", extra={"lease": lease.key, "detail": str(error)}
            )

    def _prewarm(self, message: BackfillMessage) -> None:
        queue = self.config.prewarm_queue_url
        if queue is None or self.sqs is None:
            return
        # The copy is the path's object: the prewarm warms the path, never a viewer's query.
        body = to_json(PrewarmMessage(paths=(message.uri,), source=SERVICE))
        try:
            report = send_messages(self.sqs, queue, [body])
            failure = None if report.ok else str(report.failed)
        except Exception as error:  # noqa: BLE001 - any SQS failure is reported the same way
            failure = f"{type(error).__name__}: {error}"
        if failure is not None:
            # The object is in the bucket; a retry would skip it as existing, so the
            # prewarm is reported rather than retried.
            self.logger.error("prewarm message not sent", extra={"detail": failure[:500]})
            self._count("Failed", "prewarm_send")

    def _count(self, name: str, reason: str) -> None:
        with single_metric(
            name=name,
            unit=MetricUnit.Count,
            value=1,
            namespace=self.metrics.namespace,
            default_dimensions={"service": SERVICE},
        ) as metric:
            metric.add_dimension(name="reason", value=reason)


def _owner_and_seconds(context: InvocationContext | None) -> tuple[str, float]:
    if context is None:
        return f"local-{uuid.uuid4()}", DEFAULT_LEASE_SECONDS
    return context.aws_request_id, context.get_remaining_time_in_millis() / 1000


@lru_cache(maxsize=1)
def backfiller() -> Backfiller:
    """The container's Backfiller: configuration read and clients built once, on first use."""
    config = BackfillConfig.from_env(os.environ)
    sqs = None
    # One client for the prewarm queue and the continuations (one stack, one region).
    queue_url = config.prewarm_queue_url or config.backfill_queue_url
    if queue_url is not None:
        sqs = aws.client("sqs", region_from_queue_url(queue_url))
    # An existing bucket may live in another region (EDGEFILL_BUCKET_REGION).
    s3 = aws.client("s3", config.bucket_region)
    store = ObjectStore(s3, config.bucket)
    logger, metrics = worker_logger(SERVICE), worker_metrics(SERVICE)
    expander = None
    if config.expand_playlists and config.backfill_queue_url is not None:
        backfill_sqs = aws.client("sqs", region_from_queue_url(config.backfill_queue_url))
        expander = PlaylistExpander(config, store, backfill_sqs, logger, metrics)
    return Backfiller(
        config=config,
        store=store,
        origin=OriginClient(config.origin_url),
        sqs=sqs,
        logger=logger,
        metrics=metrics,
        expander=expander,
        copies=RevalidationStore(s3, config.bucket),
        # CloudFront's API lives in us-east-1 whatever the worker's region.
        cloudfront=aws.client("cloudfront", "us-east-1") if config.distribution_id else None,
    )


def backfill_record(record: SQSRecord, lambda_context: InvocationContext | None = None) -> Outcome:
    """Powertools record handler: process one SQS record (raises to have it retried)."""
    return backfiller().backfill(record.body, lambda_context)
