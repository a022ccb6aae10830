"""One URI, one key, one origin resource (CONTRACTS §4).

The origin path is what the worker puts on the wire: ``OriginClient.url_for`` prepared by
``requests`` exactly as ``OriginClient.get`` sends it. Two accepted URIs share a key only
when that path is the same, and that path is always the origin's prefix followed by the
canonical URI of the key.
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

import requests
from hypothesis import example, given, settings
from hypothesis import strategies as st

from shared.keys import InvalidKey, NonCanonicalUri, ObjectKey
from shared.origin import OriginClient
from tests.budget import examples

ORIGIN = OriginClient("https://origin.example.com/base")

# Characters whose spellings S3, RFC 3986 and origins disagree about, plus plain ones.
_CHARACTERS = "aZ09-._~/ +;:@=,!$&'()*é%?#\\"


def _spellings(char: str) -> list[str]:
    """Every way a viewer could write ``char`` in a path: raw, escaped (either hex case),
    and "+" for a space (what S3 reads a raw "+" as)."""
    escaped = "".join(f"%{byte:02X}" for byte in char.encode("utf-8"))
    spellings = [char, escaped, escaped.lower()]
    if char == " ":
        spellings.append("+")
    return spellings


@st.composite
def two_spellings(draw: st.DrawFn) -> tuple[str, str]:
    """Two URIs spelling the same decoded text, each character spelled independently."""
    text = draw(st.lists(st.sampled_from(_CHARACTERS), min_size=1, max_size=10))
    first = "/" + "".join(draw(st.sampled_from(_spellings(c))) for c in text)
    second = "/" + "".join(draw(st.sampled_from(_spellings(c))) for c in text)
    return first, second


def origin_path(uri: str) -> str:
    """The path the worker asks the origin for (``requests`` normalizes when preparing)."""
    prepared = requests.Request("GET", ORIGIN.url_for(uri)).prepare()
    assert prepared.url is not None
    return urlsplit(prepared.url).path


def rfc3986_normalized(uri: str) -> str:
    """RFC 3986 §6.2.2.1-2: escapes in upper case, escaped unreserved characters decoded."""

    def normalize(escape: re.Match[str]) -> str:
        char = chr(int(escape.group(1), 16))
        return char if char.isascii() and (char.isalnum() or char in "-._~") else escape[0].upper()

    return re.sub("%([0-9A-Fa-f]{2})", normalize, uri)


def key_or_none(uri: str) -> str | None:
    try:
        return ObjectKey.from_uri(uri).key
    except InvalidKey:
        return None


@settings(max_examples=examples(1500), deadline=None)
@given(two_spellings())
@example(("/a%2Bb", "/a+b"))
@example(("/a/b", "/a%2Fb"))
@example(("/a;b", "/a%3Bb"))
@example(("/a%20b", "/a+b"))
@example(("/caf%C3%A9", "/caf%c3%a9"))
@example(("/~a", "/%7Ea"))
def test_no_two_accepted_uris_share_a_key_unless_the_origin_gets_one_path(
    pair: tuple[str, str],
) -> None:
    # Given two spellings of one text that both map to the same key
    first, second = pair
    key = key_or_none(first)
    if key is None or key != key_or_none(second):
        return
    # Then the origin is asked for one and the same path for both
    assert origin_path(first) == origin_path(second)


@settings(max_examples=examples(1000), deadline=None)
@given(two_spellings().map(lambda pair: pair[0]))
@example("/a%2Bb.jpg")
@example("/mirror/https%3A//example.com/a")
def test_the_worker_fetches_exactly_the_path_of_the_key_it_writes(uri: str) -> None:
    # Given an accepted URI
    key = key_or_none(uri)
    if key is None:
        return
    # Then the path fetched is the origin's prefix plus the canonical URI of that key
    assert origin_path(uri) == "/base" + ObjectKey(key).to_uri()
    # and that is the viewer's URI itself, up to RFC 3986 equivalence
    assert origin_path(uri) == "/base" + rfc3986_normalized(uri)


def test_the_plus_and_slash_spellings_are_refused_and_2b_is_kept() -> None:
    assert key_or_none("/a+b.jpg") is None
    assert key_or_none("/a%2Fb.jpg") is None
    assert key_or_none("/a%5cb.jpg") is None
    assert key_or_none("/a%2Bb.jpg") == "a+b.jpg"
    assert origin_path("/a%2Bb.jpg") == "/base/a%2Bb.jpg"


@settings(max_examples=examples(1500), deadline=None)
@given(two_spellings().map(lambda pair: pair[0]))
@example("/mirror/https%3A//example.com/a")
@example("/a:%3A//b")
@example("/a%3A%3A//b")
def test_the_fast_check_agrees_with_re_encoding_the_key(uri: str) -> None:
    # Given a URI that passes every other key rule
    try:
        ObjectKey.from_uri(uri)
        accepted = True
    except NonCanonicalUri:
        accepted = False
    except InvalidKey:
        return
    # Then it is accepted exactly when it is its key's canonical URI, up to RFC 3986
    decoded = unquote(uri[1:])
    canonical = None if "\\" in decoded else ObjectKey(decoded).to_uri()
    assert accepted == (rfc3986_normalized(uri) == canonical)
