"""Single-flight copies: one lease object per key, so a hot miss is copied once.

A lease is ``_edgefill/leases/<sha256 of key>`` holding its owner and an expiry. It is
created with ``IfNoneMatch='*'`` (only one worker wins), taken over only once expired and
only with ``IfMatch`` on the ETag that was read (only one taker wins), and deleted with
``IfMatch`` (a worker that overran its lease cannot delete its successor's). It is never
permanent: it expires at the end of its holder's invocation plus a margin, and a lease
whose body cannot be read counts as expired.

A copy longer than one invocation keeps its checkpoint in its lease (``save``, with
``IfMatch``), and at its handover point passes the lease to a continuation message
(``hand_over``): the body names the continuation's token as ``heir``, and only that
continuation may take the lease before it expires. Whoever takes a lease over inherits
its checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from shared.keys import RESERVED_PREFIX
from shared.object_store import ObjectStore

LEASE_PREFIX: Final = RESERVED_PREFIX + "leases/"
# Past the holder's deadline the lease still stands this long: Lambda may take a moment
# to stop a timed-out invocation, and clocks of two workers differ a little.
LEASE_MARGIN_SECONDS: Final = 60.0
# Create → read → take over can lose races (a release in between); a few rounds settle it.
_ROUNDS: Final = 3
# The owner of a lease between a handover and the continuation taking it.
_HANDED_OVER: Final = "handed-over"


def lease_key(object_key: str) -> str:
    """The lease object of ``object_key``."""
    return LEASE_PREFIX + hashlib.sha256(object_key.encode("utf-8")).hexdigest()


@dataclass(slots=True)
class Lease:
    """A lease this worker holds. ``etag`` follows each conditional rewrite (checkpoint
    saves); ``checkpoint`` is the raw checkpoint inherited from the previous holder
    (unchecked: ``checkpoint.checkpoint_from`` decides whether to trust it)."""

    key: str
    etag: str
    owner: str
    expires_at: float
    object_key: str = ""
    checkpoint: dict[str, Any] | None = None


class SingleFlight:
    """Acquire, rewrite and release leases in ``store``; ``clock`` is injectable for tests."""

    def __init__(self, store: ObjectStore, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock
        self._writing = threading.Lock()  # one conditional rewrite at a time per holder

    def acquire(
        self, object_key: str, owner: str, seconds: float, heir: str | None = None
    ) -> Lease | None:
        """A lease on ``object_key`` for ``seconds`` + margin, or None while another live
        lease exists (its holder is copying the object).

        ``heir`` is the token of a continuation: a lease handed over to that token is
        taken at once, live or not, so no other worker gets a window between the two
        invocations. A lease taken over keeps the checkpoint its body carried."""
        key = lease_key(object_key)
        expires_at = self.clock() + seconds + LEASE_MARGIN_SECONDS
        body = _body(object_key, owner, expires_at)
        for _ in range(_ROUNDS):
            etag = self.store.create_lease(key, body)
            if etag is not None:
                return Lease(key, etag, owner, expires_at, object_key)
            current = self.store.read_lease(key)
            if current is None:
                continue  # released between our create and our read: try again
            previous = _parse(current.body)
            inherited = _same_key_checkpoint(previous, object_key)
            handed_to_us = heir is not None and previous.get("heir") == heir
            if not handed_to_us and not self._expired(previous):
                return None
            new_body = _body(object_key, owner, expires_at, inherited)
            etag = self.store.replace_lease(key, new_body, current.etag)
            if etag is None:
                return None  # another worker took it over first
            return Lease(key, etag, owner, expires_at, object_key, inherited)
        return None

    def save(self, lease: Lease, checkpoint: dict[str, Any]) -> bool:
        """Write ``checkpoint`` into the lease if it is still ours (``IfMatch``); False
        when another worker has taken it (the copy must stop, leaving the upload)."""
        body = _body(lease.object_key, lease.owner, lease.expires_at, checkpoint)
        return self._rewrite(lease, body, checkpoint)

    def hand_over(
        self, lease: Lease, checkpoint: dict[str, Any], heir: str, seconds: float
    ) -> bool:
        """Pass the lease, with ``checkpoint``, to the continuation holding ``heir``; it
        stays live ``seconds`` + margin for anyone else. False when it was not ours."""
        expires_at = self.clock() + seconds + LEASE_MARGIN_SECONDS
        body = _body(lease.object_key, _HANDED_OVER, expires_at, checkpoint, heir)
        if not self._rewrite(lease, body, checkpoint):
            return False
        lease.owner, lease.expires_at = _HANDED_OVER, expires_at
        return True

    def expire(self, lease: Lease, checkpoint: dict[str, Any]) -> bool:
        """Keep ``checkpoint`` but let the next worker take the lease at once (the
        continuation could not be sent: a redelivery of the record resumes)."""
        expires_at = self.clock() - 1
        body = _body(lease.object_key, lease.owner, expires_at, checkpoint)
        if not self._rewrite(lease, body, checkpoint):
            return False
        lease.expires_at = expires_at
        return True

    def release(self, lease: Lease) -> bool:
        """Delete the lease if it is still ours; False when another worker had taken it."""
        return self.store.delete_lease(lease.key, lease.etag)

    def _rewrite(self, lease: Lease, body: bytes, checkpoint: dict[str, Any]) -> bool:
        with self._writing:
            etag = self.store.replace_lease(lease.key, body, lease.etag)
            if etag is None:
                return False
            lease.etag = etag
            lease.checkpoint = checkpoint
            return True

    def _expired(self, body: dict[str, Any]) -> bool:
        try:
            expires_at = float(body["expiresAt"])
        except (ValueError, KeyError, TypeError):
            return True  # an unreadable lease must not block the key forever
        return expires_at <= self.clock()


def _body(
    object_key: str,
    owner: str,
    expires_at: float,
    checkpoint: dict[str, Any] | None = None,
    heir: str | None = None,
) -> bytes:
    body: dict[str, Any] = {"v": 1, "key": object_key, "owner": owner, "expiresAt": expires_at}
    if heir is not None:
        body["heir"] = heir
    if checkpoint is not None:
        body["checkpoint"] = checkpoint
    return json.dumps(body, separators=(",", ":")).encode("utf-8")


def _parse(body: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _same_key_checkpoint(body: dict[str, Any], object_key: str) -> dict[str, Any] | None:
    """The body's checkpoint, only when the body is for this very key (the lease name is
    a hash of the key: a body naming another key was written by someone else)."""
    checkpoint = body.get("checkpoint")
    if body.get("key") != object_key or not isinstance(checkpoint, dict):
        return None
    return checkpoint
