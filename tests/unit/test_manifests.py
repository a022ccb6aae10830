"""Video manifests: what an HLS playlist or a DASH MPD references, and what it must not."""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pytest_mock import MockerFixture

from shared.keys import ObjectKey
from shared.manifests import (
    MAX_MANIFEST_BYTES,
    Manifest,
    manifest_format,
    parse_manifest,
)
from tests.budget import examples

HOST = "cdn.example.com"


def hls(uri: str, text: str, host: str | None = HOST, **kwargs: int) -> Manifest:
    return parse_manifest(uri, text.encode(), "application/vnd.apple.mpegurl", host, **kwargs)


def dash(uri: str, text: str, **kwargs: int) -> Manifest:
    return parse_manifest(uri, text.encode(), "application/dash+xml", HOST, **kwargs)


def paths(manifest: Manifest, kind: str | None = None) -> list[str]:
    return [r.path for r in manifest.references if kind is None or r.kind == kind]


# ---------------------------------------------------------------- which bodies are manifests


@pytest.mark.parametrize(
    ("uri", "content_type", "expected"),
    [
        ("/v/master.m3u8", None, "hls"),
        ("/v/MASTER.M3U8", "application/octet-stream", "hls"),
        ("/v/index", "application/vnd.apple.mpegurl", "hls"),
        ("/v/index", "application/x-mpegURL; charset=utf-8", "hls"),
        ("/v/manifest.mpd", None, "dash"),
        ("/v/manifest", "application/dash+xml", "dash"),
        ("/v/segment.ts", "video/mp2t", None),
        ("/v/a.m3u8.bak", None, None),
    ],
)
def test_a_manifest_is_known_by_its_extension_or_content_type(
    uri: str, content_type: str | None, expected: str | None
) -> None:
    assert manifest_format(uri, content_type) == expected


def test_a_body_that_is_not_a_manifest_is_not_expanded() -> None:
    result = parse_manifest("/v/a.bin", b"\x00\x01binary", "video/mp4", HOST)
    assert not result.expanded and result.references == ()
    assert result.reason == "not an HLS playlist or a DASH manifest"


def test_a_manifest_over_the_size_cap_is_refused_unparsed() -> None:
    body = b"#EXTM3U\n" + b"#" * MAX_MANIFEST_BYTES
    result = parse_manifest("/v/big.m3u8", body, None, HOST)
    assert not result.expanded and "the most parsed is" in (result.reason or "")


# ---------------------------------------------------------------- HLS master playlists

MASTER = """#EXTM3U
#EXT-X-VERSION:6
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-SESSION-KEY:METHOD=SAMPLE-AES,URI="skd://key-id",KEYFORMAT="com.apple.streamingkeydelivery"
#EXT-X-SESSION-KEY:METHOD=AES-128,URI="keys/session.key"
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="English",LANGUAGE="en",URI="audio/en/index.m3u8"
#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="sub",NAME="Français",URI="subs/fr/index.m3u8"
#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID="cc",NAME="English",INSTREAM-ID="CC1"
#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=640x360,AUDIO="aud",SUBTITLES="sub"
360p/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=2400000,RESOLUTION=1280x720,AUDIO="aud"
https://cdn.example.com/premiere/720p/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=6000000,RESOLUTION=1920x1080
/premiere/1080p/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=9000000
https://elsewhere.example.net/premiere/4k/index.m3u8
#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=90000,URI="360p/iframes.m3u8"
"""


def test_master_playlist_brings_variants_renditions_and_iframe_playlists() -> None:
    # Given a master playlist with variants, renditions and an I-frame playlist
    result = hls("/premiere/master.m3u8", MASTER)
    # Then every one on the viewer host is a playlist, resolved against the master's URI
    assert result.expanded and result.format == "hls"
    assert sorted(paths(result, "playlist")) == [
        "/premiere/1080p/index.m3u8",
        "/premiere/360p/iframes.m3u8",
        "/premiere/360p/index.m3u8",
        "/premiere/720p/index.m3u8",
        "/premiere/audio/en/index.m3u8",
        "/premiere/subs/fr/index.m3u8",
    ]
    # And neither session key nor the other host's variant is among them
    assert not any("key" in path for path in paths(result))
    reasons = {ignored.uri: ignored.reason for ignored in result.ignored}
    assert reasons["keys/session.key"].startswith("encryption key")
    assert reasons["https://elsewhere.example.net/premiere/4k/index.m3u8"] == "another host"


