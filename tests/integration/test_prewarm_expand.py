"""Prewarm ``expand``: a playlist warmed at real HTTPS edges brings its tree, within the
task cap, continued in follow-up messages past it."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from itertools import product
from typing import Any

import pytest

from edgefill.lab import vod
from prewarm_worker import app, expand
from prewarm_worker.engine import WarmContext, WarmPlan
from prewarm_worker.expand import EXPAND_SOURCE, warm_expanding, warm_tree
from shared.edge_http2 import Http2EdgeClient
from shared.edns import EdgeResolver
from shared.messages import ENCODINGS, PrewarmMessage
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
EDGES = ("127.0.0.2", "127.0.0.3")  # us-east-1, ap-northeast-1
TARGETS = ("us-east-1", "ap-northeast-1")


def serve_vod(lab: Lab) -> None:
    """The lab title's playlists on every edge (segments get generated bodies)."""
    documents = {
        "/premiere/master.m3u8": (vod.master_playlist().encode(), HLS),
        "/premiere/manifest.mpd": (vod.mpd().encode(), "application/dash+xml"),
    }
    for name in vod.RENDITIONS:
        documents[f"/premiere/{name[0]}/index.m3u8"] = (vod.media_playlist().encode(), HLS)
    for edge in lab.edges.values():
        edge.documents.update(documents)


def tree() -> list[str]:
    paths = ["/premiere/master.m3u8"]
    for name, _, _ in vod.RENDITIONS:
        paths += [f"/premiere/{name}/index.m3u8", f"/premiere/{name}/init.mp4"]
        paths += [f"/premiere/{name}/seg-{n:03d}.m4s" for n in range(vod.SEGMENTS)]
    return paths


def requested(lab: Lab, edge: str) -> set[tuple[str, str | None]]:
    return {(seen.path, seen.accept_encoding) for seen in lab.edges[edge].seen}


def run(lab: Lab, message: PrewarmMessage, **kwargs: Any) -> expand.ExpandOutcome:
    config = lab.config()
    plan = WarmPlan(message.paths, message.targets or (), message.encodings or ENCODINGS, VIEWER)
    client = Http2EdgeClient(port=lab.port)
    try:
        return warm_expanding(
            plan,
            WarmContext(config, EdgeResolver(config.resolver_host, config.resolver_port), client),
            expand=message.expand,
            depth=message.depth,
            **kwargs,
        )
    finally:
        client.close()


def test_a_master_warms_its_whole_tree_at_every_target_and_encoding(lab: Lab) -> None:
    # Given the title's playlists at the edges
    serve_vod(lab)
    message = PrewarmMessage(paths=("/premiere/master.m3u8",), targets=TARGETS, expand=True)
    # When the master is warmed with expand
    outcome = run(lab, message)
    # Then every playlist, init and segment is warmed at both targets for all 4 encodings
    assert outcome.report.failed == 0
    assert outcome.report.tasks == len(tree()) * 2 * 4
    wanted = {(p, h) for p, h in product(tree(), ("br, gzip", "gzip", "br", None))}
    for edge in EDGES:
        assert wanted <= requested(lab, edge)
    # And the key is never asked for
    assert not any("keys" in path for edge in EDGES for path, _ in requested(lab, edge))
    # And the report counts, per manifest, what it expanded
    summary = outcome.summary()
    assert summary["rounds"] == 3  # master, media playlists, segments
    assert summary["manifests"]["/premiere/master.m3u8"]["playlists"] == 3
    media = summary["manifests"]["/premiere/720p/index.m3u8"]
    assert media["segments"] == vod.SEGMENTS and media["inits"] == 1
    assert media["warmed"] == vod.SEGMENTS + 1
    assert media["ignored"] == {"encryption key (EXT-X-KEY / EXT-X-SESSION-KEY)": 1}
    assert outcome.followups == []


def test_the_body_is_read_from_the_first_target_that_served_it(lab: Lab) -> None:
    serve_vod(lab)
    lab.edges["127.0.0.2"].faults["/premiere/master.m3u8"] = "404"  # the first target fails
    message = PrewarmMessage(
        paths=("/premiere/master.m3u8",), targets=TARGETS, encodings=("gzip",), expand=True
    )
    outcome = run(lab, message)
    # The master failed at us-east-1 but came whole from ap-northeast-1: the tree is warmed
    assert outcome.manifests["/premiere/master.m3u8"].playlists == 3
    assert ("/premiere/1080p/seg-005.m4s", "gzip") in requested(lab, "127.0.0.2")
    # And only the master's failure is reported (to be re-enqueued like any failure)
    assert [f.task.path for f in outcome.report.failures] == ["/premiere/master.m3u8"]


