"""How one backfill record ends: an ``Outcome``, or early, retried (``TransientFailure``)
or skipped (``Skip``, a permanent outcome logged with its reason). Fill and refresh raise
and return these; ``backfill_worker/record.py`` logs and counts them.

A ``Skip`` is one of two kinds (docs/BACKFILL.md, "What reaches the DLQ"):

- an **outcome** (the default): the answer follows from the state of the bucket, the
  origin or the configuration, and every delivery of that path would end the same way
  (``exists``, ``filtered``, an origin 404, ``uncacheable``...). Logged, counted, done;
- a **refusal** (``refused=True``): the message itself can never be processed, or the
  worker gave it up at one of its limits, and an operator must see it (``bad_message``,
  ``bad_key``, ``non_canonical``, ``too_slow``). It is sent to the worker's DLQ with its
  reason (``shared/dead_letters.py``). A new reason is an outcome unless its raiser says
  ``refused=True``: the kind is decided where the reason is, not in a list elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.reasons import DecidedError, ReasonedError


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one record; ``reason`` is the metric dimension."""

    status: str  # "copied", "skipped", "refused", "refreshed", "handed_over"
    reason: str
    key: str | None = None
    size: int = 0


class TransientFailure(ReasonedError):
    """The record should be retried (SQS redelivers it, then moves it to the DLQ)."""


class Skip(DecidedError):
    """The record succeeds without a copy; ``reason`` is the metric dimension,
    ``directive`` the header that decided and ``rule`` the rule, when one did;
    ``refused``: a permanent refusal, sent to the DLQ with its reason (see the module
    docstring)."""
