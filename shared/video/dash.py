"""DASH MPDs (ISO/IEC 23009-1): every object a static presentation's Representations name.

- ``BaseURL`` at MPD, Period, AdaptationSet and Representation level, each resolved
  against the level above (RFC 3986, ``uris.py``). With several alternatives at one
  level, the first on one of our hosts is used (§5.6: any alternative serves the same
  objects), else the first.
- Segment information is inherited (§5.3.9.1): the lowest level carrying a
  ``SegmentTemplate``, ``SegmentList`` or ``SegmentBase`` decides which addressing a
  Representation uses; that element's attributes are merged from Period down to
  Representation (the lower level wins), and each of its child elements
  (``SegmentTimeline``, ``Initialization``, ``RepresentationIndex``,
  ``BitstreamSwitching``, ``SegmentURL``) comes from the lowest level that has it.
- ``SegmentTemplate`` (§5.3.9.4): ``@initialization``, ``@index``, ``@bitstreamSwitching``
  and ``@media`` with ``$RepresentationID$``, ``$Number$``, ``$Bandwidth$``, ``$Time$``,
  ``%0Nd`` widths and ``$$``. Numbers and times come from the ``SegmentTimeline``
  (``@t``, ``@d``, ``@r``, ``r="-1"`` up to the next ``S`` or the Period's end), else from
  ``@duration`` over the Period (or up to ``@endNumber``), else the template names one
  segment (§5.3.9.2: without ``@duration`` or a timeline a Representation has one Media
  Segment). ``@endNumber`` bounds every form.
- ``SegmentList``: ``SegmentURL@media`` (without it, a range of the BaseURL: the same
  object) and ``@index``; ``SegmentBase``: the BaseURL itself. Both:
  ``Initialization@sourceURL``, ``RepresentationIndex@sourceURL``.
- Numeric attributes may be written as decimals (``duration="2000000.0"``); numbers
  (``@startNumber``, ``@endNumber``, ``@r``) must be whole.

Never followed: remote elements (``xlink:href`` on a Period or an AdaptationSet), dynamic
MPDs (``type="dynamic"``: their segment list moves while it is read). DTDs and entities are
refused by ``defusedxml`` before any expansion.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Final
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as SafeXml
from defusedxml import DefusedXmlException

from shared.video.collector import Collector
from shared.video.model import Kind
from shared.video.uris import UriParts

# A %0Nd width beyond this only makes long strings out of a hostile template.
MAX_FORMAT_WIDTH: Final = 32
# Numbers in an MPD attribute: 20 digits hold any 64-bit value DASH uses.
_DECIMAL = re.compile(r"\s*(-?\d{1,20}(?:\.\d{0,20})?|-?\.\d{1,20})\s*")
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
_XLINK_HREF: Final = "{http://www.w3.org/1999/xlink}href"
_SEGMENT_ELEMENTS: Final = ("SegmentTemplate", "SegmentList", "SegmentBase")

Parts = list[tuple[str | None, int | str]]
_ByName = dict[str, list[Element]]  # an element's children by local name


def parse_dash(body: bytes, collector: Collector) -> str | None:
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
    base = _base_url(root, collector.base, collector)
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


def _period(period: Element, base: UriParts, length: Fraction | None, collector: Collector) -> None:
    if period.get(_XLINK_HREF):
        collector.ignore(period.get(_XLINK_HREF) or "", "remote Period (xlink:href)")
        return
    period_base = _base_url(period, base, collector)
    # Each level's children are grouped once: every Representation inherits from its
    # AdaptationSet and Period, and looking them up again per Representation scanned the
    # AdaptationSet's children once per Representation (2,000 of them: 3.5 s).
    period_children = _by_name(period)
    for adaptation in period_children.get("AdaptationSet", ()):
        if adaptation.get(_XLINK_HREF):
            collector.ignore(adaptation.get(_XLINK_HREF) or "", "remote AdaptationSet (xlink:href)")
            continue
        adaptation_base = _base_url(adaptation, period_base, collector)
        adaptation_children = _by_name(adaptation)
        for representation in adaptation_children.get("Representation", ()):
            levels = (period_children, adaptation_children, _by_name(representation))
            representation_base = _base_url(representation, adaptation_base, collector)
            _representation(representation, levels, representation_base, length, collector)


@dataclass
class _Segments:
    """One kind of segment information, inherited across the levels (§5.3.9.1)."""

    kind: str
    attributes: dict[str, str] = field(default_factory=dict)
    children: dict[str, list[Element]] = field(default_factory=dict)

    def first(self, name: str) -> Element | None:
        found = self.children.get(name)
        return found[0] if found else None


def _segments(levels: tuple[_ByName, ...]) -> _Segments | None:
    """The segment information of the Representation whose children are ``levels[-1]``
    (its AdaptationSet's and Period's before it), or None."""
    found = [
        [element for name in _SEGMENT_ELEMENTS for element in level.get(name, [])[:1]]
        for level in levels
    ]
    lowest = next((elements for elements in reversed(found) if elements), None)
    if lowest is None:
        return None
    kind = _local(lowest[0].tag)
    merged = _Segments(kind)
    for elements in found:
        for element in elements:
            if _local(element.tag) != kind:
                continue
            merged.attributes.update(element.attrib)
            merged.children.update(_by_name(element))
    return merged


def _representation(
    representation: Element,
    levels: tuple[_ByName, _ByName, _ByName],
    base: UriParts,
    length: Fraction | None,
    collector: Collector,
) -> None:
    segments = _segments(levels)
    values = {
        "RepresentationID": representation.get("id"),
        "Bandwidth": representation.get("bandwidth"),
    }
    if segments is None or segments.kind == "SegmentBase":
        # The BaseURL is the Representation's one file (its ranges are the same object).
        has_own_url = any(level.get("BaseURL") for level in levels)
        if has_own_url and not base.path.endswith("/"):
            collector.add(base.text(), "segment", base)
        elif segments is None:
            name = representation.get("id") or "(no id)"
            collector.ignore(name, "Representation without segment information")
        if segments is not None:
            _source_urls(segments, ("Initialization", "RepresentationIndex"), base, collector)
        return
    if segments.kind == "SegmentList":
        _segment_list(segments, base, collector)
        return
    _template(segments, values, base, length, collector)


def _source_urls(
    segments: _Segments, names: tuple[str, ...], base: UriParts, collector: Collector
) -> None:
    """``@sourceURL`` of the URL-typed children (Initialization, RepresentationIndex,
    BitstreamSwitching): each an init-kind object; one with only a ``@range`` is a range of
    the BaseURL, the same object."""
    for name in names:
        element = segments.first(name)
        if element is not None:
            collector.add(element.get("sourceURL") or base.text(), "init", base)


def _segment_list(segments: _Segments, base: UriParts, collector: Collector) -> None:
    _source_urls(
        segments, ("Initialization", "RepresentationIndex", "BitstreamSwitching"), base, collector
    )
    for segment in segments.children.get("SegmentURL", ()):
        # A SegmentURL without @media is a byte range of the BaseURL: the same object.
        collector.add(segment.get("media") or base.text(), "segment", base)
        if segment.get("index"):
            collector.add(segment.get("index"), "init", base)


def _template(
    segments: _Segments,
    values: dict[str, str | None],
    base: UriParts,
    length: Fraction | None,
    collector: Collector,
) -> None:
    attributes = segments.attributes
    init = attributes.get("initialization")
    if init is None and segments.first("Initialization") is not None:
        init = segments.first("Initialization").get("sourceURL")  # type: ignore[union-attr]
    for text in (init, attributes.get("index"), _switching(attributes.get("bitstreamSwitching"))):
        if text is not None:
            _expand_one(text, values, None, None, "init", base, collector)
    _source_urls(segments, ("RepresentationIndex", "BitstreamSwitching"), base, collector)
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
    timeline = segments.first("SegmentTimeline")
    numbers = (
        _timeline(timeline, attributes, length)
        if timeline is not None
        else _numbered(attributes, length)
    )
    if isinstance(numbers, str):
        collector.ignore(media, numbers)
        return
    for number, time in numbers:
        _expand_compiled(media, parts, values, number, time, "segment", base, collector)


def _switching(value: str | None) -> str | None:
    """``SegmentTemplate@bitstreamSwitching`` as a template; the boolean some packagers
    write there (the AdaptationSet attribute of that name) names no object."""
    if value is None or value.strip().lower() in ("true", "false", ""):
        return None
    return value


def _expand_one(
    text: str,
    values: dict[str, str | None],
    number: int | None,
    time: Fraction | None,
    kind: Kind,
    base: UriParts,
    collector: Collector,
) -> None:
    parts = _compile(text)
    if isinstance(parts, str):
        collector.ignore(text, parts)
        return
    _expand_compiled(text, parts, values, number, time, kind, base, collector)


def _expand_compiled(
    text: str,
    parts: Parts,
    values: dict[str, str | None],
    number: int | None,
    time: Fraction | int | None,
    kind: Kind,
    base: UriParts,
    collector: Collector,
) -> None:
    filled = _filled(parts, values, number, time)
    if isinstance(filled, tuple):
        collector.step()  # a candidate that fails costs a step too: r="1e12" must end
        collector.ignore(text, filled[0])
        return
    collector.add(filled, kind, base)


def _filled(
    parts: Parts,
    values: dict[str, str | None],
    number: int | None,
    time: Fraction | int | None,
) -> str | tuple[str]:
    """The template's text for one segment, or (the reason it has none,)."""
    out: list[str] = []
    for name, value in parts:
        if name is None:
            out.append(str(value))
            continue
        filled: Any = {"Number": number, "Time": time}.get(name, values.get(name))
        if filled is None:
            return (f"template identifier without a value here: ${name}$",)
        if isinstance(filled, Fraction):
            if filled.denominator != 1:
                return (f"template time is not a whole number: {filled}",)
            filled = filled.numerator
        width = int(value)
        if not width:
            out.append(str(filled))
            continue
        try:
            out.append(f"{int(filled):0{width}d}")
        except ValueError:
            return (f"template format on a value that is not a number: ${name}$",)
    return "".join(out)


