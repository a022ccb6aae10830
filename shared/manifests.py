"""What a video manifest references: HLS playlists and DASH MPDs, parsed for both workers.

``parse_manifest(uri, body, content_type, viewer_host)`` returns the objects a manifest
names — each a CloudFront URI (percent-encoded path, plus its query) and a kind:
``playlist``, ``init`` or ``segment`` — and what it ignored and why. The backfill worker
queues fills for them; the prewarm worker warms them. Both apply the same rules here.

Rules, for every URI a manifest names:
- Relative URIs resolve against the manifest's own URI; absolute ones count only on the
  viewer host (``http``/``https``, no credentials). Other hosts, ``data:`` and other
  schemes are ignored.
- Keys (``EXT-X-KEY``, ``EXT-X-SESSION-KEY``) are never returned: keys are usually
  private, and a copy in the regional bucket would publish them.
- The resolved path is percent-encoded as CloudFront passes a URI and must pass the key
  rules (``ObjectKey.from_uri``) and the v1 message rules, exactly as a viewer's URI must.
- Live manifests are not expanded (an HLS media playlist with neither ``EXT-X-ENDLIST``
  nor ``EXT-X-PLAYLIST-TYPE:VOD``; a ``type="dynamic"`` MPD): their segment list changes
  while it is read. ``Manifest.expanded`` is then False and ``reason`` says why.
- One object per URI: byte-range segments of one file are one object, not one per range.

HLS: variant streams (``EXT-X-STREAM-INF``), renditions (``EXT-X-MEDIA`` with a URI),
I-frame and image playlists, ``EXT-X-MAP`` init sections, media segments.
DASH: ``BaseURL`` at MPD, Period, AdaptationSet and Representation level;
``SegmentTemplate`` (``$RepresentationID$``, ``$Number$``, ``$Bandwidth$``, ``$Time$``,
``%0Nd`` widths, ``$$``) with ``duration`` (over the Period's or the presentation's
duration, or up to ``endNumber``) or with ``SegmentTimeline`` (``t``, ``d``, ``r``, and
``r="-1"`` bounded by the next ``S`` or the Period's end); ``SegmentList``;
``SegmentBase``; ``initialization`` and ``Initialization@sourceURL``.

Why the ``m3u8`` package for HLS: it is the parser the Python video world keeps up
(RFC 8216 tags, including EXT-X-MAP, I-frame and image playlists, byte ranges), and it
is fast enough: measured on this shared 2-core machine (``bench/bench_manifests.py``), it
reads a VOD media playlist of 20,000 segments (0.6 MB) in about 0.2 s, and the whole parse
with our URI rules takes about 0.7 s, a small part of either worker's budget and of the
SQS sends it leads to. A bare line scan is faster (3 ms) but would have to grow every
tag rule m3u8 already has (attribute lists, quoting, EXT-X-MAP, I-frame streams).
No measured reason argued for a parser of our own. DASH goes through ``defusedxml`` with
DTDs forbidden: billion-laughs entities and external entities are refused before any
expansion, and the standard library's parser never sees hostile input.

Bounds (hostile input must not hang a worker or exhaust its memory):
- ``MAX_MANIFEST_BYTES``: a larger body is refused unparsed, and a gzip body is
  inflated to that bound, never further (``inflate_manifest``).
- ``max_objects`` distinct objects per manifest (default ``DEFAULT_MAX_OBJECTS``); past
  it the parse stops and ``truncated`` is set.
- Every candidate URI costs one step of a budget of ``STEPS_PER_OBJECT × max_objects``
  (plus a floor): a SegmentTimeline with ``r=10**12`` or a template repeated over many
  Representations stops there, never loops.
- At most ``MAX_IGNORED_KEPT`` ignored URIs are quoted; the rest are counted by reason.
"""

from __future__ import annotations

import math
import re
import secrets
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Final, Literal
from urllib.parse import quote, urljoin, urlsplit
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as SafeXml
import m3u8
from defusedxml import DefusedXmlException

from shared.keys import InvalidKey, ObjectKey
from shared.messages import BackfillMessage, MessageError

Kind = Literal["playlist", "init", "segment"]
Format = Literal["hls", "dash"]

