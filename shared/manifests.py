"""What a video manifest references: HLS playlists and DASH MPDs, parsed for both workers.

``parse_manifest(uri, body, content_type, hosts)`` returns the objects a manifest names —
each a CloudFront URI (percent-encoded path, plus its query) and a kind: ``playlist``,
``init`` or ``segment`` — and what it ignored and why. The backfill worker queues fills for
them; the prewarm worker warms them. Both apply the same rules here, and carry them on
with the same ``Manifest.children``: depth, which children expand, their variables.

Rules, for every URI a manifest names (the modules of ``shared/video/`` say how):
- Resolution is RFC 3986 §5.2 against the manifest's own URI, or the BaseURL above it
  (``uris.py``): dot segments, empty segments, query and fragment as a player resolves.
- An absolute URI counts only on one of our hosts (``hosts.py``): the viewer hosts, or
  the full origin under its configured path, mapped to the viewer path. Other hosts,
  credentials, ``data:`` and other schemes are ignored.
- Keys (``EXT-X-KEY``, ``EXT-X-SESSION-KEY``) are never returned: keys are usually
  private, and a copy in the regional bucket would publish them.
- The resolved path is percent-encoded as CloudFront passes a URI and must pass the key
  rules (``ObjectKey.from_uri``) and the v1 message rules, exactly as a viewer's URI must
  (``collector.py``); so must every value ``EXT-X-DEFINE`` substitutes.
- Live manifests are not expanded (an HLS media playlist with neither ``EXT-X-ENDLIST``
  nor ``EXT-X-PLAYLIST-TYPE:VOD``; a ``type="dynamic"`` MPD): their segment list changes
  while it is read. ``Manifest.expanded`` is then False and ``reason`` says why.
- One object per URI: byte-range segments of one file are one object, not one per range.

HLS (``hls.py``, ``hls_lines.py``): variant streams, renditions with a URI, I-frame and
image playlists, ``EXT-X-MAP`` init sections, media segments; ``m3u8`` where it parses, the
RFC 8216 line rules for each tag it cannot; ``EXT-X-DEFINE`` (``NAME``/``VALUE``,
``QUERYPARAM``, ``IMPORT``). DASH (``dash.py``): BaseURL at every level, inherited
segment information, SegmentTemplate, SegmentList, SegmentBase, index and bitstream
switching segments.

Why the ``m3u8`` package for HLS: it is the parser the Python video world keeps up
(RFC 8216 tags, attribute lists, quoting), and it is fast enough; its line parser
(``m3u8.parse``) is used without its object model, and the whole parse with our URI rules
is measured against ``m3u8.loads`` in ``bench/bench_manifests.py`` (docs/BENCHMARKS.md).
DASH goes through ``defusedxml`` with DTDs forbidden: billion-laughs entities and external
entities are refused before any expansion, and the standard library's parser never sees
hostile input.

Bounds (hostile input must not hang a worker or exhaust its memory):
- ``MAX_MANIFEST_BYTES``: a larger body is refused unparsed, and a gzip body is
  inflated to that bound, never further (``inflate_manifest``); variable substitution may
  not make a playlist longer either.
- ``max_objects`` distinct objects per manifest (default ``DEFAULT_MAX_OBJECTS``),
  ``MAX_REFERENCE_BYTES`` of accepted paths and queries, and one step per candidate URI
  (``STEPS_PER_OBJECT × max_objects``, at least ``MIN_STEPS``): past any of them the parse
  stops, ``truncated`` is set and ``reason`` names the budget.
- At most ``MAX_IGNORED_KEPT`` ignored URIs are quoted; the rest are counted by reason.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping
from typing import Final

from shared.video.collector import (
    DEFAULT_MAX_OBJECTS,
    MAX_IGNORED_KEPT,
    MAX_REFERENCE_BYTES,
    MIN_STEPS,
    STEPS_PER_OBJECT,
    Collector,
    Full,
)
from shared.video.dash import parse_dash
from shared.video.hls import parse_hls
from shared.video.hosts import OurHosts
from shared.video.model import (
    MAX_EXPAND_DEPTH,
    MAX_MANIFEST_BYTES,
    Child,
    Format,
    Ignored,
    Kind,
    Manifest,
    Reference,
    SkippedTag,
    expands_at,
)

__all__ = [
    "DEFAULT_MAX_OBJECTS",
    "MAX_EXPAND_DEPTH",
    "MAX_IGNORED_KEPT",
    "MAX_MANIFEST_BYTES",
    "MAX_REFERENCE_BYTES",
    "MIN_STEPS",
    "STEPS_PER_OBJECT",
    "Child",
    "Format",
    "Ignored",
    "Kind",
    "Manifest",
    "OurHosts",
    "Reference",
    "SkippedTag",
    "expands_at",
    "inflate_manifest",
    "manifest_format",
    "parse_manifest",
]

HLS_CONTENT_TYPES: Final = frozenset(
    {
        "application/vnd.apple.mpegurl",
        "application/x-mpegurl",
        "audio/mpegurl",
        "audio/x-mpegurl",
    }
)
DASH_CONTENT_TYPES: Final = frozenset({"application/dash+xml"})


def manifest_format(uri: str, content_type: str | None = None) -> Format | None:
    """``hls`` or ``dash`` when the path's extension or the Content-Type names a manifest."""
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type in HLS_CONTENT_TYPES:
        return "hls"
    if media_type in DASH_CONTENT_TYPES:
        return "dash"
    path = uri.split("?", 1)[0].lower()
    if path.endswith(".m3u8"):
        return "hls"
    if path.endswith(".mpd"):
        return "dash"
    return None


