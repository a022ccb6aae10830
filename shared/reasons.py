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
