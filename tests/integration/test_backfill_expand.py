"""Backfill expansion against moto and the lab origin: a copied playlist brings its tree."""

from __future__ import annotations

import json
from typing import Any

import pytest

from backfill_worker.fill.expand import PlaylistExpander
from backfill_worker.record import Backfiller
from edgefill.lab import vod
from edgefill.lab.origin import LabOrigin
from tests.integration.backfill_world import (
    assert_nothing_left_behind,
    keys,
    make_backfiller,
    message,
    stored,
)

HOST = "cdn.example.com"


class CountingSqs:
    """An SQS client that counts SendMessageBatch calls (what expansion costs)."""

    def __init__(self, sqs: Any) -> None:
        self.sqs = sqs
        self.batch_calls = 0
        self.single_sends = 0

    def send_message_batch(self, **kwargs: Any) -> Any:
        self.batch_calls += 1
        return self.sqs.send_message_batch(**kwargs)

    def send_message(self, **kwargs: Any) -> Any:
        self.single_sends += 1
        return self.sqs.send_message(**kwargs)


@pytest.fixture
def queue(bucket: Any, sqs: Any) -> str:
    return str(sqs.create_queue(QueueName="edgefill-backfill")["QueueUrl"])


def expanding(
    s3: Any, sqs: Any, origin: LabOrigin, queue: str, **overrides: str
) -> tuple[Backfiller, CountingSqs]:
    worker = make_backfiller(
        s3,
        origin,
        EDGEFILL_BACKFILL_QUEUE_URL=queue,
        EDGEFILL_EXPAND_PLAYLISTS="true",
        **overrides,
    )
    counting = CountingSqs(sqs)
    worker.expander = PlaylistExpander(
        worker.config, worker.store, counting, worker.logger, worker.metrics
    )
    return worker, counting


def drain(sqs: Any, queue: str) -> list[dict[str, Any]]:
    """Every message on the queue, removed."""
    bodies: list[dict[str, Any]] = []
    while True:
        batch = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
        if not batch:
            return bodies
        for item in batch:
            bodies.append(json.loads(item["Body"]))
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=item["ReceiptHandle"])


def run_until_quiet(worker: Backfiller, sqs: Any, queue: str) -> int:
    """Process queued fills as the worker would, until none is left; returns how many."""
    processed = 0
    while pending := drain(sqs, queue):
        for body in pending:
            worker.backfill(json.dumps(body))
            processed += 1
    return processed


