"""How a copy ends when it does not end in a ``CopyResult``: refused (permanent), failed
(transient) or unchanged (a refresh's copy already holds that version)."""

from __future__ import annotations

from shared.reasons import ReasonedError


class CopyRefused(ReasonedError):
    """The object must not be copied (see ``storable``, or oversize): permanent, no retry
    helps. ``directive`` names the header that decided, when one did."""

    def __init__(self, reason: str, detail: str, directive: str | None = None) -> None:
        super().__init__(reason, detail)
        self.directive = directive


class CopyFailed(ReasonedError):
    """The bytes did not check out (length, MD5, origin changed): transient, retried."""


class CopyUnchanged(Exception):
    """The origin answered 304, or 200 with the version the copy already holds."""
