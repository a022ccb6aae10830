"""How a copy ends when it does not end in a ``CopyResult``: refused (permanent), failed
(transient) or unchanged (a refresh's copy already holds that version)."""

from __future__ import annotations

from shared.reasons import ReasonedError


class CopyRefused(ReasonedError):
    """The object must not be copied (see ``storable``, or oversize): permanent, no retry
    helps. ``directive`` names the header that decided, when one did; ``refused``: the
    record goes to the DLQ with its reason rather than ending as a skip (an outcome of the
    origin's answer, the default; ``flight/outcome.py``)."""

    def __init__(
        self, reason: str, detail: str, directive: str | None = None, *, refused: bool = False
    ) -> None:
        super().__init__(reason, detail)
        self.directive = directive
        self.refused = refused


class CopyFailed(ReasonedError):
    """The bytes did not check out (length, MD5, origin changed): transient, retried."""


class CopyUnchanged(Exception):
    """The origin answered 304, or 200 with the version the copy already holds."""