# ---------------------------------------------------------------- HLS media playlists

MEDIA = """#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:4
#EXT-X-PLAYLIST-TYPE:VOD
#EXT-X-MAP:URI="init.mp4"
#EXT-X-KEY:METHOD=AES-128,URI="../keys/k1.key",IV=0x1
#EXTINF:4.0,
seg-0.m4s
#EXTINF:4.0,
seg-1.m4s
#EXT-X-KEY:METHOD=NONE
#EXTINF:4.0,
/premiere/360p/seg 2.m4s?token=a%20b
#EXT-X-MAP:URI="init-b.mp4",BYTERANGE="800@0"
#EXTINF:4.0,
data:video/mp4;base64,AAAA
#EXTINF:4.0,
ftp://cdn.example.com/premiere/360p/seg-4.m4s
#EXT-X-ENDLIST
"""


def test_media_playlist_brings_its_init_sections_and_segments() -> None:
    result = hls("/premiere/360p/index.m3u8", MEDIA)
    assert paths(result, "init") == ["/premiere/360p/init.mp4", "/premiere/360p/init-b.mp4"]
    assert paths(result, "segment") == [
        "/premiere/360p/seg-0.m4s",
        "/premiere/360p/seg-1.m4s",
        "/premiere/360p/seg%202.m4s",  # percent-encoded as CloudFront passes it
    ]
    # The query travels with the reference, as a viewer sends it
    assert [r.uri for r in result.references if r.query] == [
        "/premiere/360p/seg%202.m4s?token=a%20b"
    ]


def test_media_playlist_never_returns_a_key_a_data_uri_or_another_scheme() -> None:
    result = hls("/premiere/360p/index.m3u8", MEDIA)
    assert "/premiere/keys/k1.key" not in paths(result)
    assert result.ignored_reasons["encryption key (EXT-X-KEY / EXT-X-SESSION-KEY)"] == 1
    assert result.ignored_reasons["data URI"] == 1
    assert any("not http(s)" in ignored.reason for ignored in result.ignored)


def test_byte_range_segments_of_one_file_are_one_object() -> None:
    body = """#EXTM3U
#EXT-X-PLAYLIST-TYPE:VOD
#EXT-X-MAP:URI="main.mp4",BYTERANGE="720@0"
#EXTINF:4,
#EXT-X-BYTERANGE:100000@720
main.mp4
#EXTINF:4,
#EXT-X-BYTERANGE:100000
main.mp4
#EXTINF:4,
#EXT-X-BYTERANGE:100000
main.mp4
#EXT-X-ENDLIST
"""
    result = hls("/v/1080p.m3u8", body)
    # The init section's range is the same file too: one object, the media file
    assert [(r.path, r.kind) for r in result.references] == [("/v/main.mp4", "segment")]


@pytest.mark.parametrize(
    ("tags", "expanded"),
    [
        ("#EXT-X-ENDLIST\n", True),
        ("", False),  # live: the list grows while it is read
        ("#EXT-X-PLAYLIST-TYPE:EVENT\n", False),
        ("#EXT-X-PLAYLIST-TYPE:EVENT\n#EXT-X-ENDLIST\n", True),
        ("#EXT-X-PLAYLIST-TYPE:VOD\n", True),
    ],
)
def test_live_playlists_are_not_expanded(tags: str, expanded: bool) -> None:
    body = f"#EXTM3U\n#EXT-X-TARGETDURATION:4\n{tags}#EXTINF:4,\na.ts\n"
    result = hls("/live/index.m3u8", body)
    assert result.expanded is expanded
    if not expanded:
        assert result.references == ()
        assert result.reason == "live playlist (no EXT-X-ENDLIST and no EXT-X-PLAYLIST-TYPE:VOD)"


