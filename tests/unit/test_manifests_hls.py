"""HLS as packagers write it: a tag m3u8 cannot parse costs that tag, and EXT-X-DEFINE."""

from __future__ import annotations

import time

import pytest

from shared.manifests import Manifest, parse_manifest
from shared.video.hls import MAX_SKIPPED_TAGS

HOST = "cdn.example.com"


def hls(text: str, uri: str = "/v/index.m3u8", **kwargs: object) -> Manifest:
    return parse_manifest(uri, text.encode(), None, HOST, **kwargs)  # type: ignore[arg-type]


def kinds(manifest: Manifest) -> list[tuple[str, str]]:
    return [(reference.uri, reference.kind) for reference in manifest.references]


# ---------------------------------------------------------------- tolerant parsing


def test_a_tag_m3u8_cannot_parse_costs_that_tag_not_the_playlist() -> None:
    # Given a VOD playlist with three tags m3u8 raises on
    manifest = hls(
        "#EXTM3U\n"
        "#EXT-X-TARGETDURATION:four\n"  # line 2
        "#EXT-X-MEDIA-SEQUENCE:\n"  # line 3
        "#EXT-X-PLAYLIST-TYPE:VOD\n"
        '#EXT-X-MAP:URI="init.mp4"\n'
        "#EXTINF:4.0,\n"
        "s1.ts\n"
        "#EXTINF:not-a-number,\n"  # line 8
        "s2.ts\n"
        "#EXTINF:4.0,\n"
        "s3.ts\n"
        "#EXT-X-ENDLIST\n"
    )
    # Then every segment is still found, in the playlist's order
    assert manifest.expanded
    assert kinds(manifest) == [
        ("/v/init.mp4", "init"),
        ("/v/s1.ts", "segment"),
        ("/v/s2.ts", "segment"),  # read by the line scanner: the URI line of its EXTINF
        ("/v/s3.ts", "segment"),
    ]
    # And each skipped tag is named with its line number
    assert [(tag.line, tag.tag) for tag in manifest.skipped_tags] == [
        (2, "EXT-X-TARGETDURATION"),
        (3, "EXT-X-MEDIA-SEQUENCE"),
        (8, "EXTINF"),
    ]
    assert all(tag.error.startswith("ValueError") for tag in manifest.skipped_tags)


def test_a_variant_stream_m3u8_cannot_read_is_still_a_playlist() -> None:
    manifest = hls(
        "#EXTM3U\n"
        "#EXT-X-STREAM-INF:BANDWIDTH=800000,PROGRAM-ID=one\n"  # m3u8: int("one")
        "low/index.m3u8\n"
        "#EXT-X-STREAM-INF:RESOLUTION=1280x720\n"  # no BANDWIDTH: m3u8's line parser copes
        "mid/index.m3u8\n"
        '#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=x,URI="low/iframes.m3u8"\n'
    )
    assert kinds(manifest) == [
        ("/v/low/index.m3u8", "playlist"),  # read by the scanner, in its place
        ("/v/mid/index.m3u8", "playlist"),
        ("/v/low/iframes.m3u8", "playlist"),
    ]
    assert {tag.tag for tag in manifest.skipped_tags} == {
        "EXT-X-STREAM-INF",
        "EXT-X-I-FRAME-STREAM-INF",
    }


def test_the_line_scanner_never_takes_a_key() -> None:
    # Given malformed key tags, which m3u8 never sees, and a malformed tag around them
    manifest = hls(
        "#EXTM3U\n#EXT-X-PLAYLIST-TYPE:VOD\n"
        "#EXT-X-KEY:METHOD\n"  # no '=': m3u8's own key parser would raise
        '#EXT-X-KEY:METHOD=AES-128,URI="k1.key",IV=0xZZ\n'
        "#EXTINF:x,\n"
        "a.ts\n"
        '#EXT-X-SESSION-KEY:URI="k2.key"\n'
        "#EXT-X-ENDLIST\n"
    )
    assert kinds(manifest) == [("/v/a.ts", "segment")]
    assert manifest.ignored_reasons["encryption key (EXT-X-KEY / EXT-X-SESSION-KEY)"] == 2


def test_past_the_skip_budget_the_scanner_reads_the_rest() -> None:
    bad = "".join(f"#EXTINF:bad{i},\ns{i}.ts\n" for i in range(MAX_SKIPPED_TAGS + 10))
    manifest = hls(f"#EXTM3U\n#EXT-X-PLAYLIST-TYPE:VOD\n{bad}#EXT-X-ENDLIST\n")
    assert len(manifest.references) == MAX_SKIPPED_TAGS + 10
    assert len(manifest.skipped_tags) == MAX_SKIPPED_TAGS + 1
    assert manifest.skipped_tags[-1].tag == "(the rest)"


@pytest.mark.parametrize(
    "body",
    [
        b"\n\n#EXT-X-VERSION:3\n#EXTM3U\n#EXTINF:4,\na.ts\n#EXT-X-ENDLIST\n",
        b"#EXTINF:4,\na.ts\n#EXT-X-ENDLIST\n",
    ],
)
def test_extm3u_is_still_required_first(body: bytes) -> None:
    manifest = parse_manifest("/v/index.m3u8", body, None, HOST)
    assert not manifest.expanded and manifest.reason == "playlist does not start with #EXTM3U"


