"""URI -> S3 key: decoded once, never outside the prefix, never another host."""

from __future__ import annotations

import posixpath
from urllib.parse import urlsplit

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from shared.keys import (
    MAX_KEY_BYTES,
    RESERVED_PREFIX,
    InvalidKey,
    NonCanonicalUri,
    ObjectKey,
    normalize_prefix,
)
from tests.budget import examples

# ---------------------------------------------------------------- accepted URIs


@pytest.mark.parametrize(
    ("uri", "prefix", "key"),
    [
        ("/img/a%20b.jpg", "", "img/a b.jpg"),
        ("/img/a%20b.jpg", "media", "media/img/a b.jpg"),
        ("/img/a.jpg", "/media/2026/", "media/2026/img/a.jpg"),
        ("/caf%C3%A9.html", "", "café.html"),
        ("/caf%c3%a9.html", "", "café.html"),
        # Decoded exactly once: %252e is the three characters "%2e", not a dot.
        ("/a/%252e%252e/b", "", "a/%2e%2e/b"),
        ("/a%2Bb", "", "a+b"),
        ("/a%2bb.jpg", "", "a+b.jpg"),
        # RFC 3986 equivalents, which HTTP clients send normalized: the same origin path.
        ("/%41%7e%2D", "", "A~-"),
        ("/a;b=c,d@e:f!$&'()*", "", "a;b=c,d@e:f!$&'()*"),
        ("/dir/", "", "dir/"),
        ("/a//b", "", "a//b"),
        ("/..a/b..", "", "..a/b.."),
        ("/.well-known/x", "", ".well-known/x"),
        ("/edgefill/_edgefill/x", "", "edgefill/_edgefill/x"),
    ],
)
def test_uri_maps_to_the_key_cloudfront_will_ask_for(uri: str, prefix: str, key: str) -> None:
    assert ObjectKey.from_uri(uri, prefix).key == key


def test_key_is_the_string_and_maps_back_to_its_uri() -> None:
    # Given a key from a URI / When turned back into a URI
    key = ObjectKey.from_uri("/img/a%20b%3F.jpg", "media")
    # Then it is the viewer's URI again, and str() is the S3 key
    assert str(key) == "media/img/a b?.jpg"
    assert key.to_uri("media") == "/img/a%20b%3F.jpg"
    with pytest.raises(InvalidKey, match="not under prefix"):
        key.to_uri("other")


def test_a_key_holding_a_url_still_has_a_uri_that_maps_back() -> None:
    # Given a key whose text looks like a URL (legal in S3)
    key = ObjectKey("mirror/https://example.com/a")
    # When written as a URI / Then the colon is escaped, so from_uri accepts it again
    assert key.to_uri() == "/mirror/https%3A//example.com/a"
    assert ObjectKey.from_uri(key.to_uri()).key == key.key


def test_key_of_exactly_1024_bytes_is_accepted() -> None:
    uri = "/" + "%C3%A9" * 511 + "ab"  # 511 x 2 bytes + 2 = 1024 UTF-8 bytes
    assert len(ObjectKey.from_uri(uri).key.encode()) == MAX_KEY_BYTES


# ---------------------------------------------------------------- rejections