# Long VOD playlists run to a couple of MB (10 hours of 2 s segments is ~2 MB); a body
# this big is already read into the worker's memory, and parsing is linear in it.
MAX_MANIFEST_BYTES: Final = 8 * 1024 * 1024
DEFAULT_MAX_OBJECTS: Final = 20_000
STEPS_PER_OBJECT: Final = 10
MIN_STEPS: Final = 10_000
MAX_IGNORED_KEPT: Final = 50
# A %0Nd width beyond this only makes long strings out of a hostile template.
MAX_FORMAT_WIDTH: Final = 32
# Numbers in an MPD attribute: 20 digits hold any 64-bit value DASH uses.
_NUMBER = re.compile(r"\s*(-?\d{1,20})\s*")
_ISO_DURATION = re.compile(
    r"\s*P(?:(?P<Y>\d+(?:\.\d+)?)Y)?(?:(?P<Mo>\d+(?:\.\d+)?)M)?(?:(?P<W>\d+(?:\.\d+)?)W)?"
    r"(?:(?P<D>\d+(?:\.\d+)?)D)?(?:T(?:(?P<H>\d+(?:\.\d+)?)H)?(?:(?P<Mi>\d+(?:\.\d+)?)M)?"
    r"(?:(?P<S>\d+(?:\.\d+)?)S)?)?\s*"
)
_DURATION_SECONDS: Final = {
    "Y": 365 * 86400,
    "Mo": 30 * 86400,
    "W": 7 * 86400,
    "D": 86400,
    "H": 3600,
    "Mi": 60,
    "S": 1,
}
_TEMPLATE_TOKEN = re.compile(r"\$(?P<name>[A-Za-z]*)(?:%0(?P<width>\d{1,3})d)?\$")
_TEMPLATE_NAMES: Final = ("RepresentationID", "Number", "Bandwidth", "Time")
# What CloudFront leaves unescaped in a path (and "%", which starts an existing escape).
_SAFE_IN_PATH: Final = "/-._~!$&'()*+,;=:@%"
_SAFE_IN_QUERY: Final = _SAFE_IN_PATH + "?"
_XLINK_HREF: Final = "{http://www.w3.org/1999/xlink}href"

HLS_CONTENT_TYPES: Final = frozenset(
    {
        "application/vnd.apple.mpegurl",
        "application/x-mpegurl",
        "audio/mpegurl",
        "audio/x-mpegurl",
    }
)
DASH_CONTENT_TYPES: Final = frozenset({"application/dash+xml"})


@dataclass(frozen=True, slots=True)
class Reference:
    """One object a manifest names: its CloudFront URI path, its query and its kind."""

    path: str  # percent-encoded, starts with a single "/", passes ObjectKey.from_uri
    kind: Kind
    query: str = ""

    @property
    def uri(self) -> str:
        """The path with its query, as a viewer (and a prewarm message) asks for it."""
        return f"{self.path}?{self.query}" if self.query else self.path


@dataclass(frozen=True, slots=True)
class Ignored:
    """A URI the manifest names that is not returned, and why."""

    uri: str  # as written in the manifest, cut to 200 characters
    reason: str


@dataclass(frozen=True)
class Manifest:
    """The outcome of one parse. ``expanded`` is False when the manifest was not read for
    references at all (not a manifest, live, malformed, too big); ``reason`` says why."""

    format: Format | None
    references: tuple[Reference, ...] = ()
    ignored: tuple[Ignored, ...] = ()
    ignored_reasons: dict[str, int] = field(default_factory=dict)
    expanded: bool = True
    reason: str | None = None
    truncated: bool = False

    def count(self, kind: Kind) -> int:
        return sum(1 for reference in self.references if reference.kind == kind)


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
    viewer_host: str | None,
    max_objects: int = DEFAULT_MAX_OBJECTS,
    key_prefix: str = "",
) -> Manifest:
    """The objects the manifest at ``uri`` (a CloudFront URI) references; never raises.

    ``viewer_host`` is the only host an absolute URI may name (None: only relative URIs
    count). ``key_prefix`` is the bucket's key prefix, for the key-length rule.
    """
    kind = manifest_format(uri, content_type) or _sniff(body)
    if kind is None:
        return Manifest(None, expanded=False, reason="not an HLS playlist or a DASH manifest")
    if len(body) > MAX_MANIFEST_BYTES:
        return Manifest(
            kind,
            expanded=False,
            reason=f"manifest is {len(body)} bytes; the most parsed is {MAX_MANIFEST_BYTES}",
        )
    collector = _Collector(uri, viewer_host, max(0, max_objects), key_prefix)
    try:
        not_expanded = (
            _parse_hls(body, collector) if kind == "hls" else _parse_dash(body, collector)
        )
    except _Full:  # the references found so far stand; ``truncated`` says the rest is not
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


