"""How one backfill record ends: an ``Outcome``, or early, retried (``TransientFailure``)
or skipped (``Skip``, a permanent outcome logged with its reason). Shared by
``backfill.py`` and the modules it hands a record to (``refresh_record.py``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one record; ``reason`` is the metric dimension."""

    status: str  # "copied", "skipped", "refreshed", "handed_over"
    reason: str
    key: str | None = None
    size: int = 0


class TransientFailure(Exception):
    """The record should be retried (SQS redelivers it, then moves it to the DLQ)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


class Skip(Exception):
    """The record succeeds without a copy; ``reason`` is the metric dimension,
    ``directive`` the header that decided, when one did."""

    def __init__(self, reason: str, detail: str, directive: str | None = None) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.directive = directive
