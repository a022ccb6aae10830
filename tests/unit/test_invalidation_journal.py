"""The invalidation journal's layout in the bucket: records in time order with the URI in
the key (a long URI in the body), forged keys skipped, one reminder per window."""

from __future__ import annotations

from typing import Any

from backfill_worker.freshness.invalidation_journal import (
    PATHS_PREFIX,
    WINDOWS_PREFIX,
    InvalidationJournal,
)
from shared.object_store import ListedKey, ObjectAttributes

NOW = 1_800_000_030.0


class DictStore:
    """The few ObjectStore calls the journal makes, on a dict."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def put_small(self, key: str, body: bytes) -> None:
        self.objects[key] = body

    def get_small(self, key: str, limit: int = 64 * 1024) -> bytes | None:
        return self.objects.get(key)

    def put_if_absent(self, key: str, data: bytes, attributes: ObjectAttributes) -> bool:
        if key in self.objects:
            return False
        self.objects[key] = data
        return True

    def list_page(
        self, prefix: str, start_after: str | None = None, max_keys: int = 1000
    ) -> tuple[list[ListedKey], bool]:
        keys = sorted(k for k in self.objects if k.startswith(prefix) and k > (start_after or ""))
        return [ListedKey(k, len(self.objects[k])) for k in keys[:max_keys]], len(keys) > max_keys

    def delete_keys(self, keys: list[str]) -> list[str]:
        for key in keys:
            self.objects.pop(key, None)
        return []


def journal(clock: list[float], reminders: list[str] | None = None) -> InvalidationJournal:
    store: Any = DictStore()
    remind = (lambda window: reminders.append(window) or True) if reminders is not None else None
    return InvalidationJournal(store, lambda: clock[0], remind, window_seconds=60)


def test_records_come_back_oldest_first_with_their_uri_and_kind() -> None:
    clock = [NOW]
    kept = journal(clock)
    kept.record("/b.html", "replaced")
    clock[0] += 61
    kept.record("/a%20b.jpg", "deleted")
    long_uri = "/" + "%E6%97%A5" * 120  # 1 080 bytes: too long for a key with the prefix
    clock[0] += 1  # records of one second come in their nonces' order
    kept.record(long_uri, "replaced")
    found = kept.pending(10)
    assert [(r.uri, r.kind) for r in found] == [
        ("/b.html", "replaced"),
        ("/a%20b.jpg", "deleted"),
        (long_uri, "replaced"),
    ]
    assert found[0].key.endswith(".replaced/b.html") and not found[2].key.endswith(long_uri)
    assert kept.oldest_age() == 62


def test_a_forged_or_garbled_record_is_skipped() -> None:
    kept = journal([NOW])
    store = kept.store
    store.put_small(PATHS_PREFIX + "yesterday/abc.replaced/x", b"{}")  # type: ignore[attr-defined]
    store.put_small(PATHS_PREFIX + "2027-01-15T08:00:30Z/abc.evil/x", b"{}")  # type: ignore[attr-defined]
    store.put_small(PATHS_PREFIX + "2027-01-15T08:00:30Z/abc.replaced", b"[1]")  # type: ignore[attr-defined]
    kept.record("/ok.html", "replaced")
    assert [r.uri for r in kept.pending(10)] == ["/ok.html"]


def test_one_reminder_per_window_however_many_records() -> None:
    clock, reminders = [NOW], []
    kept = journal(clock, reminders)
    assert kept.schedule() and kept.schedule()
    assert reminders == ["2027-01-15T08:00:00Z"]
    clock[0] += 60  # the next window
    assert kept.schedule()
    assert reminders == ["2027-01-15T08:00:00Z", "2027-01-15T08:01:00Z"]
    kept.close("2027-01-15T08:00:00Z")
    assert sorted(k for k in kept.store.objects if k.startswith(WINDOWS_PREFIX)) == [  # type: ignore[attr-defined]
        WINDOWS_PREFIX + "2027-01-15T08:01:00Z"
    ]


def test_a_reminder_sqs_refused_is_tried_again_by_the_next_record() -> None:
    sent: list[str] = []
    answers = iter([False, True])

    def remind(window: str) -> bool:
        sent.append(window)
        return next(answers)

    store: Any = DictStore()
    kept = InvalidationJournal(store, lambda: NOW, remind, window_seconds=60)
    assert not kept.schedule()  # the caller sends its paths itself
    assert kept.schedule() and len(sent) == 2