def test_absolute_uris_count_only_on_the_viewer_host() -> None:
    body = """#EXTM3U
#EXT-X-PLAYLIST-TYPE:VOD
#EXTINF:4,
https://CDN.example.com/v/a.ts
#EXTINF:4,
http://cdn.example.com:443/v/b.ts
#EXTINF:4,
//cdn.example.com/v/c.ts
#EXTINF:4,
https://evil.example.org/v/d.ts
#EXTINF:4,
https://user:pw@cdn.example.com/v/e.ts
#EXTINF:4,
https://cdn.example.com.evil.org/v/f.ts
#EXT-X-ENDLIST
"""
    result = hls("/v/index.m3u8", body)
    assert paths(result) == ["/v/a.ts", "/v/c.ts"]
    assert result.ignored_reasons == {"another host": 3, "URI carries credentials": 1}


def test_without_a_viewer_host_only_relative_uris_count() -> None:
    body = "#EXTM3U\n#EXT-X-ENDLIST\n#EXTINF:4,\na.ts\n#EXTINF:4,\nhttps://cdn.example.com/b.ts\n"
    assert paths(hls("/v/index.m3u8", body, host=None)) == ["/v/a.ts"]


@pytest.mark.parametrize(
    "uri",
    [
        "_edgefill/../../_edgefill/leases/x",  # resolves into the reserved prefix
        "/_edgefill/leases/x",
        "%2e%2e/secret.ts",  # an encoded dot segment survives URL resolution
        "a%zz.ts",  # a "%" that is not an escape
        "a%00.ts",  # NUL
        "a%ff.ts",  # not UTF-8
        "x" * 9000 + ".ts",  # longer than any viewer URI
    ],
)
def test_every_derived_uri_goes_through_the_key_rules(uri: str) -> None:
    body = f"#EXTM3U\n#EXT-X-ENDLIST\n#EXTINF:4,\n{uri}\n"
    result = hls("/v/index.m3u8", body)
    assert result.references == ()
    assert result.ignored and result.ignored[0].reason.startswith("key rules")


@pytest.mark.parametrize(
    ("uri", "reason"),
    [
        ("a+b.ts", "key rules (non_canonical)"),  # S3 reads "+" as a space
        ("a%2Fb.ts", "key rules (non_canonical)"),  # S3 reads %2F as "/"
        ("%5Cx.ts", "key rules (non_canonical)"),
        ("a%3Bb.ts", "key rules (non_canonical)"),
        ("/_edgefill/x", "key rules (bad_key)"),
    ],
)
def test_the_non_canonical_rule_applies_as_to_a_viewer_uri(uri: str, reason: str) -> None:
    body = f"#EXTM3U\n#EXT-X-ENDLIST\n#EXTINF:4,\n{uri}\n#EXTINF:4,\na%2bb.ts\n"
    result = hls("/v/index.m3u8", body)
    # The escaped spelling of the same name is the canonical one: it counts
    assert paths(result) == ["/v/a%2bb.ts"]
    assert result.ignored_reasons == {reason: 1}


def test_dot_segments_resolve_like_a_player_resolves_them() -> None:
    body = "#EXTM3U\n#EXT-X-ENDLIST\n#EXTINF:4,\n../shared/a.ts\n#EXTINF:4,\n../../../../b.ts\n"
    assert paths(hls("/v/x/index.m3u8", body)) == ["/v/shared/a.ts", "/b.ts"]


def test_non_ascii_uris_are_percent_encoded_and_map_to_the_viewer_key() -> None:
    body = "#EXTM3U\n#EXT-X-ENDLIST\n#EXTINF:4,\n東京/café 1.ts\n"
    [reference] = hls("/v/index.m3u8", body).references
    assert reference.path == "/v/%E6%9D%B1%E4%BA%AC/caf%C3%A9%201.ts"
    assert ObjectKey.from_uri(reference.path).key == "v/東京/café 1.ts"


@pytest.mark.parametrize(
    "body",
    [b"#EXTM3U\n\xff\xfe broken", b"not a playlist\n#EXTINF:4,\na.ts\n"],
)
def test_a_playlist_that_is_not_utf8_or_lacks_extm3u_is_not_expanded(body: bytes) -> None:
    result = parse_manifest("/v/index.m3u8", body, None, HOST)
    assert not result.expanded and result.references == ()


