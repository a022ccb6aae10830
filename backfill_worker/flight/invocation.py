"""One invocation's time, as the copies of its records spend it.

A copy may start parts until the invocation's end minus a reserve (``deadline``): the
time to abort an unfinished upload and release the lease. A worker whose copies hand
over (``EDGEFILL_BACKFILL_QUEUE_URL`` set) stops starting parts earlier, at the handover
point (``EDGEFILL_HANDOVER_SECONDS`` before the end), and keeps half that time for the
parts in flight and the cleanup margin inside it. Without a Lambda context (the CLI,
tests) nothing bounds a copy and a lease lasts ``DEFAULT_LEASE_SECONDS``.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Final, Protocol

from backfill_worker.flight.outcome import TransientFailure
from backfill_worker.transfer.plan import CopyPlan
from shared.config import BackfillConfig

# Without a Lambda context (CLI, tests) a lease lasts this long plus the margin.
DEFAULT_LEASE_SECONDS: Final = 900.0


class InvocationContext(Protocol):
    """What the worker uses of the Lambda context."""

    aws_request_id: str

    def get_remaining_time_in_millis(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Invocation:
    """The invocation a record runs in: its ``context`` (None outside Lambda), the
    ``reserve_seconds`` kept back at its end, and ``handover_seconds`` (None: its copies
    never hand over)."""

    context: InvocationContext | None
    reserve_seconds: float
    handover_seconds: float | None = None

    def reserve(self) -> float:
        """Seconds kept back at the end of the invocation for the cleanup."""
        # A worker that hands over keeps half its handover time for the parts in flight
        # and the cleanup margin inside it (the reserve unless the handover is shorter).
        if self.handover_seconds is not None:
            return min(self.reserve_seconds, self.handover_seconds / 2)
        return self.reserve_seconds

    def check_deadline(self) -> None:
        """Raise ``TransientFailure("deadline")`` when no copy budget is left."""
        if self.context is None:
            return
        if self.context.get_remaining_time_in_millis() / 1000 - self.reserve() <= 0:
            # A record behind a long copy in its batch: starting it could not finish in
            # time, so it goes back to the queue untouched.
            raise TransientFailure("deadline", "no copy budget left in this invocation")

    def plan(self, config: BackfillConfig) -> CopyPlan:
        """The copy plan of ``config`` with this invocation's deadline and handover point."""
        deadline = handover_at = None
        if self.context is not None:
            now, remaining = time.monotonic(), self.context.get_remaining_time_in_millis() / 1000
            deadline = now + remaining - self.reserve()
            if self.handover_seconds is not None:
                handover_at = now + remaining - self.handover_seconds
        return CopyPlan(
            max_object_bytes=config.max_object_bytes,
            part_bytes=config.part_bytes,
            parts_in_flight=config.parts_in_flight,
            deadline=deadline,
            handover_at=handover_at,
        )

    def lease_holder(self) -> tuple[str, float]:
        """Who holds a lease taken now, and for how many seconds (plus the margin)."""
        if self.context is None:
            return f"local-{uuid.uuid4()}", DEFAULT_LEASE_SECONDS
        return self.context.aws_request_id, self.context.get_remaining_time_in_millis() / 1000