def test_many_distinct_keys_cost_linear_time() -> None:
    # m3u8 de-duplicates keys in a list: 20,000 distinct keys took it 18 s. The hook answers
    # every key tag itself, so m3u8 never sees one.
    lines = ["#EXTM3U", "#EXT-X-PLAYLIST-TYPE:VOD"]
    for index in range(20_000):
        lines += [f'#EXT-X-KEY:METHOD=AES-128,URI="k{index}"', "#EXTINF:2,", f"s{index}.ts"]
    started = time.perf_counter()
    manifest = hls("\n".join([*lines, "#EXT-X-ENDLIST"]))
    assert len(manifest.references) == 20_000
    assert time.perf_counter() - started < 15  # linear: about 1 s on the shared machine


def test_the_tags_m3u8_reads_are_bounded_by_the_step_budget() -> None:
    # Given far more segments than the cap allows steps for
    segments = "".join(f"#EXTINF:1,\ns{i}.ts\n" for i in range(2_000))
    manifest = hls(f"#EXTM3U\n#EXT-X-PLAYLIST-TYPE:VOD\n{segments}", max_objects=10)
    # Then m3u8 stops (at 10,000 tags, the step floor) or the object cap stops the parse
    assert manifest.truncated and len(manifest.references) == 10


# ---------------------------------------------------------------- EXT-X-DEFINE


def test_name_value_queryparam_and_import_substitute_in_uris_and_quoted_values() -> None:
    master = hls(
        "#EXTM3U\n"
        '#EXT-X-DEFINE:NAME="title",VALUE="premiere"\n'
        '#EXT-X-DEFINE:NAME="path",VALUE="/{$title}/hls"\n'  # a VALUE is substituted too
        '#EXT-X-DEFINE:QUERYPARAM="token"\n'
        '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="a",NAME="{$title}",URI="{$path}/audio.m3u8"\n'
        '#EXT-X-STREAM-INF:BANDWIDTH=1,AUDIO="a"\n'
        "{$path}/video.m3u8?token={$token}\n",
        uri="/v/master.m3u8?token=s%20ig",
    )
    assert kinds(master) == [
        ("/premiere/hls/video.m3u8?token=s%20ig", "playlist"),
        ("/premiere/hls/audio.m3u8", "playlist"),
    ]
    assert dict(master.variables) == {
        "title": "premiere",
        "path": "/premiere/hls",
        "token": "s ig",
    }
    # The media playlist imports from its multivariant playlist's variables
    media = hls(
        '#EXTM3U\n#EXT-X-DEFINE:IMPORT="path"\n#EXT-X-PLAYLIST-TYPE:VOD\n'
        '#EXT-X-MAP:URI="{$path}/init.mp4"\n#EXTINF:4,{$not-a-uri}\n{$path}/s1.m4s\n'
        "#EXT-X-ENDLIST\n",
        uri="/premiere/hls/video.m3u8",
        variables=master.variables,
    )
    # (an EXTINF title is no quoted string: never substituted, never an error)
    assert kinds(media) == [("/premiere/hls/init.mp4", "init"), ("/premiere/hls/s1.m4s", "segment")]


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("#EXTINF:4,\n{$missing}/a.ts\n", "'missing'"),
        ('#EXT-X-MAP:URI="{$m}.mp4"\n#EXT-X-DEFINE:NAME="m",VALUE="x"\n', "'m'"),  # used before
        ('#EXT-X-DEFINE:IMPORT="base"\n', "'base'"),
        ('#EXT-X-DEFINE:QUERYPARAM="token"\n', "'token'"),
        ('#EXT-X-DEFINE:NAME="a",VALUE="1"\n#EXT-X-DEFINE:NAME="a",VALUE="2"\n', "'a'"),
        ('#EXT-X-DEFINE:NAME="a"\n', "'a'"),
        ('#EXT-X-DEFINE:NAME="a b",VALUE="1"\n', "'a b'"),
    ],
)
def test_a_variable_the_playlist_cannot_define_refuses_it_naming_the_variable(
    text: str, named: str
) -> None:
    manifest = hls(f"#EXTM3U\n#EXT-X-PLAYLIST-TYPE:VOD\n{text}#EXT-X-ENDLIST\n")
    assert not manifest.expanded and manifest.references == ()
    assert (manifest.reason or "").startswith("playlist refused (EXT-X-DEFINE)")
    assert named in (manifest.reason or "")


def test_variables_cannot_grow_a_small_playlist_into_a_large_one() -> None:
    # Given 16 variables each doubling the one before: 2^16 × 1 KB if substituted blindly
    defines = '#EXT-X-DEFINE:NAME="v0",VALUE="' + "x" * 1024 + '"\n'
    defines += "".join(
        f'#EXT-X-DEFINE:NAME="v{i}",VALUE="{{$v{i - 1}}}{{$v{i - 1}}}"\n' for i in range(1, 17)
    )
    started = time.perf_counter()
    manifest = hls(f"#EXTM3U\n{defines}#EXTINF:4,\n{{$v16}}.ts\n#EXT-X-ENDLIST\n")
    assert not manifest.expanded and "longer than 8192 bytes" in (manifest.reason or "")
    # And a line of many references to a large value stops before it is built
    many = "{$big}" * 100_000
    manifest = hls(
        f'#EXTM3U\n#EXT-X-DEFINE:NAME="big",VALUE="{"y" * 8000}"\n#EXTINF:4,\n{many}\n'
        "#EXT-X-ENDLIST\n"
    )
    assert not manifest.expanded and "too long" in (manifest.reason or "")
    assert time.perf_counter() - started < 5