def test_the_object_cap_stops_the_parse_and_says_so() -> None:
    segments = "".join(f"#EXTINF:4,\ns{i}.ts\n" for i in range(100))
    result = hls("/v/index.m3u8", f"#EXTM3U\n{segments}#EXT-X-ENDLIST\n", max_objects=30)
    assert len(result.references) == 30 and result.truncated


# ---------------------------------------------------------------- DASH

MPD_NS = 'xmlns="urn:mpeg:dash:schema:mpd:2011"'


def mpd(body: str, attributes: str = 'mediaPresentationDuration="PT10S"') -> str:
    return f'<?xml version="1.0"?>\n<MPD {MPD_NS} type="static" {attributes}>{body}</MPD>'


def test_template_with_duration_numbers_every_segment_of_the_presentation() -> None:
    body = mpd(
        """<Period><AdaptationSet>
        <SegmentTemplate timescale="1000" duration="4000" startNumber="1"
          initialization="$RepresentationID$/init.mp4" media="$RepresentationID$/$Number%05d$.m4s"/>
        <Representation id="v360" bandwidth="800000"/>
        <Representation id="v720" bandwidth="2400000"/>
      </AdaptationSet></Period>"""
    )
    result = dash("/premiere/manifest.mpd", body)
    # 10 s / 4 s = 3 segments (the last one short), numbered from 1, for each representation
    assert paths(result, "init") == ["/premiere/v360/init.mp4", "/premiere/v720/init.mp4"]
    assert paths(result, "segment") == [
        f"/premiere/{rep}/{n:05d}.m4s" for rep in ("v360", "v720") for n in (1, 2, 3)
    ]


def test_template_bandwidth_and_number_without_width() -> None:
    body = mpd(
        """<Period duration="PT8S"><AdaptationSet><Representation id="a" bandwidth="128000">
        <SegmentTemplate duration="2" startNumber="0" media="audio_$Bandwidth$_$Number$.mp4"
          initialization="audio_$Bandwidth%08d$.mp4"/>
        </Representation></AdaptationSet></Period>""",
        attributes='mediaPresentationDuration="PT1H"',
    )
    result = dash("/m/manifest.mpd", body)
    # The Period's own duration bounds it (8 s / 2 = 4), not the presentation's hour
    assert paths(result, "segment") == [f"/m/audio_128000_{n}.mp4" for n in range(4)]
    assert paths(result, "init") == ["/m/audio_00128000.mp4"]


def test_template_end_number_bounds_it_without_a_duration() -> None:
    body = mpd(
        """<Period><AdaptationSet><Representation id="r">
        <SegmentTemplate duration="1" startNumber="5" endNumber="7" media="$Number$.m4s"/>
        </Representation></AdaptationSet></Period>""",
        attributes="",
    )
    assert paths(dash("/m.mpd", body)) == ["/5.m4s", "/6.m4s", "/7.m4s"]


def test_template_without_any_bound_is_ignored_with_a_reason() -> None:
    body = mpd(
        """<Period><AdaptationSet><Representation id="r">
        <SegmentTemplate duration="1" media="$Number$.m4s"/>
        </Representation></AdaptationSet></Period>""",
        attributes="",
    )
    result = dash("/m.mpd", body)
    assert result.references == ()
    assert "no Period or presentation duration" in result.ignored[0].reason


def test_segment_timeline_with_repeats_and_time() -> None:
    body = mpd(
        """<Period><AdaptationSet>
        <SegmentTemplate timescale="90000" media="v/$RepresentationID$-$Time$.m4s"
          initialization="v/$RepresentationID$-init.m4s">
          <SegmentTimeline>
            <S t="1000" d="180000" r="2"/>
            <S d="90000"/>
            <S t="900000" d="180000" r="1"/>
          </SegmentTimeline>
        </SegmentTemplate>
        <Representation id="hd"/>
      </AdaptationSet></Period>"""
    )
    result = dash("/m/manifest.mpd", body)
    times = [1000, 181000, 361000, 541000, 900000, 1080000]
    assert paths(result, "segment") == [f"/m/v/hd-{t}.m4s" for t in times]
    assert paths(result, "init") == ["/m/v/hd-init.m4s"]