def test_a_dash_manifest_warms_every_init_and_segment(lab: Lab) -> None:
    serve_vod(lab)
    message = PrewarmMessage(
        paths=("/premiere/manifest.mpd",),
        targets=("us-east-1",),
        encodings=("identity",),
        expand=True,
    )
    outcome = run(lab, message)
    paths = {path for path, _ in requested(lab, "127.0.0.2")}
    assert {p for p in tree() if p.endswith((".m4s", ".mp4"))} <= paths
    assert outcome.manifests["/premiere/manifest.mpd"].segments == 3 * vod.SEGMENTS


def test_over_the_task_cap_the_tree_continues_in_follow_up_messages(lab: Lab) -> None:
    serve_vod(lab)
    message = PrewarmMessage(
        paths=("/premiere/master.m3u8",), targets=TARGETS, encodings=("gzip", "br"), expand=True
    )
    # Given room for the master and its three playlists only (4 paths × 2 × 2 = 16 tasks)
    outcome = run(lab, message, task_budget=16)
    assert outcome.report.tasks == 16
    # Then the segments and inits go on in follow-up messages, only to be warmed, same targets
    followed = [path for m in outcome.followups for path in m.paths]
    assert sorted(followed) == sorted(p for p in tree() if not p.endswith(".m3u8"))
    for follow_up in outcome.followups:
        assert not follow_up.expand and follow_up.source == EXPAND_SOURCE
        assert follow_up.targets == TARGETS and follow_up.encodings == ("gzip", "br")
    assert outcome.manifests["/premiere/360p/index.m3u8"].continued == vod.SEGMENTS + 1


def test_playlists_that_do_not_fit_continue_expanding_one_level_down(lab: Lab) -> None:
    serve_vod(lab)
    message = PrewarmMessage(
        paths=("/premiere/master.m3u8",), targets=("us-east-1",), encodings=("gzip",), expand=True
    )
    # Given room for the master alone
    outcome = run(lab, message, task_budget=1)
    # Then its playlists go on in one message that reads them, at depth 1
    [follow_up] = outcome.followups
    assert follow_up.expand and follow_up.depth == 1 and follow_up.source == EXPAND_SOURCE
    assert sorted(follow_up.paths) == sorted(
        f"/premiere/{n}/index.m3u8" for n, _, _ in vod.RENDITIONS
    )


def test_a_playlist_at_the_depth_budget_is_warmed_but_not_read(lab: Lab) -> None:
    serve_vod(lab)
    message = PrewarmMessage(
        paths=("/premiere/master.m3u8",),
        targets=("us-east-1",),
        encodings=("identity",),
        source=EXPAND_SOURCE,
        expand=True,
        depth=1,
    )
    outcome = run(lab, message)
    # The master (read at depth 1) brings its playlists (depth 2): warmed, never read
    warmed = {p for p, _ in requested(lab, "127.0.0.2")}
    assert warmed == {
        "/premiere/master.m3u8",
        *(f"/premiere/{n}/index.m3u8" for n, _, _ in vod.RENDITIONS),
    }
    ignored = outcome.manifests["/premiere/master.m3u8"].ignored
    assert ignored == {expand.NOT_READ_AT_DEPTH: 3}
    assert list(outcome.manifests) == ["/premiere/master.m3u8"]


def test_a_manifest_no_target_served_is_reported_not_expanded(lab: Lab) -> None:
    serve_vod(lab)
    for edge in EDGES:
        lab.edges[edge].faults["/premiere/master.m3u8"] = "404"
    message = PrewarmMessage(paths=("/premiere/master.m3u8",), targets=TARGETS, expand=True)
    outcome = run(lab, message)
    assert outcome.manifests["/premiere/master.m3u8"].reason == "no target served it completely"
    assert outcome.rounds == 1 and outcome.followups == []


def test_a_cycle_of_playlists_is_warmed_once(lab: Lab) -> None:
    a = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nb.m3u8\n#EXT-X-STREAM-INF:BANDWIDTH=2\na.m3u8\n"
    b = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\na.m3u8\n"
    for edge in lab.edges.values():
        edge.documents["/c/a.m3u8"] = (a.encode(), HLS)
        edge.documents["/c/b.m3u8"] = (b.encode(), HLS)
    message = PrewarmMessage(
        paths=("/c/a.m3u8",), targets=("us-east-1",), encodings=("identity",), expand=True
    )
    outcome = run(lab, message)
    assert outcome.rounds == 2 and outcome.report.tasks == 2


# ---------------------------------------------------------------- through the handler


@pytest.fixture
def worker_env(lab: Lab, queue_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Lab]:
    with handler_runtime(
        lab, monkeypatch, EDGEFILL_PREWARM_QUEUE_URL=queue_url, EDGEFILL_TARGETS="us-east-1"
    ) as ready:
        yield ready


def handle(body: dict[str, Any]) -> Any:
    return app.handler(event_with(body), FakeContext())


