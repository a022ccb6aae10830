"""RFC 3986 reference resolution: every URI a manifest names becomes absolute one way."""

from __future__ import annotations

import time

import pytest

from shared.manifests import parse_manifest
from shared.video.uris import remove_dot_segments, resolve, split

BASE = "http://a/b/c/d;p?q"

# RFC 3986 §5.4.1 and §5.4.2, word for word; "http:g" as the non-strict reading of
# §5.2.2 (what browsers do), the RFC's own alternative to "http:g".
EXAMPLES = {
    "g:h": "g:h",
    "g": "http://a/b/c/g",
    "./g": "http://a/b/c/g",
    "g/": "http://a/b/c/g/",
    "/g": "http://a/g",
    "//g": "http://g",
    "?y": "http://a/b/c/d;p?y",
    "g?y": "http://a/b/c/g?y",
    "#s": "http://a/b/c/d;p?q",
    "g#s": "http://a/b/c/g",
    "g?y#s": "http://a/b/c/g?y",
    ";x": "http://a/b/c/;x",
    "g;x": "http://a/b/c/g;x",
    "g;x?y#s": "http://a/b/c/g;x?y",
    "": "http://a/b/c/d;p?q",
    ".": "http://a/b/c/",
    "./": "http://a/b/c/",
    "..": "http://a/b/",
    "../": "http://a/b/",
    "../g": "http://a/b/g",
    "../..": "http://a/",
    "../../": "http://a/",
    "../../g": "http://a/g",
    "../../../g": "http://a/g",
    "../../../../g": "http://a/g",
    "/./g": "http://a/g",
    "/../g": "http://a/g",
    "g.": "http://a/b/c/g.",
    ".g": "http://a/b/c/.g",
    "g..": "http://a/b/c/g..",
    "..g": "http://a/b/c/..g",
    "./../g": "http://a/b/g",
    "./g/.": "http://a/b/c/g/",
    "g/./h": "http://a/b/c/g/h",
    "g/../h": "http://a/b/c/h",
    "g;x=1/./y": "http://a/b/c/g;x=1/y",
    "g;x=1/../y": "http://a/b/c/y",
    "g?y/./x": "http://a/b/c/g?y/./x",
    "g?y/../x": "http://a/b/c/g?y/../x",
    "g#s/./x": "http://a/b/c/g",
    "g#s/../x": "http://a/b/c/g",
    "http:g": "http://a/b/c/g",
}


@pytest.mark.parametrize(("reference", "target"), EXAMPLES.items())
def test_the_rfc_3986_examples_resolve_as_the_rfc_says(reference: str, target: str) -> None:
    assert resolve(split(BASE), split(reference)).text() == target


def test_remove_dot_segments_follows_the_rfc_examples_and_is_linear() -> None:
    # RFC 3986 §5.2.4's two worked examples
    assert remove_dot_segments("/a/b/c/./../../g") == "/a/g"
    assert remove_dot_segments("mid/content=5/../6") == "mid/6"
    # A hostile run of dot segments costs one pass, not one pass per segment
    started = time.perf_counter()
    assert remove_dot_segments("/x" + "/.." * 200_000 + "/y") == "/y"
    assert time.perf_counter() - started < 2


def uris(text: str, uri: str = "/v/index.m3u8") -> list[str]:
    body = f"#EXTM3U\n#EXT-X-PLAYLIST-TYPE:VOD\n{text}\n#EXT-X-ENDLIST\n".encode()
    return [r.uri for r in parse_manifest(uri, body, None, "cdn.example.com").references]


def test_an_empty_segment_is_kept_as_players_keep_it() -> None:
    # RFC 3986 §5.2.4 removes "." segments, never empty ones: ".//entire6.ts" against
    # /v/index.m3u8 is /v//entire6.ts (urljoin made it /v/entire6.ts, another object)
    assert uris("#EXTINF:4,\n.//entire6.ts") == ["/v//entire6.ts"]


def test_query_and_fragment_resolve_by_the_rfc() -> None:
    # A fragment names no other object; an empty reference keeps the base's query
    assert uris("#EXTINF:4,\na.ts#t=3\n#EXTINF:4,\nb.ts?x=1#f", "/v/index.m3u8?token=9") == [
        "/v/a.ts",
        "/v/b.ts?x=1",
    ]


def test_a_colon_in_the_first_segment_is_a_scheme_unless_it_cannot_be_one() -> None:
    # "seg:1.ts" is scheme "seg" (not http: ignored); "my file:1.ts" has no valid scheme
    # (RFC 3986 §3.1), so it is a relative path, as browsers read it
    assert uris("#EXTINF:4,\nseg:1.ts\n#EXTINF:4,\nmy file:1.ts\n#EXTINF:4,\n./seg:2.ts") == [
        "/v/my%20file:1.ts",
        "/v/seg:2.ts",
    ]


def test_nested_base_urls_resolve_the_same_way() -> None:
    body = b"""<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static"
        mediaPresentationDuration="PT2S"><BaseURL>./media//</BaseURL>
      <Period><BaseURL>../p/./</BaseURL><AdaptationSet><BaseURL>v?x=1</BaseURL>
        <Representation id="r"><BaseURL>a/../r.mp4</BaseURL><SegmentBase/></Representation>
      </AdaptationSet></Period></MPD>"""
    manifest = parse_manifest("/m/manifest.mpd", body, None, "cdn.example.com")
    # /m/ + ./media// = /m/media// ; + ../p/./ = /m/media/p/ ; + v?x=1 ; + a/../r.mp4
    assert [r.uri for r in manifest.references] == ["/m/media/p/r.mp4"]