def _compile(template: str) -> Parts | str:
    """Literal parts (None, text) and identifiers (name, width) of a template, or a reason."""
    parts: Parts = []
    position = 0
    for match in _TEMPLATE_TOKEN.finditer(template):
        parts.append((None, template[position : match.start()]))
        name, width = match.group("name"), match.group("width")
        position = match.end()
        if not name:
            if width:
                return "template format tag without an identifier"
            parts.append((None, "$"))  # "$$" is a literal dollar
            continue
        if name not in _TEMPLATE_NAMES:
            return f"template identifier unknown: ${name[:20]}$"
        if width and (name == "RepresentationID" or int(width) > MAX_FORMAT_WIDTH):
            return f"template format not allowed: %0{width[:4]}d for ${name}$"
        parts.append((name, int(width or 0)))
    rest = template[position:]
    if "$" in rest:
        return "template has an unmatched '$'"
    parts.append((None, rest))
    return parts


@dataclass(frozen=True, slots=True)
class _Numbering:
    """A template's numbering attributes (merged across the levels)."""

    start: int
    end: int | None  # @endNumber, the last number
    timescale: Fraction
    offset: Fraction  # @presentationTimeOffset

    @classmethod
    def of(cls, attributes: dict[str, str]) -> _Numbering | str:
        start = _whole(attributes.get("startNumber"), 1)
        end = _whole(attributes.get("endNumber"), None)
        timescale = _decimal(attributes.get("timescale"), Fraction(1))
        offset = _decimal(attributes.get("presentationTimeOffset"), Fraction(0))
        if start is None or timescale is None or offset is None or timescale <= 0:
            return "SegmentTemplate malformed: @startNumber, @timescale or @presentationTimeOffset"
        if "endNumber" in attributes and end is None:
            return "SegmentTemplate malformed: @endNumber"
        return cls(start, end, timescale, offset)