def test_the_handler_expands_and_reports_per_manifest(
    worker_env: Lab, sqs: Any, queue_url: str, logs: io.StringIO
) -> None:
    serve_vod(worker_env)
    body = {"v": 1, "type": "prewarm", "paths": ["/premiere/master.m3u8"], "expand": True}
    assert handle(body) == {"batchItemFailures": []}
    summary = next(
        json.loads(line) for line in logs.getvalue().splitlines() if '"prewarm summary"' in line
    )
    assert summary["tasks"] == len(tree()) * 4
    manifests = summary["expansion"]["manifests"]
    assert manifests["/premiere/master.m3u8"]["playlists"] == 3
    assert manifests["/premiere/1080p/index.m3u8"]["segments"] == vod.SEGMENTS
    assert drain(sqs, queue_url) == []


def test_the_handler_sends_the_rest_of_a_tree_too_big_for_one_message(
    worker_env: Lab, sqs: Any, queue_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    serve_vod(worker_env)
    monkeypatch.setattr(expand, "MAX_TASKS_PER_MESSAGE", 4 * 4)  # master + 3 playlists
    body = {"v": 1, "type": "prewarm", "paths": ["/premiere/master.m3u8"], "expand": True}
    assert handle(body) == {"batchItemFailures": []}
    follow_ups = drain(sqs, queue_url)
    # (segments and inits only to be warmed: they are no playlists to read)
    assert follow_ups and all("expand" not in m and m["source"] == "expand" for m in follow_ups)
    assert sorted(p for m in follow_ups for p in m["paths"]) == sorted(
        p for p in tree() if not p.endswith(".m3u8")
    )


def test_without_expand_a_playlist_is_warmed_like_any_path(worker_env: Lab) -> None:
    serve_vod(worker_env)
    body = {"v": 1, "type": "prewarm", "paths": ["/premiere/master.m3u8"]}
    assert handle(body) == {"batchItemFailures": []}
    assert {p for p, _ in requested(worker_env, "127.0.0.2")} == {"/premiere/master.m3u8"}


def test_the_byte_cap_bounds_every_round_and_sends_nothing_on(lab: Lab) -> None:
    serve_vod(lab)
    message = PrewarmMessage(
        paths=("/premiere/master.m3u8",),
        targets=("us-east-1",),
        encodings=("identity",),
        expand=True,
    )
    # Given a cap the master alone reaches
    outcome = run(lab, message, max_bytes=len(vod.master_playlist()))
    # Then the playlists it names are left out, counted, and not sent on
    assert outcome.report.tasks == 1 and outcome.followups == []
    assert outcome.capped_paths == 3
    assert outcome.summary()["cappedPaths"] == 3


# ---------------------------------------------------------------- budgets across messages (19)

PAIR_SEGMENTS = 30


def vod_playlist(*uris: str) -> bytes:
    lines = ["#EXTM3U", "#EXT-X-PLAYLIST-TYPE:VOD", "#EXT-X-TARGETDURATION:2"]
    for uri in uris:
        lines += ["#EXTINF:2,", uri]
    return ("\n".join([*lines, "#EXT-X-ENDLIST"]) + "\n").encode()


def serve_pair(lab: Lab) -> None:
    """Two VOD playlists that list each other as a segment, with segments of their own."""
    a = vod_playlist("b.m3u8", *(f"a-{n}.ts" for n in range(PAIR_SEGMENTS)))
    b = vod_playlist("a.m3u8", *(f"b-{n}.ts" for n in range(PAIR_SEGMENTS)))
    for edge in lab.edges.values():
        edge.documents["/pair/a.m3u8"] = (a, HLS)
        edge.documents["/pair/b.m3u8"] = (b, HLS)


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
    client = Http2EdgeClient(port=lab.port)
    try:
        context = WarmContext(
            config, EdgeResolver(config.resolver_host, config.resolver_port), client
        )
        plan = WarmPlan(("/pair/a.m3u8",), ("us-east-1",), ("identity",), VIEWER)
        outcome = warm_tree(plan, context)
    finally:
        client.close()
    # Every object once: a.m3u8, its segments and b.m3u8 (warmed, not read)
    assert outcome.report.tasks == PAIR_SEGMENTS + 2 and outcome.report.failed == 0
    assert list(outcome.manifests) == ["/pair/a.m3u8"]


def test_follow_ups_of_long_signed_uris_are_sized_by_bytes_before_they_are_sent(
    worker_env: Lab, sqs: Any, queue_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a VOD playlist of 300 segments with 7 KB signatures (2 MB of follow-up paths)
    signed = [f"s{n:03d}.m4s?sig=" + "x" * 7000 for n in range(300)]
    for edge in worker_env.edges.values():
        edge.documents["/signed/index.m3u8"] = (vod_playlist(*signed), HLS)
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