@pytest.mark.parametrize(
    ("uri", "problem"),
    [
        pytest.param("/../etc/passwd", "traversal", id="dotdot"),
        pytest.param("/a/../../b", "traversal", id="dotdot-middle"),
        pytest.param("/a/%2e%2e/b", "traversal", id="encoded-dotdot"),
        pytest.param("/a/%2E%2E/b", "traversal", id="encoded-dotdot-upper"),
        pytest.param("/a/.%2e/b", "traversal", id="half-encoded-dotdot"),
        pytest.param("/a%2f..%2fb", "traversal", id="encoded-slashes"),
        pytest.param("/a%2F..%2Fb", "traversal", id="encoded-slashes-upper"),
        pytest.param("/a%5c..%5cb", "traversal", id="encoded-backslashes"),
        pytest.param("/a\\..\\b", "traversal", id="raw-backslashes"),
        pytest.param("/a/..", "traversal", id="trailing-dotdot"),
        pytest.param("/./a", "traversal", id="dot-segment"),
        pytest.param("/a/%2e", "traversal", id="encoded-dot-segment"),
        pytest.param("/a\x00b", "control", id="raw-nul"),
        pytest.param("/a%00b", "control", id="encoded-nul"),
        pytest.param("/a\r\nb", "control", id="raw-crlf"),
        pytest.param("/a%0d%0aSet-Cookie:x", "control", id="encoded-crlf"),
        pytest.param("/a%7f", "control", id="del"),
        pytest.param("/a%1b[31m", "control", id="escape"),
        pytest.param("/", "empty", id="empty"),
        pytest.param("/%2fetc/passwd", "starts with '/'", id="encoded-leading-slash"),
        pytest.param("//evil.example/a", "host", id="network-path"),
        pytest.param("http://evil.example/a", "start with '/'", id="absolute-url"),
        pytest.param("/redirect/https://evil.example/", "host", id="embedded-url"),
        pytest.param("img/a.jpg", "start with '/'", id="relative"),
        pytest.param("", "start with '/'", id="blank"),
        pytest.param("/a?b=1", "query", id="query"),
        pytest.param("/a#b", "query", id="fragment"),
        pytest.param("/a%zz", "escape", id="bad-escape"),
        pytest.param("/a%", "escape", id="truncated-escape"),
        pytest.param("/a%ff", "UTF-8", id="not-utf8"),
        pytest.param("/a%c3", "UTF-8", id="cut-utf8"),
        pytest.param("/" + "a" * 1025, "1024", id="over-1024-bytes"),
        pytest.param("/" + "%C3%A9" * 513, "1024", id="over-1024-utf8-bytes"),
        pytest.param("/_edgefill/leases/abc", "reserved", id="reserved-prefix"),
        pytest.param("/%5fedgefill/leases/abc", "reserved", id="encoded-reserved-prefix"),
    ],
)
def test_unsafe_uris_are_rejected_with_the_problem_named(uri: str, problem: str) -> None:
    with pytest.raises(InvalidKey) as caught:
        ObjectKey.from_uri(uri)
    message = str(caught.value)
    assert problem in message
    assert message.startswith(("uri ", "key ")), "the error names what it checked"


@pytest.mark.parametrize(
    ("uri", "why"),
    [
        pytest.param("/a+b.jpg", "a raw .\\+", id="raw-plus"),
        pytest.param("/img/+", "a raw .\\+", id="raw-plus-alone"),
        pytest.param("/a%2Fb", "escaped '/'", id="encoded-slash-upper"),
        pytest.param("/a%2fb", "escaped '/'", id="encoded-slash-lower"),
        pytest.param("/a%5Cb", "escaped '/'", id="encoded-backslash-upper"),
        pytest.param("/a%5cb", "escaped '/'", id="encoded-backslash-lower"),
        pytest.param("/a/b%2F", "escaped '/'", id="encoded-trailing-slash"),
        pytest.param("/a%3Bb", "canonical", id="encoded-semicolon"),
        pytest.param("/a%40b", "canonical", id="encoded-at"),
        pytest.param("/a%3ab", "canonical", id="encoded-colon"),
        pytest.param("/a%28b%29", "canonical", id="encoded-parentheses"),
        pytest.param("/caf\u00e9.html", "canonical", id="raw-non-ascii"),
        pytest.param("/a b", "canonical", id="raw-space"),
        pytest.param("/a\\b", "canonical", id="raw-backslash"),
    ],
)
def test_non_canonical_uris_are_refused_with_their_own_reason(uri: str, why: str) -> None:
    # Given a URI that S3 and the origin could read as two different resources
    # When it is mapped / Then it is refused as non-canonical, not as a bad key
    with pytest.raises(NonCanonicalUri, match=why) as caught:
        ObjectKey.from_uri(uri)
    assert caught.value.reason == "non_canonical"
    assert isinstance(caught.value, InvalidKey)


def test_other_refusals_keep_the_bad_key_reason() -> None:
    with pytest.raises(InvalidKey) as caught:
        ObjectKey.from_uri("/a/../b")
    assert caught.value.reason == "bad_key"
    # and a traversal spelled with escaped slashes is named as a traversal first
    with pytest.raises(InvalidKey, match="traversal") as caught:
        ObjectKey.from_uri("/a%2F..%2Fb")
    assert caught.value.reason == "bad_key"


def test_a_plus_in_a_key_is_written_escaped_and_a_backslash_has_no_uri() -> None:
    assert ObjectKey("a+b.jpg").to_uri() == "/a%2Bb.jpg"
    assert ObjectKey.from_uri("/a%2Bb.jpg").key == "a+b.jpg"
    with pytest.raises(NonCanonicalUri):
        ObjectKey("a\\b").to_uri()


@pytest.mark.parametrize("uri", [None, b"/a", 42, ["/a"]])
def test_non_string_uri_is_rejected(uri: object) -> None:
    with pytest.raises(InvalidKey, match="uri must be a string"):
        ObjectKey.from_uri(uri)  # type: ignore[arg-type]