class _Full(Exception):
    """The object cap or the step budget is reached: the parse stops here."""


class _Collector:
    """Resolves, checks and de-duplicates candidate URIs; counts what it ignores."""

    def __init__(self, uri: str, viewer_host: str | None, max_objects: int, prefix: str) -> None:
        # Without a viewer host, relative URIs resolve on a host no manifest can name
        # (a random one, per parse), so only they count.
        self.host = (viewer_host or "").lower() or f"unknown-{secrets.token_hex(8)}.invalid"
        self.base = f"https://{self.host}{uri.split('?', 1)[0]}"
        self.max_objects = max_objects
        self.steps_left = max(MIN_STEPS, STEPS_PER_OBJECT * max_objects)
        self.prefix = prefix
        self.references: dict[tuple[str, str], Reference] = {}
        # (raw, base) already resolved: an EXT-X-MAP repeats on every segment it covers.
        self.seen: set[tuple[str, str]] = set()
        self.ignored: list[Ignored] = []
        self.reasons: Counter[str] = Counter()
        self.truncated = False

    def add(self, raw: str | None, kind: Kind, base: str | None = None) -> None:
        """Resolve ``raw`` against ``base`` (default: the manifest) and keep it if it passes;
        raises ``_Full`` when no more may be kept."""
        if raw is None:
            return
        self.steps_left -= 1
        if self.steps_left < 0 or len(self.references) >= self.max_objects:
            self.truncated = True
            raise _Full
        where = base or self.base
        if (raw, where) in self.seen:
            return
        self.seen.add((raw, where))
        outcome = self.resolve(raw, where)
        if isinstance(outcome, str):
            self.ignore(raw, outcome)
        else:
            path, query = outcome
            self.references.setdefault((path, query), Reference(path, kind, query))

    def resolve(self, raw: str, base: str) -> tuple[str, str] | str:
        """(path, query) of ``raw`` on the viewer host, or the reason it is ignored."""
        # Players in browsers (the WHATWG URL rules) read "\\" as "/" in http(s) URLs, so
        # "\\\\other.host\\x" names another host there: resolve it as they do.
        text = raw.strip().replace("\\", "/")
        if not text:
            return "empty URI"
        if text[:5].lower() == "data:":
            return "data URI"
        try:
            absolute = urljoin(base, text)
            parts = urlsplit(absolute)
            port = parts.port
        except ValueError:
            return "malformed URI"
        if parts.scheme not in ("http", "https"):
            return f"scheme {parts.scheme[:20]!r} is not http(s)"
        if parts.username is not None or parts.password is not None:
            return "URI carries credentials"
        host = (parts.hostname or "") + (f":{port}" if port is not None else "")
        if host not in (self.host, self.host.split(":")[0]):
            return "another host"
        path = quote(parts.path or "/", safe=_SAFE_IN_PATH)
        query = quote(parts.query, safe=_SAFE_IN_QUERY)
        try:
            ObjectKey.from_uri(path, self.prefix)
        except InvalidKey as error:  # the reason a viewer's URI would be skipped for
            return f"key rules ({error.reason}): {str(error)[:200]}"
        try:
            BackfillMessage(uri=path, query=query)
        except MessageError as error:
            return f"key rules (message {error.field}): {error.reason[:200]}"
        return path, query

    def ignore(self, raw: str, reason: str) -> None:
        self.reasons[reason.split(": ", 1)[0]] += 1
        if len(self.ignored) < MAX_IGNORED_KEPT:
            self.ignored.append(Ignored(raw[:200], reason))

    def result(self, kind: Format) -> Manifest:
        return Manifest(
            kind,
            references=tuple(self.references.values()),
            ignored=tuple(self.ignored),
            ignored_reasons=dict(self.reasons),
            truncated=self.truncated,
            reason="stopped at the object or step cap" if self.truncated else None,
        )


