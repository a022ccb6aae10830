"""Budgets that hold whatever a manifest says: bytes of references, depth of expansion."""

from __future__ import annotations

import tracemalloc

from shared.manifests import (
    MAX_EXPAND_DEPTH,
    MAX_REFERENCE_BYTES,
    Manifest,
    parse_manifest,
)


def test_a_9_kb_manifest_cannot_make_the_parser_allocate_hundreds_of_megabytes() -> None:
    # Given a 9 KB MPD whose template carries an 8 KB query on each of 20,000 segments:
    # 160 MB of references, about 330 MB allocated by the parser before the byte budget
    query = "t=" + "a" * 8000
    body = (
        '<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static"><Period><AdaptationSet>'
        f'<Representation id="r"><SegmentTemplate media="$Number$.m4s?{query}">'
        '<SegmentTimeline><S t="0" d="1" r="19999"/></SegmentTimeline></SegmentTemplate>'
        "</Representation></AdaptationSet></Period></MPD>"
    ).encode()
    assert len(body) < 9 * 1024
    # When it is parsed
    tracemalloc.start()
    try:
        manifest = parse_manifest("/m/manifest.mpd", body, None, "cdn.example.com")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Then the references stop at the byte budget, and so does the memory
    assert manifest.truncated and "byte budget" in (manifest.reason or "")
    assert sum(len(r.path) + len(r.query) for r in manifest.references) <= MAX_REFERENCE_BYTES
    assert peak < 64 * 1024 * 1024, f"{peak / 1e6:.0f} MB"


MASTER = b"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\na/index.m3u8\n"
MEDIA = b'#EXTM3U\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-MAP:URI="i.mp4"\n#EXTINF:4,\nb.m3u8\n'


def parsed(body: bytes) -> Manifest:
    return parse_manifest("/v/x.m3u8", body, None, "cdn.example.com")


def test_only_playlists_go_one_level_deeper_and_only_above_the_depth_budget() -> None:
    # A master read at depth 0: its playlist is at depth 1 and read in turn
    [child] = parsed(MASTER).children(0)
    assert (child.reference.kind, child.depth, child.expands) == ("playlist", 1, True)
    # Read at depth 1, the playlist it names is at depth 2: fetched, never read
    [child] = parsed(MASTER).children(1)
    assert (child.depth, child.expands) == (MAX_EXPAND_DEPTH, False)
    # A media playlist's init and segments are never read, even a segment named .m3u8
    children = parsed(MEDIA).children(0)
    assert [(c.reference.kind, c.depth, c.expands) for c in children] == [
        ("init", MAX_EXPAND_DEPTH, False),
        ("segment", MAX_EXPAND_DEPTH, False),
    ]


def test_a_playlist_child_carries_its_multivariant_playlists_variables() -> None:
    body = (
        b'#EXTM3U\n#EXT-X-DEFINE:NAME="p",VALUE="low"\n#EXT-X-STREAM-INF:BANDWIDTH=1\n{$p}.m3u8\n'
    )
    [child] = parsed(body).children(0)
    assert child.reference.path == "/v/low.m3u8"
    assert child.variables == (("p", "low"),)