def test_prefix_counts_toward_the_1024_byte_limit() -> None:
    uri = "/" + "a" * 1000
    assert ObjectKey.from_uri(uri, "short")
    with pytest.raises(InvalidKey, match="1024"):
        ObjectKey.from_uri(uri, "p" * 30)


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [("", ""), ("/", ""), ("media", "media/"), ("/media/2026/", "media/2026/"), ("a b", "a b/")],
)
def test_prefix_is_normalized(prefix: str, expected: str) -> None:
    assert normalize_prefix(prefix) == expected


@pytest.mark.parametrize(
    ("prefix", "problem"),
    [
        ("a/../b", "traversal"),
        ("..", "traversal"),
        ("a\\..", "traversal"),
        ("a\x00b", "control"),
        ("_edgefill", "reserved"),
        ("_edgefill/leases", "reserved"),
    ],
)
def test_unsafe_prefixes_are_rejected(prefix: str, problem: str) -> None:
    with pytest.raises(InvalidKey, match=f"key prefix .*{problem}"):
        normalize_prefix(prefix)


# ---------------------------------------------------------------- properties

# Fragments that make path traversal, host confusion and encoding tricks likely.
_FRAGMENTS = st.sampled_from(
    [
        "/", "//", ".", "..", "%2e", "%2E", "%2e%2e", "%2f", "%2F", "%5c", "%5C", "\\",
        "%25", "%252e", "%00", "%0d%0a", "%c3%a9", "%ff", "%", "é", ":", "://", "@", "?",
        "#", "a", "b", "img", "_edgefill", "%5fedgefill", "evil.example", "~", " ",
    ]
)  # fmt: skip
_URIS = st.lists(_FRAGMENTS, max_size=12).map("".join)
_PREFIXES = st.sampled_from(["", "media", "media/2026", "a.b"])


def _segments(key: str) -> list[str]:
    return key.replace("\\", "/").split("/")


@settings(max_examples=examples(2000), deadline=None)
@given(st.one_of(_URIS, _URIS.map(lambda u: "/" + u), st.text(max_size=40)), _PREFIXES)
@example("/a/%2e%2e/%2e%2e/b", "media")
@example("/%2e%2e%2fetc", "media")
def test_no_accepted_uri_maps_outside_the_prefix(uri: str, prefix: str) -> None:
    # Given any URI / When it maps to a key
    try:
        key = ObjectKey.from_uri(uri, prefix).key
    except InvalidKey:
        return
    head = normalize_prefix(prefix)
    # Then the key stays under the prefix, even after path normalization
    assert key.startswith(head)
    # (normpath drops a trailing "/", hence the one added back)
    assert (posixpath.normpath("/" + key.replace("\\", "/")) + "/").startswith("/" + head)
    assert ".." not in _segments(key) and "." not in _segments(key)
    # and is a legal S3 key outside edgefill's reserved space
    assert 0 < len(key.encode("utf-8")) <= MAX_KEY_BYTES
    assert not key[len(head) :].startswith(RESERVED_PREFIX)
    assert not any(ord(c) < 32 or ord(c) == 127 for c in key)
    # and its URI names no other host than the origin's
    uri_back = ObjectKey(key).to_uri(prefix)
    assert urlsplit("https://origin.example.com" + uri_back).netloc == "origin.example.com"
    assert ObjectKey.from_uri(uri_back, prefix).key == key


@settings(max_examples=examples(500), deadline=None)
@given(
    st.lists(st.from_regex(r"[a-z0-9]{1,8}", fullmatch=True), max_size=3),
    st.sampled_from(["..", ".", "%2e%2e", "%2E%2e", ".%2e", "%2e", "%2E"]),
    st.lists(st.from_regex(r"[a-z0-9]{1,8}", fullmatch=True), max_size=3),
    st.sampled_from(["/", "%2f", "%2F", "%5c", "%5C", "\\"]),
)
def test_a_dot_segment_is_rejected_however_it_is_spelled(
    before: list[str], dots: str, after: list[str], separator: str
) -> None:
    # Given a URI with a "." or ".." segment, written with any mix of encodings
    uri = "/" + separator.join([*before, dots, *after])
    assume(not uri.startswith("//"))
    # Then it never maps to a key
    with pytest.raises(InvalidKey):
        ObjectKey.from_uri(uri)


@settings(max_examples=examples(500), deadline=None)
@given(st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=60))
def test_every_safe_key_round_trips_through_its_uri(text: str) -> None:
    # Given a key a viewer could ask for
    assume(not text.startswith(("/", RESERVED_PREFIX)))
    assume(not {".", ".."} & set(_segments(text)))
    assume("\\" not in text)  # no URI names a backslash alike for S3 and every origin
    # When written as a URI and mapped back / Then it is the same key
    key = ObjectKey(text)
    assert ObjectKey.from_uri(key.to_uri()).key == text