def _numbered(
    attributes: dict[str, str], length: Fraction | None
) -> Iterator[tuple[int, Fraction]] | str:
    """(number, time) of each segment of a template without a SegmentTimeline: over the
    Period with ``@duration``, up to ``@endNumber``, or the one segment of §5.3.9.2."""
    numbering = _Numbering.of(attributes)
    if isinstance(numbering, str):
        return numbering
    duration = _decimal(attributes.get("duration"), None)
    if "duration" in attributes and (duration is None or duration <= 0):
        return "SegmentTemplate malformed: @duration must be positive"
    start, offset = numbering.start, numbering.offset
    if duration is None:  # a single Media Segment (§5.3.9.2)
        return iter([(start, offset)])
    if numbering.end is not None:
        count = numbering.end - start + 1
    elif length is not None:
        count = math.ceil(length * numbering.timescale / duration)
    else:
        return "SegmentTemplate unbounded: @duration with no Period or presentation duration"
    return ((start + i, offset + i * duration) for i in range(max(0, count)))


def _timeline(
    timeline: Element, attributes: dict[str, str], length: Fraction | None
) -> Iterator[tuple[int, Fraction]] | str:
    """(number, time) of each segment a SegmentTimeline describes, up to ``@endNumber``."""
    numbering = _Numbering.of(attributes)
    if isinstance(numbering, str):
        return numbering
    entries = []
    for entry in _children(timeline, "S"):
        t = _decimal(entry.get("t"), None)
        d = _decimal(entry.get("d"), None)
        r = _whole(entry.get("r"), 0)
        if d is None or r is None or d <= 0 or r < -1 or (entry.get("t") is not None and t is None):
            return "SegmentTimeline malformed: S needs a positive @d, @r of -1 or more, numeric @t"
        entries.append((t, d, r))
    period_end = None
    if length is not None:
        period_end = numbering.offset + length * numbering.timescale
    segments = _timeline_segments(entries, numbering.start, period_end)
    end = numbering.end
    if end is None:
        return segments
    # Numbers only grow: stop at the first past @endNumber (r="1000000000000" must not run)
    return itertools.takewhile(lambda segment: segment[0] <= end, segments)