def inflate_manifest(body: bytes, content_encoding: str | None, how: str) -> bytes | str:
    """The manifest's text bytes, a gzip body inflated to ``MAX_MANIFEST_BYTES`` at most;
    a reason string when the encoding cannot be read. ``how`` says where the body came
    from in that reason ("stored": read back from the bucket, "served": from an edge)."""
    encoding = (content_encoding or "identity").strip().lower()
    if encoding in ("identity", ""):
        return body
    if encoding not in ("gzip", "x-gzip"):
        return f"manifest {how} with Content-Encoding {encoding[:40]!r}"
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        text = inflater.decompress(body, MAX_MANIFEST_BYTES + 1)
    except zlib.error as error:
        return f"gzip-{how} manifest does not inflate: {error}"
    if len(text) > MAX_MANIFEST_BYTES:
        return f"manifest inflates past {MAX_MANIFEST_BYTES} bytes"
    return text


def parse_manifest(
    uri: str,
    body: bytes,
    content_type: str | None,
    hosts: OurHosts | str | None,
    max_objects: int = DEFAULT_MAX_OBJECTS,
    key_prefix: str = "",
    *,
    query: str | None = None,
    variables: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
) -> Manifest:
    """The objects the manifest at ``uri`` (a CloudFront URI, optionally with ``?query``)
    references; never raises.

    ``hosts``: our hosts (a single viewer host name is accepted; None: only relative URIs
    count). ``key_prefix`` is the bucket's key prefix, for the key-length rule. ``query``:
    the query the manifest was asked with, when not in ``uri`` (HLS ``QUERYPARAM``).
    ``variables``: for a media playlist, its multivariant playlist's ``EXT-X-DEFINE``
    variables (HLS ``IMPORT``; None: not known)."""
    kind = manifest_format(uri, content_type) or _sniff(body)
    if kind is None:
        return Manifest(None, expanded=False, reason="not an HLS playlist or a DASH manifest")
    if len(body) > MAX_MANIFEST_BYTES:
        return Manifest(
            kind,
            expanded=False,
            reason=f"manifest is {len(body)} bytes; the most parsed is {MAX_MANIFEST_BYTES}",
        )
    if not isinstance(hosts, OurHosts):
        hosts = OurHosts.of(hosts)
    path, _, in_uri = uri.partition("?")
    query = in_uri if query is None else query
    collector = Collector(path, hosts, max(0, max_objects), key_prefix, query)
    imports = None if variables is None else dict(variables)
    try:
        if kind == "hls":
            not_expanded = parse_hls(body, collector, query, imports)
        else:
            not_expanded = parse_dash(body, collector)
    except Full:  # the references found so far stand; ``truncated`` says the rest is not
        not_expanded = None
    except Exception as error:  # noqa: BLE001 - hostile input: any parser failure is a reason
        not_expanded = f"manifest does not parse: {type(error).__name__}: {str(error)[:200]}"
    if not_expanded is not None:
        return Manifest(kind, expanded=False, reason=not_expanded)
    return collector.result(kind)


def _sniff(body: bytes) -> Format | None:
    head = body[:512].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"#EXTM3U"):
        return "hls"
    if b"<MPD" in head:
        return "dash"
    return None
