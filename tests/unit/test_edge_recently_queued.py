"""The edge's memory of recently queued objects: bounded, time-limited, oldest out first."""

from __future__ import annotations

import pytest

from edge_origin_request.recently_queued import (
    DUPLICATE_MEMORY_CAPACITY,
    DUPLICATE_MEMORY_TTL_SECONDS,
    RecentlyQueued,
    object_digest,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_named_constants_bound_memory_and_time() -> None:
    assert 0 < DUPLICATE_MEMORY_CAPACITY <= 100_000
    assert 0 < DUPLICATE_MEMORY_TTL_SECONDS <= 3600


def test_remembered_object_is_seen_until_the_ttl_passes() -> None:
    # Given a memory with a 10 s TTL
    clock = FakeClock()
    memory = RecentlyQueued(capacity=8, ttl_seconds=10, clock=clock)
    digest = object_digest("cdn.example.com", "/a.jpg", "")
    # When the object is remembered
    memory.remember(digest)
    # Then it is seen just before the TTL ends, and forgotten at the TTL
    clock.now += 9.99
    assert memory.seen(digest)
    clock.now += 0.01
    assert not memory.seen(digest)
    assert len(memory) == 0


def test_unknown_object_is_not_seen() -> None:
    memory = RecentlyQueued(capacity=8, ttl_seconds=10, clock=FakeClock())
    assert not memory.seen(object_digest(None, "/a.jpg", ""))


def test_capacity_evicts_the_oldest_entry_first() -> None:
    # Given a memory holding 3 objects at most
    clock = FakeClock()
    memory = RecentlyQueued(capacity=3, ttl_seconds=60, clock=clock)
    digests = [object_digest("h", f"/{i}.jpg", "") for i in range(5)]
    # When 5 distinct objects are remembered
    for digest in digests:
        clock.now += 1
        memory.remember(digest)
    # Then only the 3 newest are kept
    assert len(memory) == 3
    assert [memory.seen(d) for d in digests] == [False, False, True, True, True]


def test_capacity_holds_under_many_distinct_objects() -> None:
    memory = RecentlyQueued(capacity=100, ttl_seconds=60, clock=FakeClock())
    for i in range(10_000):
        memory.remember(object_digest("h", f"/{i}", ""))
        assert len(memory) <= 100


def test_expired_entries_are_dropped_when_new_ones_arrive() -> None:
    clock = FakeClock()
    memory = RecentlyQueued(capacity=100, ttl_seconds=5, clock=clock)
    for i in range(10):
        memory.remember(object_digest("h", f"/{i}", ""))
    clock.now += 6
    memory.remember(object_digest("h", "/new", ""))
    assert len(memory) == 1


def test_digest_distinguishes_host_uri_and_query() -> None:
    base = object_digest("a.example.com", "/x", "q=1")
    assert base == object_digest("a.example.com", "/x", "q=1")
    assert base != object_digest("b.example.com", "/x", "q=1")
    assert base != object_digest("a.example.com", "/y", "q=1")
    assert base != object_digest("a.example.com", "/x", "q=2")
    assert object_digest(None, "/x", "") == object_digest("", "/x", "")
    assert len(base) == 16


def test_capacity_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="capacity"):
        RecentlyQueued(capacity=0)
