"""How one backfill record ends: an ``Outcome``, or early, retried (``TransientFailure``)
or skipped (``Skip``, a permanent outcome logged with its reason). Fill and refresh raise
and return these; ``backfill_worker/record.py`` logs and counts them."""

from __future__ import annotations

from dataclasses import dataclass

from shared.reasons import ReasonedError


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one record; ``reason`` is the metric dimension."""

    status: str  # "copied", "skipped", "refreshed", "handed_over"
    reason: str
    key: str | None = None
    size: int = 0


class TransientFailure(ReasonedError):
    """The record should be retried (SQS redelivers it, then moves it to the DLQ)."""


class Skip(ReasonedError):
    """The record succeeds without a copy; ``reason`` is the metric dimension,
    ``directive`` the header that decided and ``rule`` the rule, when one did."""

    def __init__(
        self, reason: str, detail: str, directive: str | None = None, rule: str | None = None
    ) -> None:
        super().__init__(reason, detail)
        self.directive = directive
        self.rule = rule