def _timeline_segments(
    entries: list[tuple[Fraction | None, Fraction, int]],
    number: int,
    period_end: Fraction | None,
) -> Iterator[tuple[int, Fraction]]:
    time = Fraction(0)
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


def _by_name(element: Element) -> _ByName:
    """The element's children grouped by local name, each group in document order."""
    grouped: _ByName = {}
    for child in element:
        grouped.setdefault(_local(child.tag), []).append(child)
    return grouped


def _base_url(element: Element, parent: UriParts, collector: Collector) -> UriParts:
    """The element's BaseURL resolved against its parent's: the first alternative on one of
    our hosts, else the first; the parent's when it has none."""
    first: UriParts | None = None
    for base in _children(element, "BaseURL"):
        collector.step()
        target = collector.absolute(base.text or "", parent)
        if isinstance(target, str):
            continue
        if collector.is_ours(target):
            return target
        first = first or target
    return first or parent


def _decimal(raw: str | None, default: Fraction | None) -> Fraction | None:
    """A numeric attribute (a whole number or a decimal); None when malformed."""
    if raw is None:
        return default
    match = _DECIMAL.fullmatch(raw)
    return Fraction(match.group(1)) if match else None


def _whole(raw: str | None, default: int | None) -> int | None:
    """A whole-number attribute, also when written as a decimal (``"5.0"``); None when
    malformed or not whole."""
    if raw is None:
        return default
    value = _decimal(raw, None)
    if value is None or value.denominator != 1:
        return None
    return value.numerator


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
