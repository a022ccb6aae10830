"""Our hosts: absolute manifest URIs on a viewer host or the full origin (under its path)
name our objects; nothing else does, however a BaseURL or a variable tries."""

from __future__ import annotations

import pytest

from shared.manifests import Manifest, OurHosts, parse_manifest

DOMAIN = "d111111abcdef8.cloudfront.net"
HOSTS = OurHosts.of(
    DOMAIN, "video.example.com", "*.cdn.example.com", origin="https://origin.example.com/vod"
)


def hls(text: str, hosts: OurHosts | str | None = HOSTS, uri: str = "/v/index.m3u8") -> Manifest:
    body = f"#EXTM3U\n#EXT-X-PLAYLIST-TYPE:VOD\n{text}\n#EXT-X-ENDLIST\n".encode()
    return parse_manifest(uri, body, None, hosts)


def segments(*uris: str) -> str:
    return "\n".join(f"#EXTINF:4,\n{uri}" for uri in uris)


def paths(manifest: Manifest) -> list[str]:
    return [reference.uri for reference in manifest.references]


def test_absolute_uris_on_the_distribution_domain_and_its_aliases_are_ours() -> None:
    manifest = hls(
        segments(
            f"https://{DOMAIN}/a.ts",
            "https://VIDEO.example.com:443/b.ts",  # the scheme's default port (RFC 3986 §6.2.3)
            "http://video.example.com/c.ts",
            "https://eu.cdn.example.com/d.ts",  # one label under a wildcard alias
        )
    )
    assert paths(manifest) == ["/a.ts", "/b.ts", "/c.ts", "/d.ts"]


@pytest.mark.parametrize(
    "uri",
    [
        "https://cdn.example.com/x.ts",  # the wildcard's own domain is not under it
        "https://a.b.cdn.example.com/x.ts",  # nor two labels down
        "https://video.example.com:8443/x.ts",  # another port
        "http://video.example.com:443/x.ts",  # http on 443 is not http's default
        "https://video.example.com.evil.example/x.ts",
        "https://video%2Eexample.com/x.ts",  # never decoded: could be read two ways
        "https://evil.example/x.ts",
    ],
)
def test_every_other_host_is_foreign(uri: str) -> None:
    manifest = hls(segments(uri))
    assert manifest.references == () and manifest.ignored_reasons == {"another host": 1}


def test_the_full_origin_maps_under_its_path_and_nowhere_else() -> None:
    manifest = hls(
        segments(
            "https://origin.example.com/vod/title/a.ts",
            "https://origin.example.com/other/b.ts",  # the origin, outside its path
            "http://origin.example.com/vod/title/c.ts",  # another scheme: another service
            "https://origin.example.com:8443/vod/d.ts",
        )
    )
    assert paths(manifest) == ["/title/a.ts"]
    assert manifest.ignored_reasons == {
        "on the full origin, outside EDGEFILL_ORIGIN_URL's path": 1,
        "another host": 2,
    }


def test_a_message_host_that_is_the_origin_counts_as_the_origin_not_as_a_viewer_host() -> None:
    # Given a message queued before issue 21, whose host is the origin's Host
    hosts = OurHosts.of("origin.example.com", origin="https://origin.example.com/vod")
    manifest = hls(segments("https://origin.example.com/a.ts", "rel.ts"), hosts)
    # Then the origin's path prefix still applies: /a.ts is not under /vod
    assert paths(manifest) == ["/v/rel.ts"]


def test_a_host_with_a_port_matches_that_port_only() -> None:
    hosts = OurHosts.of("cdn.lab:8443")
    manifest = hls(segments("https://cdn.lab:8443/a.ts", "https://cdn.lab/b.ts", "c.ts"), hosts)
    assert paths(manifest) == ["/a.ts", "/v/c.ts"]


MPD = 'xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" mediaPresentationDuration="PT4S"'


def dash(inner: str) -> Manifest:
    body = f"<MPD {MPD}>{inner}</MPD>".encode()
    return parse_manifest("/m/manifest.mpd", body, None, HOSTS)


def test_with_several_base_urls_the_first_on_our_hosts_is_used() -> None:
    manifest = dash(
        """<BaseURL>https://other-cdn.example.net/title/</BaseURL>
        <BaseURL serviceLocation="b">https://video.example.com/title/</BaseURL>
        <Period><AdaptationSet><Representation id="v">
          <BaseURL>https://evil.example/</BaseURL><BaseURL>v/</BaseURL>
          <SegmentTemplate media="$Number$.m4s" duration="2"/>
        </Representation></AdaptationSet></Period>"""
    )
    # MPD level: the second alternative is ours; Representation: "v/" resolves against it
    assert paths(manifest) == ["/title/v/1.m4s", "/title/v/2.m4s"]


def test_a_base_url_on_no_host_of_ours_makes_everything_under_it_foreign() -> None:
    manifest = dash(
        """<BaseURL>https://evil.example/steal/</BaseURL>
        <BaseURL>https://user:pw@video.example.com/x/</BaseURL>
        <Period><AdaptationSet><Representation id="v">
          <SegmentTemplate media="$Number$.m4s" initialization="init.mp4" duration="2"/>
        </Representation></AdaptationSet></Period>"""
    )
    assert manifest.references == ()
    assert manifest.ignored_reasons == {"another host": 3}


@pytest.mark.parametrize(
    "base",
    [
        "//evil.example/",
        "\\\\evil.example\\",  # read as //evil.example/ by browsers' players
        "https:/\\evil.example/",
        "https://video.example.com@evil.example/",
        "data:text/plain,x/",
        "../../../../../_edgefill/leases/",
    ],
)
def test_a_hostile_base_url_never_reaches_another_host_or_our_reserved_keys(base: str) -> None:
    manifest = dash(
        f"""<Period><BaseURL>{base}</BaseURL><AdaptationSet><Representation id="v">
          <SegmentTemplate media="seg-$Number$.m4s" duration="2"/>
        </Representation></AdaptationSet></Period>"""
    )
    for reference in manifest.references:
        assert reference.path.startswith("/") and "evil" not in reference.path
        assert not reference.path.startswith("/_edgefill/")


def test_substituted_values_go_through_the_host_and_key_rules() -> None:
    manifest = hls(
        '#EXT-X-DEFINE:NAME="h",VALUE="evil.example"\n'
        '#EXT-X-DEFINE:NAME="up",VALUE="../../../_edgefill"\n'
        '#EXT-X-DEFINE:NAME="ours",VALUE="https://video.example.com"\n'
        + segments("https://{$h}/a.ts", "{$up}/leases/x", "{$ours}/b.ts", "//{$h}/c.ts")
    )
    assert paths(manifest) == ["/b.ts"]
    assert manifest.ignored_reasons == {"another host": 2, "key rules (bad_key)": 1}


def test_a_key_is_never_returned_even_when_a_variable_or_a_segment_line_names_it() -> None:
    # Given a key whose URI comes from a variable, also listed as a segment
    manifest = hls(
        '#EXT-X-DEFINE:NAME="k",VALUE="keys/k1.key"\n'
        '#EXT-X-KEY:METHOD=AES-128,URI="{$k}"\n'
        '#EXT-X-SESSION-KEY:METHOD=AES-128,URI="https://video.example.com/v/keys/k2.key"\n'
        + segments("a.ts", "keys/k1.key", "/v/keys/k2.key")
    )
    # Then neither key is a reference
    assert paths(manifest) == ["/v/a.ts"]
    assert manifest.ignored_reasons["named as an encryption key too"] == 2