def test_segment_timeline_numbers_count_from_start_number() -> None:
    body = mpd(
        """<Period><AdaptationSet><Representation id="r">
        <SegmentTemplate startNumber="10" media="$Number%03d$.m4s">
          <SegmentTimeline><S t="0" d="2" r="1"/><S d="1"/></SegmentTimeline>
        </SegmentTemplate></Representation></AdaptationSet></Period>"""
    )
    assert paths(dash("/m.mpd", body)) == ["/010.m4s", "/011.m4s", "/012.m4s"]


def test_segment_timeline_r_minus_one_repeats_until_the_next_s_or_the_period_end() -> None:
    body = mpd(
        """<Period duration="PT10S"><AdaptationSet><Representation id="r">
        <SegmentTemplate timescale="10" media="$Time$.m4s">
          <SegmentTimeline>
            <S t="0" d="20" r="-1"/>
            <S t="50" d="20" r="-1"/>
          </SegmentTimeline>
        </SegmentTemplate></Representation></AdaptationSet></Period>""",
        attributes="",
    )
    # 0, 20, 40 (until t=50); then 50, 70, 90 (until 10 s × 10 = 100)
    assert paths(dash("/m.mpd", body)) == [f"/{t}.m4s" for t in (0, 20, 40, 50, 70, 90)]


def test_a_hostile_timeline_repeat_is_bounded_by_the_cap() -> None:
    # Given an S repeated 10^12 times
    body = mpd(
        """<Period><AdaptationSet><Representation id="r">
        <SegmentTemplate media="$Number$.m4s">
          <SegmentTimeline><S t="0" d="1" r="1000000000000"/></SegmentTimeline>
        </SegmentTemplate></Representation></AdaptationSet></Period>"""
    )
    started = time.monotonic()
    result = dash("/m.mpd", body, max_objects=500)
    # Then the parse stops at the cap, at once
    assert len(result.references) == 500 and result.truncated
    assert time.monotonic() - started < 5


def test_a_template_without_number_or_time_repeated_everywhere_is_bounded() -> None:
    # Given 2,000 representations whose template names one and the same object
    reps = "".join(f'<Representation id="r{i}"/>' for i in range(2000))
    body = mpd(
        f"""<Period><AdaptationSet>
        <SegmentTemplate duration="1" media="same.m4s"/>{reps}</AdaptationSet></Period>""",
        attributes='mediaPresentationDuration="P1000000Y"',
    )
    result = dash("/m.mpd", body, max_objects=10)
    assert paths(result) == ["/same.m4s"]


@pytest.mark.parametrize(
    "segment_information",
    [
        '<SegmentTemplate duration="1" media="same.m4s"/>',
        "<BaseURL>same.mp4</BaseURL><SegmentBase/>",
    ],
)
def test_representations_inherit_from_their_adaptation_set_in_work_linear_in_the_mpd(
    segment_information: str, mocker: MockerFixture
) -> None:
    # Given an MPD whose AdaptationSet holds 2,000 Representations and one description of
    # their segments (a hostile origin's, or a big ladder), with the parser's element-name
    # helper counted: each child an element has is looked at a bounded number of times
    import shared.video.dash

    looked_at = mocker.spy(shared.video.dash, "_local")
    reps = "".join(f'<Representation id="r{i}"/>' for i in range(2000))
    body = mpd(f"<Period><AdaptationSet>{segment_information}{reps}</AdaptationSet></Period>")
    # When it is parsed
    result = dash("/m.mpd", body)
    # Then every Representation inherits the one description, and the names looked at grow
    # with the elements, not with Representations x siblings (12 million before the fix)
    assert paths(result) in (["/same.m4s"], ["/same.mp4"])
    assert looked_at.call_count < 10 * 2000


