"""Message contract v1: every rejection names its field; parse and to_json are inverses."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.messages import (
    ACCEPT_ENCODING,
    ENCODINGS,
    MAX_BODY_BYTES,
    MAX_PATHS,
    BackfillMessage,
    MessageError,
    PrewarmMessage,
    is_pop_code,
    is_region_code,
    parse,
    parse_backfill,
    parse_prewarm,
    to_dict,
    to_json,
)
from tests.budget import examples

BACKFILL = {
    "v": 1,
    "type": "backfill",
    "uri": "/img/a%20b.jpg",
    "query": "w=100&h=50",
    "host": "cdn.example.com",
    "distribution": "E2EXAMPLE",
    "requestId": "4TyzHTaYWb1GX1qTfsHhEqV6HUDd_BzoBZnwfnvQc_1oF26ClkoUSEQ==",
    "edgeRegion": "ap-northeast-1",
    "at": "2026-11-22T10:00:00Z",
}
PREWARM = {
    "v": 1,
    "type": "prewarm",
    "paths": ["/img/a%20b.jpg", "/index.html?lang=fr"],
    "targets": ["us-east-1", "NRT20-P2"],
    "encodings": ["br+gzip", "gzip", "br", "identity"],
    "host": "cdn.example.com",
    "source": "manual",
    "attempt": 2,
}


def body(base: dict[str, Any], **changes: Any) -> str:
    """``base`` as JSON with fields replaced (a value of ``...`` removes the field)."""
    fields = {**base, **changes}
    return json.dumps({k: v for k, v in fields.items() if v is not ...})


def rejected_field(raw: str | bytes) -> str:
    with pytest.raises(MessageError) as caught:
        parse(raw)
    error = caught.value
    assert str(error).startswith(f"{error.field}: "), "the text must name the field"
    return error.field


# ---------------------------------------------------------------- accepted messages


def test_full_backfill_message_parses_into_typed_fields() -> None:
    # Given the DESIGN.md backfill example / When parsed
    message = parse(body(BACKFILL))
    # Then every field is carried, under its Python name
    assert message == BackfillMessage(
        uri="/img/a%20b.jpg",
        query="w=100&h=50",
        host="cdn.example.com",
        distribution="E2EXAMPLE",
        request_id=BACKFILL["requestId"],
        edge_region="ap-northeast-1",
        at="2026-11-22T10:00:00Z",
    )


def test_minimal_messages_take_defaults() -> None:
    # Given only the required fields
    backfill = parse_backfill('{"v": 1, "type": "backfill", "uri": "/a"}')
    prewarm = parse_prewarm(b'{"v": 1, "type": "prewarm", "paths": ["/a"]}')
    # Then the optional ones take their documented defaults (None = worker configuration)
    assert backfill == BackfillMessage(uri="/a")
    assert backfill.query == ""
    assert prewarm == PrewarmMessage(paths=("/a",))
    assert (prewarm.targets, prewarm.encodings, prewarm.attempt) == (None, None, 0)


def test_full_prewarm_message_round_trips_to_the_same_json() -> None:
    # Given the DESIGN.md prewarm example / When parsed and serialized again
    message = parse(body(PREWARM))
    # Then nothing is lost or renamed
    assert isinstance(message, PrewarmMessage)
    assert json.loads(to_json(message)) == PREWARM


def test_unknown_fields_are_ignored_for_forward_compatibility() -> None:
    assert parse(body(BACKFILL, future="x")) == parse(body(BACKFILL))


def test_encodings_map_to_cloudfront_accept_encoding_headers() -> None:
    assert ENCODINGS == ("br+gzip", "gzip", "br", "identity")
    assert ACCEPT_ENCODING == {"br+gzip": "br, gzip", "gzip": "gzip", "br": "br", "identity": None}


def test_target_shapes() -> None:
    assert all(map(is_region_code, ["us-east-1", "ap-northeast-1", "us-gov-west-1", "eu-west-3"]))
    assert not any(map(is_region_code, ["US-EAST-1", "useast1", "us-east", "Tokyo", 1]))
    assert all(map(is_pop_code, ["NRT20-P2", "IAD89-C1", "FRA6-C1"]))
    assert not any(map(is_pop_code, ["nrt20-p2", "NRT20", "NRT-20", "NRT20-P", None]))


# ---------------------------------------------------------------- rejections by field


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        pytest.param("not json", "body", id="not-json"),
        pytest.param(b"\xff\xfe{", "body", id="not-utf8"),
        pytest.param("[1, 2]", "body", id="array"),
        pytest.param('"text"', "body", id="string"),
        pytest.param("null", "body", id="null"),
        pytest.param(" " * (MAX_BODY_BYTES + 1), "body", id="oversize"),
        pytest.param('{"type": "backfill", "uri": "/a"}', "v", id="v-missing"),
        pytest.param('{"v": "1", "type": "backfill", "uri": "/a"}', "v", id="v-string"),
        pytest.param('{"v": true, "type": "backfill", "uri": "/a"}', "v", id="v-bool"),
        pytest.param('{"v": 1.0, "type": "backfill", "uri": "/a"}', "v", id="v-float"),
        pytest.param('{"v": 2, "type": "backfill", "uri": "/a"}', "v", id="v-unknown"),
        pytest.param('{"v": 1, "uri": "/a"}', "type", id="type-missing"),
        pytest.param('{"v": 1, "type": "purge", "uri": "/a"}', "type", id="type-unknown"),
        pytest.param('{"v": 1, "type": 7, "uri": "/a"}', "type", id="type-int"),
    ],
)
def test_envelope_rejections_name_the_field(raw: str | bytes, field: str) -> None:
    assert rejected_field(raw) == field


def test_oversize_body_is_rejected_before_json_decoding() -> None:
    # Given a valid message padded past the 1 MiB SQS limit
    padded = body(BACKFILL, pad="x" * MAX_BODY_BYTES)
    # Then the size, not the content, is the error
    with pytest.raises(MessageError, match=r"body: is \d+ bytes"):
        parse(padded)


def test_non_text_body_is_rejected() -> None:
    with pytest.raises(MessageError) as caught:
        parse(12345)  # type: ignore[arg-type]
    assert caught.value.field == "body"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        pytest.param({"uri": ...}, "uri", id="uri-missing"),
        pytest.param({"uri": 42}, "uri", id="uri-int"),
        pytest.param({"uri": None}, "uri", id="uri-null"),
        pytest.param({"uri": ["/a"]}, "uri", id="uri-list"),
        pytest.param({"uri": "img/a.jpg"}, "uri", id="uri-relative"),
        pytest.param({"uri": ""}, "uri", id="uri-empty"),
        pytest.param({"uri": "http://evil.example/a"}, "uri", id="uri-absolute-url"),
        pytest.param({"uri": "//evil.example/a"}, "uri", id="uri-network-path"),
        pytest.param({"uri": "/a\x00b"}, "uri", id="uri-nul"),
        pytest.param({"uri": "/a\r\nX-Injected: 1"}, "uri", id="uri-crlf"),
        pytest.param({"uri": "/a\tb"}, "uri", id="uri-tab"),
        pytest.param({"uri": "/a b"}, "uri", id="uri-raw-space"),
        pytest.param({"uri": "/caf\u00e9"}, "uri", id="uri-raw-non-ascii"),
        pytest.param({"uri": "/a%zz"}, "uri", id="uri-bad-escape"),
        pytest.param({"uri": "/a%2"}, "uri", id="uri-truncated-escape"),
        pytest.param({"uri": "/a?b=1"}, "uri", id="uri-with-query"),
        pytest.param({"uri": "/a#frag"}, "uri", id="uri-fragment"),
        pytest.param({"uri": "/" + "a" * 8192}, "uri", id="uri-over-8KiB"),
        pytest.param({"query": 5}, "query", id="query-int"),
        pytest.param({"query": "?a=1"}, "query", id="query-leading-question-mark"),
        pytest.param({"query": "a=1\r\nb=2"}, "query", id="query-crlf"),
        pytest.param({"query": "a=1 b"}, "query", id="query-space"),
        pytest.param({"query": "a=" + "b" * 8192}, "query", id="query-over-8KiB"),
        pytest.param({"host": "evil.example/path"}, "host", id="host-with-path"),
        pytest.param({"host": "a b.example"}, "host", id="host-space"),
        pytest.param({"host": 3}, "host", id="host-int"),
        pytest.param({"distribution": "E2\nX"}, "distribution", id="distribution-newline"),
        pytest.param({"requestId": 12}, "requestId", id="requestId-int"),
        pytest.param({"edgeRegion": "x" * 513}, "edgeRegion", id="edgeRegion-too-long"),
        pytest.param({"at": ["2026"]}, "at", id="at-list"),
    ],
)
def test_backfill_rejections_name_the_field(changes: dict[str, Any], field: str) -> None:
    assert rejected_field(body(BACKFILL, **changes)) == field


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        pytest.param({"paths": ...}, "paths", id="paths-missing"),
        pytest.param({"paths": []}, "paths", id="paths-empty"),
        pytest.param({"paths": "/a"}, "paths", id="paths-string"),
        pytest.param({"paths": ["/ok", 7]}, "paths[1]", id="paths-int-item"),
        pytest.param({"paths": ["img/a.jpg"]}, "paths[0]", id="paths-relative"),
        pytest.param({"paths": ["/ok", "https://evil.example/"]}, "paths[1]", id="paths-url"),
        pytest.param({"paths": ["//evil.example/a"]}, "paths[0]", id="paths-network-path"),
        pytest.param({"paths": ["/a\r\nHost: evil"]}, "paths[0]", id="paths-crlf"),
        pytest.param({"paths": ["/a\x00"]}, "paths[0]", id="paths-nul"),
        pytest.param({"paths": ["/a?b c"]}, "paths[0]", id="paths-bad-query"),
        pytest.param({"paths": ["/a"] * (MAX_PATHS + 1)}, "paths", id="paths-over-1000"),
        pytest.param({"targets": []}, "targets", id="targets-empty"),
        pytest.param({"targets": "us-east-1"}, "targets", id="targets-string"),
        pytest.param({"targets": ["us-east-1", "Tokyo"]}, "targets[1]", id="targets-unknown"),
        pytest.param({"targets": ["NRT-20"]}, "targets[0]", id="targets-malformed-pop"),
        pytest.param({"targets": [1]}, "targets[0]", id="targets-int"),
        pytest.param({"targets": ["us-east-1"] * 201}, "targets", id="targets-over-200"),
        pytest.param({"encodings": []}, "encodings", id="encodings-empty"),
        pytest.param({"encodings": ["gzip", "deflate"]}, "encodings[1]", id="encodings-unknown"),
        pytest.param({"encodings": ["br,gzip"]}, "encodings[0]", id="encodings-header-form"),
        pytest.param({"attempt": "1"}, "attempt", id="attempt-string"),
        pytest.param({"attempt": True}, "attempt", id="attempt-bool"),
        pytest.param({"attempt": -1}, "attempt", id="attempt-negative"),
        pytest.param({"attempt": 101}, "attempt", id="attempt-over-max"),
        pytest.param({"host": "bad host"}, "host", id="host-invalid"),
        pytest.param({"source": "x\x00"}, "source", id="source-nul"),
    ],
)
def test_prewarm_rejections_name_the_field(changes: dict[str, Any], field: str) -> None:
    assert rejected_field(body(PREWARM, **changes)) == field


def test_typed_parsers_reject_the_other_type() -> None:
    with pytest.raises(MessageError) as caught:
        parse_backfill(body(PREWARM))
    assert caught.value.field == "type"
    with pytest.raises(MessageError) as caught:
        parse_prewarm(body(BACKFILL))
    assert caught.value.field == "type"


def test_constructors_enforce_the_same_rules_as_parse() -> None:
    # Given code that builds a message directly (the edge, the CLI)
    # Then a bad value fails at construction, before anything is sent
    with pytest.raises(MessageError, match="^uri: "):
        BackfillMessage(uri="http://evil.example/")
    with pytest.raises(MessageError, match="^paths: "):
        PrewarmMessage(paths=["/a"])  # type: ignore[arg-type]
    with pytest.raises(MessageError, match=r"^targets\[0\]: "):
        PrewarmMessage(paths=("/a",), targets=("moon-1",))


def test_to_json_refuses_a_message_over_the_sqs_limit() -> None:
    # Given a legal prewarm message whose JSON exceeds 1 MiB (1000 paths of 2 KiB)
    message = PrewarmMessage(paths=tuple(f"/{i:04d}/" + "a" * 2048 for i in range(MAX_PATHS)))
    # When serialized / Then the body is named as too large
    with pytest.raises(MessageError, match="^body: "):
        to_json(message)


def test_to_json_is_compact_ascii() -> None:
    message = BackfillMessage(uri="/a", distribution="\u00e9t\u00e9")
    text = to_json(message)
    assert text.isascii() and " " not in text
    assert to_dict(message) == {"v": 1, "type": "backfill", "uri": "/a", "distribution": "été"}


# ---------------------------------------------------------------- properties

_UNRESERVED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
_PCHAR = st.one_of(
    st.sampled_from(_UNRESERVED + "!$&'()*+,;=:@"),
    st.builds(lambda b: f"%{b:02X}", st.integers(0, 255)),
)
_PATH = st.lists(st.lists(_PCHAR, max_size=12).map("".join), min_size=1, max_size=5).map(
    lambda segments: "/" + "/".join(segments)
)
# A path may not start with "//" (it would name a host).
_URI = _PATH.filter(lambda p: not p.startswith("//"))
# A query never starts with "?": the contract carries it without its separator.
_QUERY = (
    st.lists(st.one_of(_PCHAR, st.sampled_from("/?")), max_size=20)
    .map("".join)
    .filter(lambda q: not q.startswith("?"))
)
_HOST = st.from_regex(
    r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?(\.[a-z]{2,6}){0,2}(:[1-9][0-9]{0,3})?", fullmatch=True
)
_TEXT = st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=40)
_REGION = st.from_regex(
    r"(us|eu|ap|sa|ca|me|af)-(east|west|north|south|central)-[1-9]", fullmatch=True
)
_POP = st.from_regex(r"[A-Z]{3}[1-9][0-9]?-[A-Z][1-9]", fullmatch=True)


@st.composite
def backfill_messages(draw: st.DrawFn) -> BackfillMessage:
    optional = st.one_of(st.none(), _TEXT)
    return BackfillMessage(
        uri=draw(_URI),
        query=draw(_QUERY),
        host=draw(st.one_of(st.none(), _HOST)),
        distribution=draw(optional),
        request_id=draw(optional),
        edge_region=draw(st.one_of(st.none(), _REGION)),
        at=draw(optional),
    )


@st.composite
def prewarm_messages(draw: st.DrawFn) -> PrewarmMessage:
    paths = draw(
        st.lists(
            st.tuples(_URI, _QUERY).map(lambda pq: pq[0] + ("?" + pq[1] if pq[1] else "")),
            min_size=1,
            max_size=5,
        )
    )
    targets = draw(st.one_of(st.none(), st.lists(st.one_of(_REGION, _POP), min_size=1, max_size=4)))
    encodings = draw(st.one_of(st.none(), st.lists(st.sampled_from(ENCODINGS), min_size=1)))
    return PrewarmMessage(
        paths=tuple(paths),
        targets=None if targets is None else tuple(targets),
        encodings=None if encodings is None else tuple(encodings),
        host=draw(st.one_of(st.none(), _HOST)),
        source=draw(st.one_of(st.none(), st.sampled_from(["manual", "backfill"]), _TEXT)),
        attempt=draw(st.integers(0, 100)),
    )


@settings(max_examples=examples(300), deadline=None)
@given(backfill_messages())
def test_backfill_round_trips_through_json(message: BackfillMessage) -> None:
    assert parse(to_json(message)) == message
    assert parse_backfill(to_json(message).encode("ascii")) == message


@settings(max_examples=examples(300), deadline=None)
@given(prewarm_messages())
def test_prewarm_round_trips_through_json(message: PrewarmMessage) -> None:
    assert parse(to_json(message)) == message
    assert parse_prewarm(to_json(message)) == message


@settings(max_examples=examples(300), deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_is_parsed_or_rejected_with_a_field(raw: str) -> None:
    # Whatever arrives on a queue, parse either returns a message or names a field:
    # it never raises anything else (which would crash the rest of the batch).
    try:
        parse(raw)
    except MessageError as error:
        assert error.field
