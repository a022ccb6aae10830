"""Missing paths: an origin 404/410 is remembered, so a path that does not exist costs the
origin at most one GET per ``EDGEFILL_MISSING_TTL`` seconds, however many failovers queue
it (scanners, broken links, a viral dead URL).

A marker is ``_edgefill/missing/<sha256 of key>``, a small JSON object holding the key, the
status and until when it stands. The worker checks it before taking the lease (and again
once it holds the lease, so a copy racing the marker's write cannot ask twice). A marker
past its time is ignored and overwritten by the next 404; an unreadable one counts as
absent (it must never block a path for good). A bucket lifecycle rule deletes markers
after a day; viewers cannot read ``_edgefill/*`` (bucket policy, template.yaml).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from shared.keys import RESERVED_PREFIX
from shared.object_store import ObjectStore

MISSING_PREFIX: Final = RESERVED_PREFIX + "missing/"
# The statuses that say "this path does not exist", as opposed to "not for you" (403).
MISSING_STATUSES: Final = frozenset({404, 410})


def marker_key(object_key: str) -> str:
    """The missing-path marker of ``object_key``."""
    return MISSING_PREFIX + hashlib.sha256(object_key.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class Missing:
    """A remembered origin answer: ``status`` until ``until`` (epoch seconds)."""

    status: int
    until: float


class MissingPaths:
    """Remember and recall origin 404/410 answers in ``store``; ``clock`` for tests."""

    def __init__(
        self, store: ObjectStore, ttl_seconds: float, clock: Callable[[], float] = time.time
    ) -> None:
        self.store = store
        self.ttl_seconds = ttl_seconds
        self.clock = clock

    def recall(self, object_key: str) -> Missing | None:
        """The live marker of ``object_key``, or None (no marker, expired, unreadable)."""
        body = self.store.read_marker(marker_key(object_key))
        if body is None:
            return None
        try:
            data = json.loads(body)
            missing = Missing(status=int(data["status"]), until=float(data["until"]))
            same_key = data["key"] == object_key
        except (ValueError, KeyError, TypeError, RecursionError):
            return None
        if not same_key or missing.until <= self.clock():
            return None
        return missing

    def remember(self, object_key: str, status: int) -> Missing:
        """Record that the origin answered ``status`` for ``object_key``."""
        missing = Missing(status=status, until=self.clock() + self.ttl_seconds)
        body = json.dumps(
            {"v": 1, "key": object_key, "status": status, "until": missing.until}
        ).encode("utf-8")
        self.store.write_marker(marker_key(object_key), body)
        return missing
