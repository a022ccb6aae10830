"""A leased copy: one key, copied by one worker at a time, across invocations; the same
steps for a fill and a refresh.

1. **Budget**: a record whose invocation has no copy budget left fails as ``deadline``
   before any request (``Invocation.check_deadline``); SQS delivers it again.
2. **The lease** (``lease.py``) is taken with the message's ``handover`` token as heir: a
   continuation takes the lease handed to it, checkpoint inside; anyone else finds a
   live lease and the record ends as ``leased`` (the holder is copying the key).
3. **Under the lease** the caller checks what it must (the key appeared meanwhile, the
   copy changed) and runs its copy with the lease's progress (``continuation.py``:
   checkpoint saves, the inherited checkpoint). The copy's errors end the record the
   same way for every flow: a permanent origin answer or a refusal (``CopyRefused``) is
   a ``Skip`` named by its reason, after the caller's ``refused`` hook (a fill remembers
   a 404, a refresh spends the copy's due entry); any other origin error and every
   ``CopyFailed`` is a ``TransientFailure``. What became of an inherited checkpoint that
   was not resumed is logged (``checkpoint not resumed``).
4. **Handover**: a copy that stopped at its handover point is handed over
   (``continuation.py``: hop limit, checkpoint into the lease, lease to a fresh heir,
   continuation sent): ``handed_over``, or ``too_slow`` past ``EDGEFILL_MAX_HOPS``, or
   a ``continuation`` failure when SQS refused it.
5. **Release**, in ``finally``: the lease is deleted unless it now carries a checkpoint
   for a continuation or a redelivery (``LeaseSession.keep_lease``). S3 failing under the
   lease before the copy ended (throttling, 5xx: a ``StoreError``, a transient failure)
   never costs the checkpoint the lease carries, inherited or saved: the lease is
   rewritten as expired with it instead of released, and the upload is left open, so the
   redelivery (or any later miss) takes the lease and resumes
   (``LeaseSession.leave_to_redelivery``).

The origin URL is built here too, once for both flows: the message's path, with its
query only under ``EDGEFILL_QUERY=forward``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aws_lambda_powertools.metrics import MetricUnit

from backfill_worker.flight.continuation import ContinuationNotSent, GivenUp, LeaseSession
from backfill_worker.flight.invocation import Invocation
from backfill_worker.flight.lease import Lease, SingleFlight
from backfill_worker.flight.outcome import Outcome, Skip, TransientFailure
from backfill_worker.flight.telemetry import Telemetry
from backfill_worker.transfer.checkpoint import Checkpoint
from backfill_worker.transfer.errors import CopyFailed, CopyRefused
from backfill_worker.transfer.plan import CopyPlan
from backfill_worker.transfer.progress import Progress
from shared.config import BackfillConfig
from shared.keys import ObjectKey
from shared.messages import BackfillMessage
from shared.object_store import ObjectStore, StoreError
from shared.origin import OriginClient, OriginError

T = TypeVar("T")


@dataclass
class LeasedCopy:
    """One record's copy of ``key`` under its lease, with the worker's adapters."""

    message: BackfillMessage
    key: ObjectKey
    invocation: Invocation
    config: BackfillConfig
    store: ObjectStore
    origin: OriginClient
    sqs: Any | None  # continuations go through it, to EDGEFILL_BACKFILL_QUEUE_URL
    telemetry: Telemetry
    # Lease expiries outlive a worker: wall clock (tests move it).
    wall_clock: Callable[[], float] = time.time
    flight: SingleFlight = field(init=False)

    def __post_init__(self) -> None:
        self.flight = SingleFlight(self.store, self.wall_clock)

    def origin_url(self) -> str:
        """The origin URL of the message (its query only under ``EDGEFILL_QUERY=forward``)."""
        query = self.message.query if self.config.query == "forward" else ""
        return self.origin.url_for(self.message.uri, query)

    def plan(self) -> CopyPlan:
        """The copy plan of this invocation (deadline, handover point)."""
        return self.invocation.plan(self.config)

    @contextmanager
    def held(self, busy: str) -> Iterator[LeaseSession]:
        """Step 2 and 5: the key's lease for the ``with`` block, released after it unless
        kept; ``Skip("leased", busy)`` while another worker holds it."""
        owner, seconds = self.invocation.lease_holder()
        lease = self.flight.acquire(self.key.key, owner, seconds, heir=self.message.handover)
        if lease is None:
            raise Skip("leased", busy)
        session = LeaseSession(self.flight, lease, self.store, self.key.key)
        try:
            yield session
        except StoreError:
            # S3 failed (throttled, 5xx) before the copy ended: a release would drop the
            # checkpoint and orphan its upload; the redelivery resumes instead.
            if not session.copy_ended:
                session.leave_to_redelivery()
            raise
        finally:
            if not session.keep_lease:
                self._release(lease)

    def run(
        self,
        session: LeaseSession,
        copy: Callable[[CopyPlan, Progress], T],
        refused: Callable[[Exception], None] | None = None,
    ) -> T:
        """Step 3: ``copy(plan, progress)`` under ``session``, its errors mapped to the
        record's outcomes; ``refused(error)`` runs before a permanent one becomes a skip."""
        try:
            result = copy(self.plan(), session.progress())
            session.copy_ended = True  # completed, or handed over: its upload is settled
            return result
        except OriginError as error:
            if not error.permanent:
                raise TransientFailure(error.kind, error.reason) from error
            if refused is not None:
                refused(error)
            raise Skip(error.kind, error.reason) from error
        except CopyRefused as error:
            if refused is not None:
                refused(error)
            raise Skip(
                error.reason, error.detail, error.directive, error.rule, refused=error.refused
            ) from error
        except CopyFailed as error:
            raise TransientFailure(error.reason, error.detail) from error
        finally:
            self._log_notes(session)

    def hand_over(self, session: LeaseSession, checkpoint: Checkpoint) -> Outcome:
        """Step 4: the copy reached its handover point: continue it in another invocation."""
        queue_url = self.config.backfill_queue_url
        assert queue_url is not None  # a plan has a handover point only with a queue
        try:
            sent = session.hand_over(
                checkpoint,
                self.message,
                max_hops=self.config.max_hops,
                queue_url=queue_url,
                sqs=self.sqs,
            )
        except GivenUp as error:  # past EDGEFILL_MAX_HOPS: an operator must see it
            raise Skip(error.reason, error.detail, refused=True) from error
        except ContinuationNotSent as error:
            raise TransientFailure(error.reason, error.detail) from error
        done = sum(part.size for part in checkpoint.parts)
        self.telemetry.logger.info(
            "backfill handed over",
            extra={
                "key": self.key.key,
                "hop": sent.hop,
                "partsDone": len(checkpoint.parts),
                "parts": checkpoint.count,
                "bytesDone": done,
                "bytes": checkpoint.length,
            },
        )
        self.telemetry.metrics.add_metric(name="HandedOver", unit=MetricUnit.Count, value=1)
        return Outcome("handed_over", "handed_over", self.key.key, done)

    def _log_notes(self, session: LeaseSession) -> None:
        """What became of an inherited checkpoint that was not resumed."""
        for event, detail in session.notes:
            self.telemetry.logger.warning(
                "checkpoint not resumed", extra={"event": event, "detail": detail[:300]}
            )
        session.notes.clear()

    def _release(self, lease: Lease) -> None:
        logger = self.telemetry.logger
        try:
            if not self.flight.release(lease):
                logger.warning("lease was taken over before release", extra={"lease": lease.key})
        except StoreError as error:
            # The lease expires by itself; the copy's own outcome matters more.
            logger.warning("lease release failed", extra={"lease": lease.key, "detail": str(error)})
