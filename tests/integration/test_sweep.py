"""The due index and the sweep against moto: only due copies are touched, nothing is lost."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from backfill_worker.freshness.due_index import (
    DUE_PREFIX,
    RESEND_AFTER,
    DueIndex,
    due_of,
    entry_key,
)
from backfill_worker.freshness.sweep import RefreshQueue, sweep
from shared.messages import parse_backfill
from shared.object_store import ObjectStore

BUCKET = "sweep-bucket"
NOW = datetime(2026, 11, 30, 12, 0, 0, tzinfo=UTC)


class Log:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str, dict[str, Any]]] = []

    def _add(self, level: str, msg: str, extra: dict[str, Any] | None = None) -> None:
        self.lines.append((level, msg, extra or {}))

    def info(self, msg: str, extra: dict[str, Any] | None = None) -> None:
        self._add("info", msg, extra)

    def warning(self, msg: str, extra: dict[str, Any] | None = None) -> None:
        self._add("warning", msg, extra)

    def error(self, msg: str, extra: dict[str, Any] | None = None) -> None:
        self._add("error", msg, extra)


@pytest.fixture
def world(s3: Any, sqs: Any) -> tuple[DueIndex, str]:
    s3.create_bucket(Bucket=BUCKET)
    queue = sqs.create_queue(QueueName="backfill")["QueueUrl"]
    return DueIndex(ObjectStore(s3, BUCKET)), queue


def drain(sqs: Any, queue: str) -> list[str]:
    uris: list[str] = []
    while True:
        got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
        if not got:
            return uris
        for message in got:
            parsed = parse_backfill(message["Body"])
            assert parsed.mode == "refresh"
            uris.append(parsed.uri)
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])


def test_only_due_copies_are_refreshed_and_their_entries_removed(
    world: tuple[DueIndex, str], s3: Any, sqs: Any
) -> None:
    index, queue = world
    # Given 25 copies due in the past, one due exactly now, and 30 due later
    for n in range(25):
        index.record(f"img/{n} é.jpg", NOW - timedelta(days=2), None, 3600 + n)
    index.record("now.txt", NOW - timedelta(hours=1), None, 3600)
    for n in range(30):
        index.record(f"later/{n}.css", NOW, None, 60 + n)
    # And an object that edgefill did not write (no entry) and a lease
    s3.put_object(Bucket=BUCKET, Key="foreign.txt", Body=b"x")
    s3.put_object(Bucket=BUCKET, Key="_edgefill/leases/abc", Body=b"{}")
    log = Log()
    # When the sweep runs
    report = sweep(index, RefreshQueue(sqs, queue, ""), NOW, lambda: 900.0, log)
    # Then exactly the 26 due copies get a refresh message, with their viewer URIs
    uris = drain(sqs, queue)
    assert sorted(uris) == sorted([f"/img/{n}%20%C3%A9.jpg" for n in range(25)] + ["/now.txt"])
    assert (report.due, report.sent, report.finished) == (26, 26, True)
    # And their entries are gone, each replaced by the one standing for its refresh (due
    # an hour later, should the refresh be lost); the 30 later ones stay; nothing else
    # was touched
    left = [
        item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET, Prefix=DUE_PREFIX)["Contents"]
    ]
    standing = [key for key in left if due_of(key) == NOW + RESEND_AFTER]
    assert len(left) == 56 and len(standing) == 26  # every one due by now
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix="foreign.txt")["KeyCount"] == 1
    # And a second run finds nothing due
    again = sweep(index, RefreshQueue(sqs, queue, ""), NOW, lambda: 900.0, log)
    assert (again.due, again.sent) == (0, 0)


def test_the_sweep_stops_at_its_deadline_and_the_next_run_continues(
    world: tuple[DueIndex, str], sqs: Any
) -> None:
    index, queue = world
    for n in range(250):
        index.record(f"k/{n:04d}", NOW - timedelta(days=1), None, 60)
    # Given an invocation with time for one chunk only
    budget = iter([900.0, 900.0, 0.0])
    first = sweep(index, RefreshQueue(sqs, queue, ""), NOW, lambda: next(budget, 0.0), Log())
    assert not first.finished and first.sent == 100
    # When the next run has time / Then it sends the rest, none twice
    second = sweep(index, RefreshQueue(sqs, queue, ""), NOW, lambda: 900.0, Log())
    assert second.finished and second.sent == 150
    uris = drain(sqs, queue)
    assert len(uris) == len(set(uris)) == 250


def test_bad_entries_are_removed_and_logged_not_sent(
    world: tuple[DueIndex, str], s3: Any, sqs: Any
) -> None:
    index, queue = world
    past = NOW - timedelta(hours=1)
    # Given hostile entries: not JSON, a key under _edgefill/, a traversal, a body that
    # belongs to another entry's name, a name whose time does not parse
    good = index.record("ok.txt", past, None, 0)
    s3.put_object(Bucket=BUCKET, Key=entry_key(past, "a"), Body=b"not json")
    for key in ("_edgefill/leases/x", "a/../../etc/passwd"):
        s3.put_object(Bucket=BUCKET, Key=entry_key(past, key), Body=json.dumps({"key": key}))
    s3.put_object(Bucket=BUCKET, Key=entry_key(past, "b"), Body=json.dumps({"key": "c"}))
    s3.put_object(Bucket=BUCKET, Key=DUE_PREFIX + "garbage/x", Body=b"{}")
    log = Log()
    report = sweep(index, RefreshQueue(sqs, queue, ""), NOW, lambda: 900.0, log)
    assert drain(sqs, queue) == ["/ok.txt"]
    assert report.bad_entries == 5
    assert any(level == "error" for level, _, _ in log.lines)
    # Then only the entry standing for ok.txt's refresh is left
    (left,) = s3.list_objects_v2(Bucket=BUCKET, Prefix=DUE_PREFIX)["Contents"]
    assert left["Key"] == entry_key(NOW + RESEND_AFTER, "ok.txt")
    assert good.startswith(DUE_PREFIX)


def test_a_failed_send_keeps_the_entry(world: tuple[DueIndex, str], s3: Any) -> None:
    index, queue = world
    index.record("keep.txt", NOW - timedelta(hours=2), None, 60)

    class RefusingSqs:
        def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> Any:  # noqa: N803
            return {
                "Failed": [
                    {"Id": e["Id"], "SenderFault": True, "Code": "KMS.Denied", "Message": "no"}
                    for e in Entries
                ]
            }

    report = sweep(index, RefreshQueue(RefusingSqs(), queue, ""), NOW, lambda: 900.0, Log())
    assert (report.sent, report.send_failed) == (0, 1)
    # Then the original entry stays for the next run, and none stands for a refresh
    (left,) = s3.list_objects_v2(Bucket=BUCKET, Prefix=DUE_PREFIX)["Contents"]
    assert left["Key"] == entry_key(NOW - timedelta(hours=2) + timedelta(seconds=60), "keep.txt")


def test_keys_under_a_prefix_map_back_to_viewer_uris(world: tuple[DueIndex, str], sqs: Any) -> None:
    index, queue = world
    index.record("site/a b.html", NOW - timedelta(days=1), None, 60)
    index.record("elsewhere/x.html", NOW - timedelta(days=1), None, 60)  # outside the prefix
    report = sweep(index, RefreshQueue(sqs, queue, "site/"), NOW, lambda: 900.0, Log())
    assert drain(sqs, queue) == ["/a%20b.html"]
    assert report.bad_entries == 1


def test_the_handler_runs_one_sweep_from_the_workers_variables(
    world: tuple[DueIndex, str], sqs: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from backfill_worker import sweep as sweep_app
    from backfill_worker.runtime import sweep_runtime
    from tests.integration.backfill_world import FakeLambdaContext

    index, queue = world
    index.record("due.txt", datetime.now(UTC) - timedelta(days=2), None, 60)
    index.record("later.txt", datetime.now(UTC), None, 86_400)
    env = {
        "EDGEFILL_BUCKET": BUCKET,
        "EDGEFILL_ORIGIN_URL": "https://origin.example.com",
        "EDGEFILL_BACKFILL_QUEUE_URL": queue,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    sweep_runtime.cache_clear()
    try:
        result = sweep_app.handler({"source": "aws.events"}, FakeLambdaContext(300))
    finally:
        sweep_runtime.cache_clear()
    assert result == {
        "due": 1,
        "sent": 1,
        "sendFailed": 0,
        "badEntries": 0,
        "finished": True,
        "delayed": 0,
    }
    assert drain(sqs, queue) == ["/due.txt"]


@pytest.mark.filterwarnings("ignore:No application metrics")
def test_the_handler_without_a_queue_fails_naming_the_variable(
    moto: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from backfill_worker import sweep as sweep_app
    from backfill_worker.runtime import sweep_runtime
    from shared.config import ConfigError
    from tests.integration.backfill_world import FakeLambdaContext

    monkeypatch.setenv("EDGEFILL_BUCKET", BUCKET)
    monkeypatch.setenv("EDGEFILL_ORIGIN_URL", "https://origin.example.com")
    monkeypatch.delenv("EDGEFILL_BACKFILL_QUEUE_URL", raising=False)
    sweep_runtime.cache_clear()
    try:
        with pytest.raises(ConfigError, match="EDGEFILL_BACKFILL_QUEUE_URL"):
            sweep_app.handler({}, FakeLambdaContext(300))
    finally:
        sweep_runtime.cache_clear()


def receive_all(sqs: Any, queue: str, wait_until: float) -> list[tuple[Any, float]]:
    """(message, seconds after sending) for every message, polling until ``wait_until``."""
    import time

    got: list[tuple[Any, float]] = []
    started = time.monotonic()
    while time.monotonic() - started < wait_until:
        batch = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        for item in batch.get("Messages", []):
            got.append((parse_backfill(item["Body"]), time.monotonic() - started))
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=item["ReceiptHandle"])
    return got


def test_the_sweep_looks_ahead_and_delays_each_refresh_to_its_due_time(
    world: tuple[DueIndex, str], s3: Any, sqs: Any
) -> None:
    index, queue = world
    now = datetime.now(UTC).replace(microsecond=0)
    # Given a copy overdue, one due in 2 s, one due in 4 s and one due after the look-ahead
    for name, seconds in (("overdue", -30), ("two", 2), ("four", 4), ("later", 60)):
        index.record(f"{name}.txt", now + timedelta(seconds=seconds - 100), None, 100)
    # When the sweep runs with a 5 s look-ahead
    report = sweep(index, RefreshQueue(sqs, queue, ""), now, lambda: 900.0, Log(), lookahead=5)
    assert (report.due, report.sent, report.delayed) == (3, 3, 2)
    # Then each refresh arrives at its due time, the overdue one at once
    arrivals = {m.uri: seconds for m, seconds in receive_all(sqs, queue, wait_until=6.5)}
    assert set(arrivals) == {"/overdue.txt", "/two.txt", "/four.txt"}
    assert arrivals["/overdue.txt"] < 1.5
    assert 1.0 <= arrivals["/two.txt"] < 3.5 and 3.0 <= arrivals["/four.txt"] < 5.5


def test_each_refresh_names_the_entry_that_stands_for_it(
    world: tuple[DueIndex, str], s3: Any, sqs: Any
) -> None:
    index, queue = world
    due = NOW - timedelta(minutes=5)
    index.record("page.html", due - timedelta(seconds=60), None, 60)
    sweep(index, RefreshQueue(sqs, queue, ""), NOW, lambda: 900.0, Log())
    got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    (message,) = [parse_backfill(item["Body"]) for item in got]
    # Then the message names the standing entry, which remembers when the copy was due
    assert message.retry_at == "2026-11-30T13:00:00Z"  # the refresh's start + 1 h
    standing = index.read_entry(entry_key(NOW + RESEND_AFTER, "page.html"))
    assert standing is not None and standing.stale_since == due


def test_a_refresh_lost_to_the_dlq_is_sent_again_when_its_standing_entry_comes_due(
    world: tuple[DueIndex, str], s3: Any, sqs: Any
) -> None:
    """Issue 19: the due index heals; no copy is left without revalidation."""
    index, queue = world
    index.record("lost.txt", NOW - timedelta(minutes=10), None, 60)
    sweep(index, RefreshQueue(sqs, queue, ""), NOW, lambda: 900.0, Log())
    assert drain(sqs, queue) == ["/lost.txt"]  # and then the refresh is lost
    # When the sweep runs after the standing entry's time
    later = NOW + RESEND_AFTER + timedelta(seconds=1)
    report = sweep(index, RefreshQueue(sqs, queue, ""), later, lambda: 900.0, Log())
    # Then the refresh is sent again, still knowing since when the copy is due
    assert report.sent == 1 and drain(sqs, queue) == ["/lost.txt"]
    again = index.read_entry(entry_key(later + RESEND_AFTER, "lost.txt"))
    assert again is not None and again.stale_since == NOW - timedelta(minutes=9)