def test_template_attributes_inherit_from_period_and_adaptation_set() -> None:
    body = mpd(
        """<Period duration="PT4S">
        <SegmentTemplate timescale="1" duration="2" media="$RepresentationID$/$Number$.m4s"/>
        <AdaptationSet><SegmentTemplate startNumber="0"/>
          <Representation id="a"><SegmentTemplate initialization="$RepresentationID$/i.mp4"/>
          </Representation>
        </AdaptationSet></Period>""",
        attributes="",
    )
    result = dash("/m.mpd", body)
    assert paths(result) == ["/a/i.mp4", "/a/0.m4s", "/a/1.m4s"]


@pytest.mark.parametrize(
    "media",
    ["$Unknown$.m4s", "$Number%0999d$.m4s", "$RepresentationID%05d$.m4s", "a$Number.m4s"],
)
def test_a_malformed_template_is_ignored_with_a_reason(media: str) -> None:
    body = mpd(
        f"""<Period><AdaptationSet><Representation id="r">
        <SegmentTemplate duration="1" media="{media}"/></Representation></AdaptationSet></Period>"""
    )
    result = dash("/m.mpd", body)
    assert result.references == () and result.ignored[0].reason.startswith("template")


def test_dollar_dollar_is_a_literal_dollar() -> None:
    body = mpd(
        """<Period><AdaptationSet><Representation id="r">
        <SegmentTemplate duration="5" media="$$$Number$.m4s"/></Representation></AdaptationSet>
        </Period>"""
    )
    assert paths(dash("/m.mpd", body)) == ["/$1.m4s", "/$2.m4s"]


def test_segment_list_and_base_urls_at_every_level() -> None:
    body = mpd(
        """<BaseURL>content/</BaseURL>
        <Period><BaseURL>p1/</BaseURL>
          <AdaptationSet><BaseURL>video/</BaseURL>
            <Representation id="v1"><BaseURL>v1/</BaseURL>
              <SegmentList duration="2">
                <Initialization sourceURL="init.mp4"/>
                <SegmentURL media="s1.m4s"/><SegmentURL media="s2.m4s"/>
              </SegmentList>
            </Representation>
            <Representation id="v2"><BaseURL>/other/v2.mp4</BaseURL>
              <SegmentList><SegmentURL mediaRange="0-99"/><SegmentURL mediaRange="100-199"/>
              </SegmentList>
            </Representation>
          </AdaptationSet>
        </Period>"""
    )
    result = dash("/m/manifest.mpd", body)
    assert paths(result, "init") == ["/m/content/p1/video/v1/init.mp4"]
    assert paths(result, "segment") == [
        "/m/content/p1/video/v1/s1.m4s",
        "/m/content/p1/video/v1/s2.m4s",
        "/other/v2.mp4",  # byte ranges of one file: one object
    ]


def test_segment_base_single_file_representations() -> None:
    body = mpd(
        """<Period><AdaptationSet>
          <Representation id="a"><BaseURL>audio/en.mp4</BaseURL>
            <SegmentBase indexRange="800-1200"><Initialization range="0-799"/></SegmentBase>
          </Representation>
          <Representation id="b"><BaseURL>audio/fr.mp4</BaseURL>
            <SegmentBase><Initialization sourceURL="fr-init.mp4"/></SegmentBase>
          </Representation>
          <Representation id="c"><BaseURL>https://cdn.example.com/abs/c.mp4</BaseURL>
          </Representation>
          <Representation id="d"><BaseURL>https://other.example.net/d.mp4</BaseURL>
          </Representation>
          <Representation id="e"/>
        </AdaptationSet></Period>"""
    )
    result = dash("/m/manifest.mpd", body)
    assert paths(result, "segment") == ["/m/audio/en.mp4", "/m/audio/fr.mp4", "/abs/c.mp4"]
    assert paths(result, "init") == ["/m/audio/fr-init.mp4"]
    assert result.ignored_reasons == {
        "another host": 1,
        "Representation without segment information": 1,
    }