# ---- HLS ---------------------------------------------------------------------------


def _parse_hls(body: bytes, collector: _Collector) -> str | None:
    """Collect an HLS playlist's references; returns why it is not expanded, else None."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        return "playlist is not UTF-8 (RFC 8216 requires it)"
    if not text.lstrip().startswith("#EXTM3U"):
        return "playlist does not start with #EXTM3U"
    playlist = m3u8.loads(text)
    for key in [*playlist.session_keys, *playlist.keys]:
        if key is not None and key.uri:
            collector.ignore(key.uri, "encryption key (EXT-X-KEY / EXT-X-SESSION-KEY)")
    is_media = bool(playlist.segments) or not playlist.is_variant
    if is_media and not playlist.is_endlist and (playlist.playlist_type or "").lower() != "vod":
        return "live playlist (no EXT-X-ENDLIST and no EXT-X-PLAYLIST-TYPE:VOD)"
    _hls_references(playlist, collector)
    return None


def _hls_references(playlist: Any, collector: _Collector) -> None:
    for variant in playlist.playlists:
        collector.add(variant.uri, "playlist")
    for rendition in playlist.media:
        collector.add(rendition.uri, "playlist")
    for iframe in playlist.iframe_playlists:
        collector.add(iframe.uri, "playlist")
    for image in getattr(playlist, "image_playlists", ()):
        collector.add(image.uri, "playlist")
    for data in playlist.session_data:
        if data.uri:
            collector.ignore(data.uri, "session data (EXT-X-SESSION-DATA)")
    for segment in playlist.segments:
        if segment.init_section is not None:
            collector.add(segment.init_section.uri, "init")
        collector.add(segment.uri, "segment")


# ---- DASH --------------------------------------------------------------------------


def _parse_dash(body: bytes, collector: _Collector) -> str | None:
    """Collect an MPD's references; returns why it is not expanded, else None."""
    try:
        root = SafeXml.fromstring(body, forbid_dtd=True, forbid_entities=True)
    except DefusedXmlException as error:
        return f"MPD refused: {type(error).__name__} (DTDs and entities are not accepted)"
    except ParseError as error:
        return f"MPD is not well-formed XML: {error}"
    if _local(root.tag) != "MPD":
        return f"root element is {_local(root.tag)[:40]!r}, not MPD"
    if (root.get("type") or "static").strip() == "dynamic":
        return 'live MPD (type="dynamic")'
    total = _duration(root.get("mediaPresentationDuration"))
    base = _base_url(root, collector.base)
    periods = _children(root, "Period")
    starts = [_duration(period.get("start")) for period in periods]
    elapsed: Fraction | None = Fraction(0)
    for index, period in enumerate(periods):
        start = starts[index] if starts[index] is not None else elapsed
        following = starts[index + 1] if index + 1 < len(starts) else None
        length = _duration(period.get("duration"))
        if length is None and start is not None:
            end = following if following is not None else total
            length = end - start if end is not None and end > start else None
        elapsed = start + length if start is not None and length is not None else None
        _period(period, base, length, collector)
    return None


def _period(period: Element, base: str, length: Fraction | None, collector: _Collector) -> None:
    if period.get(_XLINK_HREF):
        collector.ignore(period.get(_XLINK_HREF) or "", "remote Period (xlink:href)")
        return
    period_base = _base_url(period, base)
    for adaptation in _children(period, "AdaptationSet"):
        adaptation_base = _base_url(adaptation, period_base)
        for representation in _children(adaptation, "Representation"):
            levels = (period, adaptation, representation)
            _representation(levels, _base_url(representation, adaptation_base), length, collector)


