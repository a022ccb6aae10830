"""What a copy that outlasts its invocation does at the handover point: hand over, or
give up.

The copy has stopped starting parts and returned its checkpoint. Then, in this order:

1. past ``EDGEFILL_MAX_HOPS`` continuations the copy is given up (``too_slow``): its
   upload is aborted and the lease released by the caller; the record succeeds, so the
   same object never loops forever;
2. the checkpoint is written into the lease, which passes to a fresh token (``heir``)
   with ``IfMatch``: from this write on, only the continuation carrying that token may
   take the lease before it expires, so no other worker can start a second copy;
3. the continuation (the same backfill message with ``hop`` + 1 and ``handover`` =
   the token; any other field, such as a refresh mode, travels with it) is sent to
   ``EDGEFILL_BACKFILL_QUEUE_URL`` with no delay, and the record succeeds: it burns no
   receive of its own.

When the continuation cannot be sent, or S3 refuses the lease write of step 2, the lease
is rewritten as expired, checkpoint kept (left as it is if S3 refuses that too: it
expires by itself), and the record fails: SQS redelivers it and the redelivery resumes
from the checkpoint.
"""

from __future__ import annotations

import contextlib
import dataclasses
import uuid
from typing import Any, Final

from backfill_worker.flight.lease import Lease, SingleFlight
from backfill_worker.transfer.checkpoint import Checkpoint
from backfill_worker.transfer.progress import Progress
from backfill_worker.transfer.resume import abort_if_ours
from shared.messages import BackfillMessage, to_json
from shared.object_store import ObjectStore, StoreError
from shared.queues import send_failure
from shared.reasons import ReasonedError

# How long a handed-over lease waits for its continuation before anyone may take it
# (with the checkpoint): Lambda's longest timeout, time for a throttled queue to drain.
HANDOVER_LEASE_SECONDS: Final = 900.0


class GivenUp(ReasonedError):
    """The copy is abandoned for good (``reason``); the record succeeds."""


class ContinuationNotSent(ReasonedError):
    """The continuation did not go out (``reason``: ``continuation``); the record must
    fail (and be redelivered)."""

    def __init__(self, detail: str) -> None:
        super().__init__("continuation", detail)


class LeaseSession:
    """One record's lease over a resumable copy: its checkpoint saves, its handover."""

    def __init__(
        self,
        flight: SingleFlight,
        lease: Lease,
        store: ObjectStore,
        object_key: str,
        notes: list[tuple[str, str]] | None = None,
    ) -> None:
        self.flight = flight
        self.lease = lease
        self.store = store
        self.object_key = object_key
        self.notes = notes if notes is not None else []
        self.keep_lease = False  # True once the lease carries a checkpoint to pass on
        self.copy_ended = False  # the copy returned: completed, or stopped to hand over

    def progress(self) -> Progress:
        """The copy's view of the lease: inherited checkpoint, saves, notes."""
        return Progress(
            inherited=self.lease.checkpoint,
            save=lambda checkpoint: self.flight.save(self.lease, checkpoint.to_dict()),
            note=lambda event, detail: self.notes.append((event, detail)),
            keep=self._keep,
        )

    def _keep(self, checkpoint: Checkpoint) -> bool:
        """The copy failed on the way: leave the lease open to the redelivery (expired at
        once), with ``checkpoint`` in it, instead of releasing it."""
        if not self.flight.expire(self.lease, checkpoint.to_dict()):
            return False
        self.keep_lease = True
        return True

    def leave_to_redelivery(self) -> None:
        """S3 failed before the copy ended: keep the lease's checkpoint (inherited, or the
        last one saved) for the redelivery, the lease expired at once rather than
        released. If S3 refuses that rewrite too, the lease is left as it is: it expires
        by itself, checkpoint inside. Without a checkpoint there is nothing to keep."""
        if self.keep_lease or self.lease.checkpoint is None:
            return
        self.keep_lease = True  # rewritten or not, the lease must not be deleted now
        # Refused too: the lease expires by itself (its holder's time left + the margin).
        with contextlib.suppress(StoreError):
            self.flight.expire(self.lease, self.lease.checkpoint)

    def abandon_inherited(self) -> None:
        """The object is there already: an inherited upload is an orphan, abort it."""
        inherited = self.lease.checkpoint or {}
        abort_if_ours(self.store, self.object_key, inherited.get("uploadId"))

    def hand_over(
        self,
        checkpoint: Checkpoint,
        message: BackfillMessage,
        *,
        max_hops: int,
        queue_url: str,
        sqs: Any,
    ) -> BackfillMessage:
        """Pass the copy to a continuation; returns the message sent. Raises ``GivenUp``
        past ``max_hops``, ``ContinuationNotSent`` when the lease or SQS says no."""
        if message.hop + 1 > max_hops:
            self.store.abort(self.object_key, checkpoint.upload_id)
            raise GivenUp(
                "too_slow",
                f"not copied after {message.hop + 1} invocations "
                f"(EDGEFILL_MAX_HOPS={max_hops}); upload aborted",
            )
        token = str(uuid.uuid4())
        saved = checkpoint.to_dict()
        try:
            handed = self.flight.hand_over(self.lease, saved, token, HANDOVER_LEASE_SECONDS)
        except StoreError as error:
            # S3 throttled the write: the redelivery resumes from this checkpoint instead.
            self.keep_lease = True
            with contextlib.suppress(StoreError):
                self.flight.expire(self.lease, saved)
            raise ContinuationNotSent(f"the lease was not handed over: {error}") from error
        if not handed:
            raise ContinuationNotSent("the lease was taken over before the handover")
        self.keep_lease = True  # from here on the lease holds the checkpoint to go on from
        continuation = dataclasses.replace(message, hop=message.hop + 1, handover=token)
        failure = send_failure(sqs, queue_url, [to_json(continuation)])
        if failure is not None:
            failure = failure[:300]
            try:
                self.flight.expire(self.lease, saved)
            except StoreError as error:
                failure += f"; and the lease could not be opened for the redelivery: {error}"
            raise ContinuationNotSent(f"continuation not sent: {failure}")
        return continuation