def test_multiple_periods_take_their_length_from_the_next_start() -> None:
    body = mpd(
        """<Period id="1" start="PT0S"><AdaptationSet><Representation id="a">
          <SegmentTemplate duration="2" media="p1-$Number$.m4s"/></Representation>
          </AdaptationSet></Period>
        <Period id="2" start="PT4S"><AdaptationSet><Representation id="a">
          <SegmentTemplate duration="2" media="p2-$Number$.m4s"/></Representation>
          </AdaptationSet></Period>""",
        attributes='mediaPresentationDuration="PT6.5S"',
    )
    assert paths(dash("/m.mpd", body)) == [
        "/p1-1.m4s",
        "/p1-2.m4s",
        "/p2-1.m4s",
        "/p2-2.m4s",  # 2.5 s left: two segments, the last one short
    ]


def test_a_dynamic_mpd_is_not_expanded() -> None:
    body = mpd(
        """<Period><AdaptationSet><Representation id="r">
        <SegmentTemplate duration="1" media="$Number$.m4s"/></Representation></AdaptationSet>
        </Period>""",
        attributes='type="dynamic" availabilityStartTime="2026-01-01T00:00:00Z"',
    ).replace('type="static" ', "")
    result = dash("/live.mpd", body)
    assert not result.expanded and result.reason == 'live MPD (type="dynamic")'


def test_a_remote_period_is_not_fetched() -> None:
    body = mpd(
        '<Period xmlns:xlink="http://www.w3.org/1999/xlink" xlink:href="https://x.example/p"/>'
    )
    result = dash("/m.mpd", body)
    assert result.references == () and result.ignored_reasons == {"remote Period (xlink:href)": 1}


# ---------------------------------------------------------------- hostile XML

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<MPD><BaseURL>&lol9;</BaseURL></MPD>"""
EXTERNAL_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE MPD [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<MPD><BaseURL>&xxe;</BaseURL></MPD>"""
EXTERNAL_DTD = """<?xml version="1.0"?>
<!DOCTYPE MPD SYSTEM "http://attacker.example/evil.dtd">
<MPD><Period/></MPD>"""


@pytest.mark.parametrize("body", [BILLION_LAUGHS, EXTERNAL_ENTITY, EXTERNAL_DTD])
def test_hostile_xml_is_refused(body: str) -> None:
    result = dash("/m.mpd", body)
    assert not result.expanded and result.references == ()
    assert (result.reason or "").startswith("MPD refused")


@pytest.mark.parametrize(
    "body", ["<MPD><Period>", "<NotMPD/>", "", "<MPD>\x00</MPD>", "<?xml version='1.0'?><a:MPD/>"]
)
def test_malformed_xml_is_not_expanded(body: str) -> None:
    result = dash("/m.mpd", body)
    assert not result.expanded and result.reason


# ---------------------------------------------------------------- properties

# Every URI on another host carries FOREIGN in its path; random text never does.
uri_text = st.one_of(
    st.text(max_size=40).filter(lambda text: "FOREIGN" not in text.upper()),
    st.sampled_from(
        [
            "https://evil.example.org/FOREIGN/x.ts",
            "//evil.example.org/FOREIGN/y.ts",
            "http://cdn.example.com@evil.example.org/FOREIGN/z.ts",
            "https://cdn.example.com.evil.example.org/FOREIGN/w.ts",
            "data:,x",
            "javascript:alert(1)",
            "../../../../etc/passwd",
            "\\\\evil\\FOREIGN",
            "https://[::1]/FOREIGN/v.ts",
        ]
    ),
)


def assert_on_viewer_host(result: Manifest) -> None:
    for reference in result.references:
        assert reference.path.startswith("/") and not reference.path.startswith("//")
        assert "FOREIGN" not in reference.path.upper() and "://" not in reference.path
        ObjectKey.from_uri(reference.path)  # raises if a key rule is broken


@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.binary(max_size=2000),
    st.sampled_from([None, "application/x-mpegurl", "application/dash+xml"]),
)
def test_parser_never_raises_on_arbitrary_bytes(body: bytes, content_type: str | None) -> None:
    result = parse_manifest("/v/index.m3u8", body, content_type, HOST, max_objects=100)
    assert_on_viewer_host(result)