def _representation(
    levels: tuple[Element, Element, Element],
    base: str,
    length: Fraction | None,
    collector: _Collector,
) -> None:
    templates = [t for level in levels for t in _children(level, "SegmentTemplate")[:1]]
    lists = [s for level in levels for s in _children(level, "SegmentList")[:1]]
    if templates:
        _template(templates, levels[2], base, length, collector)
    elif lists:
        _segment_list(lists[-1], base, collector)
    else:
        segment_bases = [s for level in levels for s in _children(level, "SegmentBase")[:1]]
        for initialization in (
            _children(segment_bases[-1], "Initialization")[:1] if segment_bases else ()
        ):
            collector.add(initialization.get("sourceURL"), "init", base)
        has_own_url = any(_children(level, "BaseURL") for level in levels)
        if has_own_url and not urlsplit(base).path.endswith("/"):
            collector.add(base, "segment", base)
        elif not segment_bases:
            name = levels[2].get("id") or "(no id)"
            collector.ignore(name, "Representation without segment information")


def _segment_list(segment_list: Element, base: str, collector: _Collector) -> None:
    for initialization in _children(segment_list, "Initialization")[:1]:
        collector.add(initialization.get("sourceURL") or base, "init", base)
    for segment in _children(segment_list, "SegmentURL"):
        # A SegmentURL without @media is a byte range of the BaseURL: the same object.
        collector.add(segment.get("media") or base, "segment", base)


def _template(
    templates: list[Element],
    representation: Element,
    base: str,
    length: Fraction | None,
    collector: _Collector,
) -> None:
    attributes: dict[str, str] = {}
    for template in templates:  # Period, then AdaptationSet, then Representation: the last wins
        attributes.update(template.attrib)
    timelines = [line for t in templates for line in _children(t, "SegmentTimeline")[:1]]
    initializations = [i for t in templates for i in _children(t, "Initialization")[:1]]
    values = {
        "RepresentationID": representation.get("id"),
        "Bandwidth": representation.get("bandwidth"),
    }
    init = attributes.get("initialization")
    if init is None and initializations:
        init = initializations[-1].get("sourceURL")
    if init is not None:
        _expand_one(init, values, None, None, "init", base, collector)
    media = attributes.get("media")
    if media is None:
        return
    parts = _compile(media)
    if isinstance(parts, str):
        collector.ignore(media, parts)
        return
    names = {name for name, _ in parts if name}
    if not names & {"Number", "Time"}:  # one object for every segment of this template
        _expand_compiled(media, parts, values, 0, 0, "segment", base, collector)
        return
    numbers = _timeline(timelines[-1], attributes, length) if timelines else None
    if numbers is None:
        numbers = _numbered(attributes, length)
    if isinstance(numbers, str):
        collector.ignore(media, numbers)
        return
    for number, time in numbers:
        _expand_compiled(media, parts, values, number, time, "segment", base, collector)


def _expand_one(
    text: str,
    values: dict[str, str | None],
    number: int | None,
    time: int | None,
    kind: Kind,
    base: str,
    collector: _Collector,
) -> None:
    parts = _compile(text)
    if isinstance(parts, str):
        collector.ignore(text, parts)
        return
    _expand_compiled(text, parts, values, number, time, kind, base, collector)


def _expand_compiled(
    text: str,
    parts: list[tuple[str | None, int | str]],
    values: dict[str, str | None],
    number: int | None,
    time: int | None,
    kind: Kind,
    base: str,
    collector: _Collector,
) -> None:
    out: list[str] = []
    for name, value in parts:
        if name is None:
            out.append(str(value))
            continue
        filled: Any = {"Number": number, "Time": time}.get(name, values.get(name))
        if filled is None:
            collector.ignore(text, f"template names ${name}$ but it has no value here")
            return
        width = int(value)
        if not width:
            out.append(str(filled))
            continue
        try:
            out.append(f"{int(filled):0{width}d}")
        except ValueError:
            collector.ignore(text, f"template formats ${name}$ but its value is not a number")
            return
    collector.add("".join(out), kind, base)


def _compile(template: str) -> list[tuple[str | None, int | str]] | str:
    """Literal parts (None, text) and identifiers (name, width) of a template, or a reason."""
    parts: list[tuple[str | None, int | str]] = []
    position = 0
    for match in _TEMPLATE_TOKEN.finditer(template):
        parts.append((None, template[position : match.start()]))
        name, width = match.group("name"), match.group("width")
        position = match.end()
        if not name:
            if width:
                return "template has a format tag without an identifier"
            parts.append((None, "$"))  # "$$" is a literal dollar
            continue
        if name not in _TEMPLATE_NAMES:
            return f"template identifier ${name[:20]}$ is unknown"
        if width and (name == "RepresentationID" or int(width) > MAX_FORMAT_WIDTH):
            return f"template format %0{width[:4]}d is not allowed for ${name}$"
        parts.append((name, int(width or 0)))
    rest = template[position:]
    if "$" in rest:
        return "template has an unmatched '$'"
    parts.append((None, rest))
    return parts


