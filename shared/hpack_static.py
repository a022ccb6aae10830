"""HPACK (RFC 7541) for the warm's own request headers: the static table and literals only.

hpack's ``Encoder`` searches its dynamic table, inserts every new field and Huffman-codes
every literal, in Python, for each request: measured on the bench's warm it was the largest
part of the client's cost per request (``bench/bench_prewarm.py``, docs/BENCHMARKS.md).
Our request headers are built from values validated before any request (the engine's path
rules, the configuration's host), so a much simpler encoding is enough and still valid:

- a field whose name and value are in the static table is sent as its index (RFC 7541
  6.1, "Indexed Header Field"), e.g. ``:method GET``, ``:scheme https``;
- any other field is a "Literal Header Field without Indexing" (6.2.2): the name as a
  static-table index when the table has it, else as a literal, and the value as a literal
  string without Huffman coding (5.2, H = 0);
- nothing is ever added to the dynamic table, so the edge's decoder stays in step with us
  whatever it does with its own table; the first block, and the first after the edge
  changes ``SETTINGS_HEADER_TABLE_SIZE``, starts with a dynamic table size update to 0
  (6.3), which is always within the edge's limit.

The encoded form of a field other than ``:path`` is remembered (``CACHED_FIELDS`` at most:
the viewer host, the user agent, the four encodings), so a request costs one dictionary
look-up per header and the path's own bytes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from hpack.table import HeaderTable

# Fields remembered per encoder (one per HTTP/2 connection): a few bytes each.
CACHED_FIELDS: Final = 64
_SIZE_UPDATE_TO_ZERO: Final = b"\x20"  # 001 prefix, size 0 (RFC 7541 6.3)
# RFC 7541 Appendix A: index (from 1) of each (name, value), and of each name's first entry.
_INDEXED: Final[dict[tuple[bytes, bytes], int]] = {}
_NAMED: Final[dict[bytes, int]] = {}
for _index, (_name, _value) in enumerate(HeaderTable.STATIC_TABLE, start=1):
    _INDEXED.setdefault((_name, _value), _index)
    _NAMED.setdefault(_name, _index)


def encode_integer(value: int, prefix_bits: int, first_byte: int = 0) -> bytes:
    """RFC 7541 5.1: ``value`` in a ``prefix_bits``-bit prefix whose other bits are
    ``first_byte``'s, then 7 bits a byte while it does not fit."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes((first_byte | value,))
    out = bytearray((first_byte | limit,))
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _string(raw: bytes) -> bytes:
    # RFC 7541 5.2 without Huffman coding (H = 0).
    return encode_integer(len(raw), 7) + raw


def encode_field(name: bytes, value: bytes) -> bytes:
    """One header field as an index (6.1) or a literal without indexing (6.2.2)."""
    index = _INDEXED.get((name, value))
    if index is not None:
        return encode_integer(index, 7, 0x80)
    name_index = _NAMED.get(name)
    if name_index is not None:
        return encode_integer(name_index, 4) + _string(value)
    return b"\x00" + _string(name) + _string(value)


class StaticTableEncoder:
    """A stand-in for ``hpack.Encoder`` on an h2 connection (``H2Connection.encoder``):
    the same ``encode`` and ``header_table_size``, no dynamic table."""

    def __init__(self) -> None:
        self._announce_size = True  # the first block says our table is empty
        self._table_size = 4096  # what the edge allows (we use none of it)
        self._fields: dict[tuple[bytes, bytes], bytes] = {}

    @property
    def header_table_size(self) -> int:
        return self._table_size

    @header_table_size.setter
    def header_table_size(self, value: int) -> None:
        # h2 sets it when the edge's SETTINGS_HEADER_TABLE_SIZE changes: say 0 again.
        self._table_size = value
        self._announce_size = True

    def encode(
        self, headers: Iterable[tuple[bytes | str, bytes | str]], huffman: bool = True
    ) -> bytes:
        """The header block for ``headers`` (lower-case names, pseudo-headers first, as
        h2 requires of its callers). ``huffman`` is accepted and ignored: no literal is
        Huffman-coded."""
        parts = []
        if self._announce_size:
            parts.append(_SIZE_UPDATE_TO_ZERO)
            self._announce_size = False
        fields = self._fields
        for raw_name, raw_value in headers:
            name = raw_name if isinstance(raw_name, bytes) else raw_name.encode()
            value = raw_value if isinstance(raw_value, bytes) else raw_value.encode()
            if name == b":path":
                parts.append(encode_field(name, value))
                continue
            field = fields.get((name, value))
            if field is None:
                field = encode_field(name, value)
                if len(fields) < CACHED_FIELDS:
                    fields[name, value] = field
            parts.append(field)
        return b"".join(parts)
