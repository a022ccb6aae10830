"""Errors that end in a named outcome: ``reason`` is the word a log line's ``reason`` and
a metric's dimension carry (``too_slow``, ``md5``, ``uncacheable``...), ``detail`` the
sentence for the person reading the log."""

from __future__ import annotations


class ReasonedError(Exception):
    """An error with a ``reason`` (a short, stable word) and a ``detail`` (free text);
    its message is ``"<reason>: <detail>"``."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class DecidedError(ReasonedError):
    """A ``ReasonedError`` that a rule may have decided: ``directive`` the header that
    decided and ``rule`` the rule, when one did; ``refused`` says the record goes to its
    DLQ with the reason rather than ending as a logged outcome (the default)."""

    def __init__(
        self,
        reason: str,
        detail: str,
        directive: str | None = None,
        rule: str | None = None,
        *,
        refused: bool = False,
    ) -> None:
        super().__init__(reason, detail)
        self.directive = directive
        self.rule = rule
        self.refused = refused