def _numbered(
    attributes: dict[str, str], length: Fraction | None
) -> Iterator[tuple[int, int]] | str:
    """(number, time) of each segment of a template with @duration."""
    start = _integer(attributes.get("startNumber"), 1)
    duration = _integer(attributes.get("duration"), 0)
    timescale = _integer(attributes.get("timescale"), 1)
    offset = _integer(attributes.get("presentationTimeOffset"), 0)
    end_number = _integer(attributes.get("endNumber"), None)
    if (
        start is None
        or duration is None
        or timescale is None
        or offset is None
        or duration <= 0
        or timescale <= 0
    ):
        return "SegmentTemplate needs a positive @duration and @timescale, or a SegmentTimeline"
    if end_number is not None:
        count = end_number - start + 1
    elif length is not None:
        count = math.ceil(length * timescale / duration)
    else:
        return "SegmentTemplate @duration with no Period or presentation duration to bound it"
    return ((start + i, offset + i * duration) for i in range(max(0, count)))


def _timeline(
    timeline: Element, attributes: dict[str, str], length: Fraction | None
) -> Iterator[tuple[int, int]] | str:
    """(number, time) of each segment a SegmentTimeline describes."""
    start = _integer(attributes.get("startNumber"), 1)
    timescale = _integer(attributes.get("timescale"), 1)
    offset = _integer(attributes.get("presentationTimeOffset"), 0)
    if start is None or timescale is None or offset is None or timescale <= 0:
        return "SegmentTemplate has a malformed @startNumber, @timescale or @presentationTimeOffset"
    entries = []
    for entry in _children(timeline, "S"):
        t, d, r = (
            _integer(entry.get(name), default)
            for name, default in (("t", None), ("d", 0), ("r", 0))
        )
        if d is None or r is None or d <= 0 or r < -1 or (entry.get("t") is not None and t is None):
            return "SegmentTimeline S needs a positive @d, an @r of -1 or more and a numeric @t"
        entries.append((t, d, r))
    period_end = offset + math.ceil(length * timescale) if length is not None else None
    return _timeline_segments(entries, start, period_end)


def _timeline_segments(
    entries: list[tuple[int | None, int, int]], number: int, period_end: int | None
) -> Iterator[tuple[int, int]]:
    time = 0
    for index, (t, d, r) in enumerate(entries):
        time = t if t is not None else time
        if r >= 0:
            count = r + 1
        else:  # repeat until the next S's @t, or the end of the Period
            following = entries[index + 1][0] if index + 1 < len(entries) else None
            end = following if following is not None else period_end
            if end is None:
                return
            count = max(0, math.ceil((end - time) / d))
        for _ in range(count):
            yield number, time
            number += 1
            time += d


# ---- XML helpers -------------------------------------------------------------------


def _local(tag: object) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _children(element: Element, name: str) -> list[Element]:
    return [child for child in element if _local(child.tag) == name]


def _base_url(element: Element, parent: str) -> str:
    """The element's first BaseURL resolved against its parent's; the parent's if none."""
    for base in _children(element, "BaseURL")[:1]:
        text = (base.text or "").strip()
        if text:
            try:
                return urljoin(parent, text)
            except ValueError:
                return parent
    return parent


def _integer(raw: str | None, default: int | None) -> int | None:
    if raw is None:
        return default
    match = _NUMBER.fullmatch(raw)
    return int(match.group(1)) if match else None


def _duration(raw: str | None) -> Fraction | None:
    """Seconds of an ISO 8601 duration (``PT1H2M3.5S``); None when absent or malformed."""
    if raw is None or len(raw) > 64:
        return None
    match = _ISO_DURATION.fullmatch(raw)
    if match is None or not any(match.groupdict().values()):
        return None
    return sum(
        (
            Fraction(value) * _DURATION_SECONDS[name]
            for name, value in match.groupdict().items()
            if value
        ),
        Fraction(0),
    )
