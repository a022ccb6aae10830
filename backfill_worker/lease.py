"""Single-flight copies: one lease object per key, so a hot miss is copied once.

A lease is ``_edgefill/leases/<sha256 of key>`` holding its owner and an expiry. It is
created with ``IfNoneMatch='*'`` (only one worker wins), taken over only once expired and
only with ``IfMatch`` on the ETag that was read (only one taker wins), and deleted with
``IfMatch`` (a worker that overran its lease cannot delete its successor's). It is never
permanent: it expires at the end of its holder's invocation plus a margin, and a lease
whose body cannot be read counts as expired.
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

LEASE_PREFIX: Final = RESERVED_PREFIX + "leases/"
# Past the holder's deadline the lease still stands this long: Lambda may take a moment
# to stop a timed-out invocation, and clocks of two workers differ a little.
LEASE_MARGIN_SECONDS: Final = 60.0
# Create → read → take over can lose races (a release in between); a few rounds settle it.
_ROUNDS: Final = 3


def lease_key(object_key: str) -> str:
    """The lease object of ``object_key``."""
    return LEASE_PREFIX + hashlib.sha256(object_key.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class Lease:
    """A lease this worker holds."""

    key: str
    etag: str
    owner: str
    expires_at: float


class SingleFlight:
    """Acquire and release leases in ``store``; ``clock`` is injectable for tests."""

    def __init__(self, store: ObjectStore, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock

    def acquire(self, object_key: str, owner: str, seconds: float) -> Lease | None:
        """A lease on ``object_key`` for ``seconds`` + margin, or None while another live
        lease exists (its holder is copying the object)."""
        key = lease_key(object_key)
        expires_at = self.clock() + seconds + LEASE_MARGIN_SECONDS
        body = json.dumps(
            {"v": 1, "key": object_key, "owner": owner, "expiresAt": expires_at}
        ).encode("utf-8")
        for _ in range(_ROUNDS):
            etag = self.store.create_lease(key, body)
            if etag is not None:
                return Lease(key=key, etag=etag, owner=owner, expires_at=expires_at)
            current = self.store.read_lease(key)
            if current is None:
                continue  # released between our create and our read: try again
            if not self._expired(current.body):
                return None
            etag = self.store.replace_lease(key, body, current.etag)
            if etag is None:
                return None  # another worker took it over first
            return Lease(key=key, etag=etag, owner=owner, expires_at=expires_at)
        return None

    def release(self, lease: Lease) -> bool:
        """Delete the lease if it is still ours; False when another worker had taken it."""
        return self.store.delete_lease(lease.key, lease.etag)

    def _expired(self, body: bytes) -> bool:
        try:
            expires_at = float(json.loads(body)["expiresAt"])
        except (ValueError, KeyError, TypeError):
            return True  # an unreadable lease must not block the key forever
        return expires_at <= self.clock()
