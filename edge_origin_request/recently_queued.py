"""Duplicate suppression: what this container queued a moment ago.

A popular object missing from the regional bucket fails over on every cache miss until
the backfill lands; without this memory each of those misses would queue one more copy
of the same message. The memory lives in the container (Lambda@Edge runs one request at
a time per container), so across containers and edges duplicates remain possible: the
backfill worker is idempotent, this only keeps the queue from filling with them.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Final

# How many distinct (host, uri, query) a container remembers. Each entry is a 16-byte
# digest, a float and an OrderedDict node: about 200 bytes, so at most ~1 MiB whatever
# the URIs' length (they reach 8 KiB each; keeping them would cost up to 64 MiB).
DUPLICATE_MEMORY_CAPACITY: Final = 4096
# How long a queued object is not queued again by this container. Long enough for the
# backfill worker to copy a large object so the bucket stops missing it; short enough
# that an object whose backfill failed is asked for again within minutes.
DUPLICATE_MEMORY_TTL_SECONDS: Final = 300.0


def object_digest(host: str | None, uri: str, query: str, queue_url: str = "") -> bytes:
    """A fixed-size key for (host, uri, query, queue); NUL cannot occur in any of them.

    The queue is part of the key (issue 20): one replica serves viewers of several
    regions, and a miss in Frankfurt must not be taken for the one just queued for
    Singapore's bucket."""
    text = f"{host or ''}\x00{uri}\x00{query}\x00{queue_url}"
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


class RecentlyQueued:
    """A bounded, time-limited set of object digests (oldest evicted first)."""

    def __init__(
        self,
        capacity: int = DUPLICATE_MEMORY_CAPACITY,
        ttl_seconds: float = DUPLICATE_MEMORY_TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self._capacity = capacity
        self._ttl = ttl_seconds
        self._clock = clock
        # digest -> expiry time. Every entry lives for the same TTL and is inserted at the
        # end, so the dict is ordered by expiry: expired entries are always at the front.
        self._expiry: OrderedDict[bytes, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._expiry)

    def seen(self, digest: bytes) -> bool:
        """True while ``digest`` was remembered less than the TTL ago."""
        expiry = self._expiry.get(digest)
        if expiry is None:
            return False
        if self._clock() < expiry:
            return True
        del self._expiry[digest]
        return False

    def remember(self, digest: bytes) -> None:
        """Remember ``digest`` for the TTL, evicting expired and then oldest entries."""
        now = self._clock()
        self._expiry.pop(digest, None)
        self._expiry[digest] = now + self._ttl
        while self._expiry:
            oldest, expiry = next(iter(self._expiry.items()))
            if expiry > now and len(self._expiry) <= self._capacity:
                break
            del self._expiry[oldest]
