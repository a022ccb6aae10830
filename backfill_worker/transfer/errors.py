"""How a copy ends when it does not end in a ``CopyResult``: refused (permanent), failed
(transient) or unchanged (a refresh's copy already holds that version)."""

from __future__ import annotations

from collections.abc import Mapping

from shared.reasons import DecidedError, ReasonedError


class CopyRefused(DecidedError):
    """The object must not be copied (see ``storable``, or oversize): permanent, no retry
    helps. ``directive`` names the header that decided and ``rule`` the rule, when one
    did; ``status`` is the origin's status when it was not a 200 (a redirect);
    ``refused``: the record goes to the DLQ with its reason rather than ending as a skip
    (an outcome of the origin's answer, the default; ``flight/outcome.py``)."""

    def __init__(
        self,
        reason: str,
        detail: str,
        directive: str | None = None,
        rule: str | None = None,
        status: int | None = None,
        *,
        refused: bool = False,
    ) -> None:
        super().__init__(reason, detail, directive, rule, refused=refused)
        self.status = status


class CopyFailed(ReasonedError):
    """The bytes did not check out (length, MD5, origin changed): transient, retried."""


class CopyUnchanged(Exception):
    """The origin answered 304, or a storable 200 with the version (or the very bytes)
    the copy already holds: ``status`` and ``headers`` are that answer's, from which the
    refresh updates the copy's header fields (RFC 9111 §4.3.4)."""

    def __init__(self, detail: str, status: int, headers: Mapping[str, str]) -> None:
        super().__init__(detail)
        self.status = status
        self.headers = dict(headers)