def test_a_copied_master_brings_the_whole_hls_tree_but_never_the_key(
    s3: Any, sqs: Any, origin: LabOrigin, queue: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Given the lab's VOD title on the full origin
    tree = vod.seed(origin)
    worker, counting = expanding(s3, sqs, origin, queue)
    # When a viewer's miss on the master is backfilled
    outcome = worker.backfill(message(LabOrigin.uri(tree.master), host=HOST, distribution="E2X"))
    assert outcome.status == "copied"
    # Then ordinary v1 fills for its three media playlists are queued, with the viewer host
    first = drain(sqs, queue)
    assert sorted(m["uri"] for m in first) == [
        f"/premiere/{name}/index.m3u8" for name in ("1080p", "360p", "720p")
    ]
    assert all(m["v"] == 1 and m["type"] == "backfill" and m["host"] == HOST for m in first)
    assert all(m["distribution"] == "E2X" for m in first)
    # And when those fills run (and the ones they queue), the tree arrives: never the key
    for body in first:
        worker.backfill(json.dumps(body))
    run_until_quiet(worker, sqs, queue)
    expected = sorted(path.lstrip("/") for path in tree.hls_tree())
    assert sorted(keys(s3)) == expected
    assert tree.key.lstrip("/") not in keys(s3)
    assert stored(s3, "premiere/720p/seg-003.m4s") == origin.read("/premiere/720p/seg-003.m4s")
    assert counting.single_sends == 0
    assert_nothing_left_behind(s3)
    # And each expansion said what it queued and what it ignored
    expanded = [r for r in caplog.records if r.getMessage() == "manifest expanded"]
    assert len(expanded) == 4  # the master and its three media playlists
    media = [r for r in expanded if r.key.endswith("/index.m3u8")]
    assert all(r.segments == vod.SEGMENTS and r.inits == 1 for r in media)
    key_reason = "encryption key (EXT-X-KEY / EXT-X-SESSION-KEY)"
    assert all(r.ignored == {key_reason: 1} for r in media)


def test_a_copied_mpd_brings_every_init_and_segment(
    s3: Any, sqs: Any, origin: LabOrigin, queue: str
) -> None:
    tree = vod.seed(origin)
    worker, _ = expanding(s3, sqs, origin, queue)
    worker.backfill(message(LabOrigin.uri(tree.mpd), host=HOST))
    queued = drain(sqs, queue)
    assert sorted(m["uri"] for m in queued) == sorted(tree.of_kind("init", "segment"))


def test_a_thousand_segment_playlist_costs_about_a_hundred_batch_calls(
    s3: Any, sqs: Any, origin: LabOrigin, queue: str
) -> None:
    # Given a VOD media playlist of 1,000 segments
    lines = ["#EXTM3U", "#EXT-X-PLAYLIST-TYPE:VOD", "#EXT-X-TARGETDURATION:2"]
    for number in range(1000):
        lines += ["#EXTINF:2,", f"s/{number:04d}.ts"]
    origin.put("/long/index.m3u8", "\n".join(lines + ["#EXT-X-ENDLIST"]) + "\n")
    worker, counting = expanding(s3, sqs, origin, queue)
    # When it is copied
    worker.backfill(message("/long/index.m3u8", host=HOST))
    # Then 1,000 fills went out in 100 SendMessageBatch calls of 10, no single sends
    assert counting.batch_calls == 100 and counting.single_sends == 0
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "1000"


def test_expansion_happens_once_per_copy_never_on_a_skip(
    s3: Any, sqs: Any, origin: LabOrigin, queue: str
) -> None:
    tree = vod.seed(origin)
    worker, counting = expanding(s3, sqs, origin, queue)
    worker.backfill(message(LabOrigin.uri(tree.master), host=HOST))
    calls = counting.batch_calls
    drain(sqs, queue)
    # When viewers keep missing on the master (it is already in the bucket)
    for _ in range(5):
        outcome = worker.backfill(message(LabOrigin.uri(tree.master), host=HOST))
        assert outcome.reason == "exists"
    # Then nothing more is queued
    assert counting.batch_calls == calls and drain(sqs, queue) == []


def test_over_the_cap_expansion_stops_logged_and_counted(
    s3: Any, sqs: Any, origin: LabOrigin, queue: str, caplog: pytest.LogCaptureFixture
) -> None:
    tree = vod.seed(origin)
    worker, _ = expanding(s3, sqs, origin, queue, EDGEFILL_EXPAND_MAX="3")
    worker.backfill(message(LabOrigin.uri("/premiere/360p/index.m3u8"), host=HOST))
    assert len(drain(sqs, queue)) == 3
    messages = [r.getMessage() for r in caplog.records]
    assert "manifest expansion stopped at EDGEFILL_EXPAND_MAX" in messages
    assert "ExpansionTruncated" in worker.metrics.metric_set
    assert tree.key.lstrip("/") not in keys(s3)


def test_a_playlist_known_only_by_its_content_type_expands(
    s3: Any, sqs: Any, origin: LabOrigin, queue: str
) -> None:
    origin.put(
        "/tv/show",
        "#EXTM3U\n#EXT-X-ENDLIST\n#EXTINF:4,\nshow-1.ts\n",
        content_type="application/x-mpegURL",
    )
    worker, _ = expanding(s3, sqs, origin, queue)
    worker.backfill(message("/tv/show", host=HOST))
    assert [m["uri"] for m in drain(sqs, queue)] == ["/tv/show-1.ts"]


def test_a_live_playlist_is_copied_but_not_expanded(
    s3: Any, sqs: Any, origin: LabOrigin, queue: str, caplog: pytest.LogCaptureFixture
) -> None:
    origin.put("/live/index.m3u8", "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:4,\nlive-1.ts\n")
    worker, counting = expanding(s3, sqs, origin, queue)
    outcome = worker.backfill(message("/live/index.m3u8", host=HOST))
    assert outcome.status == "copied" and keys(s3) == ["live/index.m3u8"]
    assert counting.batch_calls == 0 and drain(sqs, queue) == []
    [record] = [r for r in caplog.records if r.getMessage() == "manifest not expanded"]
    assert record.reason.startswith("live playlist")


def test_filtered_and_foreign_references_are_not_queued(
    s3: Any, sqs: Any, origin: LabOrigin, queue: str
) -> None:
    origin.put(
        "/f/index.m3u8",
        "#EXTM3U\n#EXT-X-ENDLIST\n#EXTINF:4,\na.ts\n#EXTINF:4,\nb.m4s\n"
        "#EXTINF:4,\nhttps://other.example.net/c.ts\n#EXTINF:4,\n/_edgefill/leases/x\n",
    )
    worker, _ = expanding(s3, sqs, origin, queue, EDGEFILL_EXCLUDE="*.m4s")
    worker.backfill(message("/f/index.m3u8", host=HOST))
    assert [m["uri"] for m in drain(sqs, queue)] == ["/f/a.ts"]


def test_without_expansion_a_playlist_is_just_copied(
    s3: Any, sqs: Any, origin: LabOrigin, queue: str
) -> None:
    tree = vod.seed(origin)
    worker = make_backfiller(s3, origin, EDGEFILL_BACKFILL_QUEUE_URL=queue)
    assert worker.expander is None
    worker.backfill(message(LabOrigin.uri(tree.master), host=HOST))
    assert keys(s3) == ["premiere/master.m3u8"] and drain(sqs, queue) == []


def test_an_sqs_failure_leaves_the_copy_in_place_and_is_reported(
    s3: Any, sqs: Any, origin: LabOrigin, queue: str, caplog: pytest.LogCaptureFixture
) -> None:
    tree = vod.seed(origin)
    worker, _ = expanding(s3, sqs, origin, queue)
    assert worker.expander is not None
    worker.expander.config = type(worker.config)(
        **{
            **{name: getattr(worker.config, name) for name in worker.config.__slots__},
            "backfill_queue_url": queue + "-gone",
        }
    )
    outcome = worker.backfill(message(LabOrigin.uri(tree.master), host=HOST))
    assert outcome.status == "copied" and keys(s3) == ["premiere/master.m3u8"]
    [record] = [r for r in caplog.records if r.getMessage() == "manifest expanded"]
    assert record.levelname == "ERROR" and record.failed == 3 and record.queued == 0


def test_expansion_stops_two_levels_below_the_first_manifest(
    s3: Any, sqs: Any, origin: LabOrigin, queue: str
) -> None:
    # Given playlists that each name three more playlists, five levels deep (3^k per level)
    def name(path: tuple[int, ...]) -> str:
        return "/fan/" + "-".join(map(str, path)) + ".m3u8" if path else "/fan/top.m3u8"

    def put(path: tuple[int, ...]) -> None:
        children = [(*path, index) for index in range(3)] if len(path) < 4 else []
        lines = ["#EXTM3U"]
        for child in children:
            lines += ["#EXT-X-STREAM-INF:BANDWIDTH=1", name(child).rsplit("/", 1)[1]]
        origin.put(name(path), "\n".join(lines) + "\n", content_type="application/x-mpegURL")
        for child in children:
            put(child)

    put(())
    worker, _ = expanding(s3, sqs, origin, queue)
    # When a viewer misses the top one and every fill it leads to runs
    worker.backfill(message("/fan/top.m3u8", host=HOST))
    queued = drain(sqs, queue)
    assert {m["depth"] for m in queued} == {1}
    for body in queued:
        worker.backfill(json.dumps(body))
    second = drain(sqs, queue)
    assert len(second) == 9 and {m["depth"] for m in second} == {2}
    for body in second:
        worker.backfill(json.dumps(body))
    # Then the playlists two levels down are copied but read no further: 1 + 3 + 9 copies
    assert drain(sqs, queue) == []
    assert len(keys(s3)) == 13


def test_a_playlist_named_as_a_segment_is_copied_but_never_read(
    s3: Any, sqs: Any, origin: LabOrigin, queue: str
) -> None:
    # Given two VOD playlists that list each other as segments
    origin.put("/pair/a.m3u8", "#EXTM3U\n#EXT-X-ENDLIST\n#EXTINF:4,\nb.m3u8\n#EXTINF:4,\na.ts\n")
    origin.put("/pair/b.m3u8", "#EXTM3U\n#EXT-X-ENDLIST\n#EXTINF:4,\na.m3u8\n#EXTINF:4,\nb.ts\n")
    origin.put("/pair/a.ts", b"a")
    origin.put("/pair/b.ts", b"b")
    worker, _ = expanding(s3, sqs, origin, queue)
    worker.backfill(message("/pair/a.m3u8", host=HOST))
    # Then its segments' fills are at the depth that is never read: b.m3u8 is copied,
    # its own segment is not
    run_until_quiet(worker, sqs, queue)
    assert sorted(keys(s3)) == ["pair/a.m3u8", "pair/a.ts", "pair/b.m3u8"]
