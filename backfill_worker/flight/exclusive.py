"""One run at a time of a scheduled job, by a lease rather than reserved concurrency.

Two sweeps at once would send the same refreshes twice. The template used to prevent it
with ``ReservedConcurrentExecutions: 1``, which breaks the stack on new and low-quota
accounts: Lambda refuses any reservation that would leave the account's unreserved
concurrency below its minimum (docs/DEPLOY.md, "Lambda concurrency"). A scheduled run
overlaps another only rarely (an EventBridge delivery twice, a retry of a run still
going), so a lease is enough:

- the run takes the lease ``run_name`` with ``lease.py``'s ``SingleFlight`` (created with
  ``IfNoneMatch='*'``: one taker wins; an expired one is taken over with ``IfMatch``) for
  the invocation's remaining time plus ``LEASE_MARGIN_SECONDS``. Lambda ends the
  invocation by then, so a live lease always means a run still going;
- a run that finds a live lease does nothing and says so;
- the lease is released (``IfMatch``) when the run ends, and a crashed run's lease simply
  expires: the next scheduled run takes it over.

A run name lies under ``_edgefill/`` (``SWEEP_RUN``), where no object key can (CONTRACTS
§4): its lease never meets a copy's.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Final

from backfill_worker.flight.lease import SingleFlight
from shared.keys import RESERVED_PREFIX
from shared.object_store import StoreError

# The sweep's run lease is lease_key(SWEEP_RUN) (the template grants the sweep that one
# object, by name: tests/unit/test_template_operations.py pins it).
SWEEP_RUN: Final = RESERVED_PREFIX + "runs/sweep"


@contextmanager
def exclusive_run(
    flight: SingleFlight, run_name: str, owner: str, seconds: float
) -> Iterator[bool]:
    """True inside the ``with`` block when this run holds ``run_name``'s lease for
    ``seconds`` (+ margin), False while another run holds it. ``StoreError`` when S3
    cannot be asked: the invocation fails and the scheduler's retry tries again."""
    lease = flight.acquire(run_name, owner, seconds)
    if lease is None:
        yield False
        return
    try:
        yield True
    finally:
        # A lease not released expires by itself; the run's own outcome matters more.
        with suppress(StoreError):
            flight.release(lease)