@settings(max_examples=examples(300), deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(
                [
                    "",
                    "#EXT-X-MAP:URI=",
                    "#EXT-X-STREAM-INF:BANDWIDTH=1\n",
                    '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="a",NAME="n",URI=',
                ]
            ),
            uri_text,
        ),
        max_size=15,
    )
)
def test_hls_never_yields_a_uri_outside_the_viewer_host(lines: list[tuple[str, str]]) -> None:
    body = "#EXTM3U\n#EXT-X-PLAYLIST-TYPE:VOD\n"
    for tag, uri in lines:
        clean = uri.replace("\n", "").replace("\r", "").replace('"', "")
        body += f'{tag}"{clean}"\n' if tag.endswith("=") else f"{tag}#EXTINF:1,\n{clean}\n"
    body += "#EXT-X-ENDLIST\n"
    result = hls("/v/index.m3u8", body)
    assert_on_viewer_host(result)


@settings(max_examples=examples(200), deadline=None)
@given(st.lists(uri_text, max_size=8), st.lists(uri_text, max_size=4))
def test_dash_never_yields_a_uri_outside_the_viewer_host(
    media: list[str], bases: list[str]
) -> None:
    from xml.sax.saxutils import escape, quoteattr

    # (every level gets the same alternatives: the first on our hosts is chosen, issue 21)
    base_xml = "".join(f"<BaseURL>{escape(b)}</BaseURL>" for b in bases)
    segments = "".join(f"<SegmentURL media={quoteattr(m)}/>" for m in media)
    body = mpd(
        f"""{base_xml}<Period>{base_xml}<AdaptationSet><Representation id="r">{base_xml}
        <SegmentList>{segments}</SegmentList></Representation></AdaptationSet></Period>"""
    )
    result = dash("/m.mpd", body)
    assert_on_viewer_host(result)


# Tags m3u8 raises on, a key, and definitions that point at other hosts or our keys: the
# tolerant path and EXT-X-DEFINE, where a hostile playlist has most room.
HOSTILE_TAGS = [
    "#EXTINF:bad,\n",
    "#EXT-X-TARGETDURATION:x\n",
    "#EXT-X-MEDIA-SEQUENCE:\n",
    "#EXT-X-STREAM-INF:PROGRAM-ID=x\n",
    '#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=x,URI="{$v}/i.m3u8"\n',
    "#EXT-X-BYTERANGE:q\n#EXTINF:1,\n",
    '#EXT-X-MAP:URI="{$v}.mp4"\n',
    '#EXT-X-KEY:METHOD=AES-128,URI="keys/SECRET.key"\n',
    "#EXT-X-KEY:METHOD\n",
]
DEFINES = [
    '#EXT-X-DEFINE:NAME="v",VALUE="https://evil.example.org/FOREIGN"\n',
    '#EXT-X-DEFINE:NAME="v",VALUE="//evil.example.org/FOREIGN"\n',
    '#EXT-X-DEFINE:NAME="v",VALUE="keys/SECRET.key#"\n',
    '#EXT-X-DEFINE:NAME="v",VALUE="../../../_edgefill/leases"\n',
    '#EXT-X-DEFINE:NAME="v",VALUE="ok"\n',
    "",
]


@settings(max_examples=examples(150), deadline=None)
@given(
    st.sampled_from(DEFINES),
    st.lists(st.tuples(st.sampled_from(HOSTILE_TAGS), uri_text), max_size=12),
)
def test_malformed_tags_and_variables_never_reach_keys_or_other_hosts(
    define: str, lines: list[tuple[str, str]]
) -> None:
    # (the key is always declared: a playlist naming it again must not get it returned)
    body = "#EXTM3U\n#EXT-X-PLAYLIST-TYPE:VOD\n"
    body += f'#EXT-X-KEY:METHOD=AES-128,URI="keys/SECRET.key"\n{define}'
    for tag, uri in lines:
        clean = uri.replace("\n", "").replace("\r", "").replace("SECRET", "")
        body += f"{tag}#EXTINF:1,\n{clean}\n#EXTINF:1,\n{{$v}}/x.ts\n"
        body += "#EXTINF:1,\nkeys/SECRET.key\n"
    result = hls("/v/index.m3u8", body + "#EXT-X-ENDLIST\n")
    assert_on_viewer_host(result)
    assert not any("SECRET" in reference.uri for reference in result.references)
