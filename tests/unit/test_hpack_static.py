"""The warm's HPACK encoder (shared/hpack_static.py): whatever it encodes, hpack's own
decoder reads back exactly, and the decoder's dynamic table stays empty (no insertion, so
the edge's decoder can never fall out of step with us)."""

from __future__ import annotations

import pytest
from hpack import Decoder
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.hpack_static import StaticTableEncoder, encode_field, encode_integer
from tests.budget import examples

REQUEST = [
    (b":method", b"GET"),
    (b":scheme", b"https"),
    (b":authority", b"cdn.example.com"),
    (b":path", b"/assets/a%20b.js?sig=abc&x=1"),
    (b"user-agent", b"edgefill-prewarm/1"),
    (b"accept-encoding", b"br, gzip"),
]


def decoded(
    encoder: StaticTableEncoder, headers: list[tuple[bytes, bytes]]
) -> list[tuple[bytes, bytes]]:
    decoder = Decoder()
    result = decoder.decode(encoder.encode(headers), raw=True)
    assert len(decoder.header_table.dynamic_entries) == 0  # nothing was inserted
    return [(bytes(name), bytes(value)) for name, value in result]


def test_given_a_warm_request_when_encoded_then_hpack_decodes_it_exactly_and_twice() -> None:
    # Given one encoder (one connection) and two requests in a row
    encoder = StaticTableEncoder()
    decoder = Decoder()
    second = [*REQUEST[:3], (b":path", b"/other.js"), *REQUEST[4:]]
    # When both are encoded and decoded by one decoder, as the edge would
    first = decoder.decode(encoder.encode(REQUEST), raw=True)
    again = decoder.decode(encoder.encode(second), raw=True)
    # Then each comes back as sent, and the decoder's dynamic table is still empty
    assert [tuple(map(bytes, f)) for f in first] == REQUEST
    assert [tuple(map(bytes, f)) for f in again] == second
    assert len(decoder.header_table.dynamic_entries) == 0


def test_static_pairs_are_one_byte_and_the_first_block_empties_the_table() -> None:
    encoder = StaticTableEncoder()
    block = encoder.encode([(b":method", b"GET"), (b":scheme", b"https")])
    # 0x20: dynamic table size update to 0; 0x82, 0x87: static indices 2 and 7
    assert block == b"\x20\x82\x87"
    assert encoder.encode([(b":method", b"GET")]) == b"\x82"  # said once only


def test_given_the_edge_changes_its_table_size_then_the_next_block_says_0_again() -> None:
    encoder = StaticTableEncoder()
    encoder.encode(REQUEST)
    encoder.header_table_size = 0  # what h2 does on the edge's SETTINGS_HEADER_TABLE_SIZE
    assert encoder.encode([(b":method", b"GET")]) == b"\x20\x82"
    assert encoder.header_table_size == 0


@pytest.mark.parametrize(
    ("value", "prefix", "expected"),
    [
        (10, 5, b"\x0a"),  # RFC 7541 C.1.1
        (1337, 5, b"\x1f\x9a\x0a"),  # RFC 7541 C.1.2
        (42, 8, b"\x2a"),  # RFC 7541 C.1.3
        (15, 4, b"\x0f\x00"),  # exactly the prefix's all-ones: a zero continuation byte
        (127, 7, b"\x7f\x00"),
        (128 + 127, 7, b"\x7f\x80\x01"),
    ],
)
def test_integers_follow_rfc_7541(value: int, prefix: int, expected: bytes) -> None:
    assert encode_integer(value, prefix) == expected


def test_hostile_looking_but_valid_values_round_trip() -> None:
    # Given values a hostile path or host could hold once past validation: long (multi-byte
    # lengths), percent and colon runs, bytes above 0x7f, empty, and names hpack's static
    # table does not know
    headers = [
        (b":method", b"HEAD"),  # a name in the table, its value not
        (b":scheme", b"https"),
        (b":authority", b"xn--bcher-kva.example:8443"),
        (b":path", b"/" + b"%2F" * 3000 + b"?q=::::&" + bytes(range(0x80, 0x100))),
        (b"user-agent", b""),
        (b"x-edgefill-unknown", b"v" * 127),
        (b"accept-encoding", b"gzip, deflate"),  # a full static pair (index 16)
    ]
    assert decoded(StaticTableEncoder(), headers) == headers


def test_str_names_and_values_are_encoded_as_utf8() -> None:
    assert decoded(StaticTableEncoder(), [(":path", "/é")]) == [(b":path", "/é".encode())]  # type: ignore[list-item]


def test_a_field_outside_the_table_is_a_literal_without_indexing() -> None:
    # 0000 0000: literal, new name, not indexed (RFC 7541 6.2.2); H = 0 on both strings
    assert encode_field(b"x-a", b"b") == b"\x00\x03x-a\x01b"
    # 0000 0100: literal with the name of static entry 4 (:path), not indexed
    assert encode_field(b":path", b"/x") == b"\x04\x02/x"


_NAME = st.binary(min_size=1, max_size=40).map(lambda raw: bytes(b % 26 + 97 for b in raw))


@settings(max_examples=examples(300), deadline=None)
@given(st.lists(st.tuples(_NAME, st.binary(max_size=300)), max_size=12), st.integers(0, 3))
def test_any_headers_round_trip_through_hpacks_decoder(
    headers: list[tuple[bytes, bytes]], repeats: int
) -> None:
    # Given one encoder used for several blocks (its field cache in play)
    encoder = StaticTableEncoder()
    decoder = Decoder()
    for _ in range(repeats + 1):
        block = encoder.encode(headers)
        assert [tuple(map(bytes, f)) for f in decoder.decode(block, raw=True)] == headers
    assert len(decoder.header_table.dynamic_entries) == 0
