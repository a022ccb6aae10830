"""Prewarm expansion's budgets across messages (issue 19): no endless chain of follow-ups,
and follow-ups sized by bytes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from prewarm_worker import app, expand
from prewarm_worker.engine import WarmContext, WarmPlan
from prewarm_worker.expand import warm_tree
from shared.edge_http import EdgeClient
from shared.edns import EdgeResolver
from tests.integration.prewarm_edges import VIEWER, Lab, lab, lab_servers
from tests.integration.prewarm_handler import (
    FakeContext,
    drain,
    event_with,
    handler_runtime,
    logs,
    queue_url,
)

__all__ = ["lab", "lab_servers", "logs", "queue_url"]  # fixtures

HLS = "application/vnd.apple.mpegurl"
SEGMENTS = 30


def vod(*uris: str) -> bytes:
    lines = ["#EXTM3U", "#EXT-X-PLAYLIST-TYPE:VOD", "#EXT-X-TARGETDURATION:2"]
    for uri in uris:
        lines += ["#EXTINF:2,", uri]
    return ("\n".join([*lines, "#EXT-X-ENDLIST"]) + "\n").encode()


def serve_pair(lab: Lab) -> None:
    """Two VOD playlists that list each other as a segment, with segments of their own."""
    a = vod("b.m3u8", *(f"a-{n}.ts" for n in range(SEGMENTS)))
    b = vod("a.m3u8", *(f"b-{n}.ts" for n in range(SEGMENTS)))
    for edge in lab.edges.values():
        edge.documents["/pair/a.m3u8"] = (a, HLS)
        edge.documents["/pair/b.m3u8"] = (b, HLS)


@pytest.fixture
def worker_env(lab: Lab, queue_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Lab]:
    with handler_runtime(
        lab, monkeypatch, EDGEFILL_PREWARM_QUEUE_URL=queue_url, EDGEFILL_TARGETS="us-east-1"
    ) as ready:
        yield ready


def test_playlists_listing_each_other_as_segments_end_their_chain_of_follow_ups(
    worker_env: Lab, sqs: Any, queue_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    serve_pair(worker_env)
    # Given room for 10 tasks a message, so that each playlist's references continue in
    # follow-up messages, and a playlist reached as a segment would be read again
    monkeypatch.setattr(expand, "MAX_TASKS_PER_MESSAGE", 10)
    pending: list[dict[str, Any]] = [
        {
            "v": 1,
            "type": "prewarm",
            "paths": ["/pair/a.m3u8"],
            "encodings": ["gzip"],
            "expand": True,
        }
    ]
    # When the worker processes its messages and every follow-up they send
    handled = 0
    while pending and handled < 40:
        body = pending.pop(0)
        assert app.handler(event_with(body), FakeContext()) == {"batchItemFailures": []}
        handled += 1
        pending += drain(sqs, queue_url)
    # Then the queue runs dry: b.m3u8 (a segment of a.m3u8) is warmed, never read (a read
    # is a second GET, as a.m3u8 has: warmed, then read)
    assert pending == [], f"still {len(pending)} messages after {handled}"
    warmed = [seen.path for seen in worker_env.edges["127.0.0.2"].seen]
    assert warmed.count("/pair/b.m3u8") == 1 and warmed.count("/pair/a.m3u8") == 2
    assert not any(path.startswith("/pair/b-") for path in warmed)


def test_warm_expand_on_the_same_content_returns(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    serve_pair(lab)
    monkeypatch.setattr(expand, "MAX_TASKS_PER_MESSAGE", 10)
    # A pass budget: before issue 19 the passes alternated between the two without end
    calls = 0
    engine_warm = expand.warm

    def counted(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        assert calls < 100, "warm --expand does not end"
        return engine_warm(*args, **kwargs)

    monkeypatch.setattr(expand, "warm", counted)
    config = lab.config()
    client = EdgeClient(port=lab.port)
    try:
        context = WarmContext(
            config, EdgeResolver(config.resolver_host, config.resolver_port), client
        )
        plan = WarmPlan(("/pair/a.m3u8",), ("us-east-1",), ("identity",), VIEWER)
        outcome = warm_tree(plan, context)
    finally:
        client.close()
    # Every object once: a.m3u8, its segments and b.m3u8 (warmed, not read)
    assert outcome.report.tasks == SEGMENTS + 2 and outcome.report.failed == 0
    assert list(outcome.manifests) == ["/pair/a.m3u8"]


def test_follow_ups_of_long_signed_uris_are_sized_by_bytes_before_they_are_sent(
    worker_env: Lab, sqs: Any, queue_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a VOD playlist of 300 segments with 7 KB signatures (2 MB of follow-up paths)
    signed = [f"s{n:03d}.m4s?sig=" + "x" * 7000 for n in range(300)]
    for edge in worker_env.edges.values():
        edge.documents["/signed/index.m3u8"] = (vod(*signed), HLS)
    monkeypatch.setattr(expand, "MAX_TASKS_PER_MESSAGE", 1)  # the playlist alone
    body = {"v": 1, "type": "prewarm", "paths": ["/signed/index.m3u8"], "encodings": ["gzip"]}
    # When the worker expands it
    result = app.handler(event_with({**body, "expand": True}), FakeContext())
    # Then the record succeeds and the segments went on in messages SQS accepted
    assert result == {"batchItemFailures": []}
    follow_ups = drain(sqs, queue_url)
    assert len(follow_ups) >= 2
    assert sorted(p for m in follow_ups for p in m["paths"]) == sorted(
        f"/signed/{uri}" for uri in signed
    )
