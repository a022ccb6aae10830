"""HLS playlists: ``m3u8`` where it parses, RFC 8216's line rules where it does not.

``parse_hls`` decodes the playlist (UTF-8, first line ``#EXTM3U``: RFC 8216 §4.1),
substitutes its ``EXT-X-DEFINE`` variables (``hls_lines.py``), refuses a live playlist,
then reads it with ``m3u8.parse`` — the package's line parser, without its object model,
which adds nothing here — and hands every URI it found to the collector.

**One malformed tag costs that tag, not the playlist.** ``m3u8`` raises on some tags it
cannot read (``EXT-X-STREAM-INF`` without ``BANDWIDTH``, an empty
``EXT-X-MEDIA-SEQUENCE``, a bad ``EXT-X-TARGETDURATION``...). Its ``custom_tags_parser``
hook sees every tag line first, with the ``data`` and ``state`` it fills, so when it
raises the failing tag is known (the last one the hook saw) and what it had read so far is
kept. That tag and the URI lines up to the next tag are read by the line scanner below
(URI lines and ``URI`` attributes, by RFC 8216's tag rules) and logged as a
``SkippedTag`` with its line number; ``m3u8`` resumes after them with the same data and
state, so the whole playlist costs one pass. After ``MAX_SKIPPED_TAGS`` such tags the
scanner reads the rest.

**Keys are never taken**, by either reader: the hook answers every ``EXT-X-KEY`` and
``EXT-X-SESSION-KEY`` itself (counting its URI as ignored), so ``m3u8`` never sees one —
which also spares its quadratic de-duplication of keys (20,000 distinct keys took it
18 s) — and the scanner ignores them too.

**Bounded:** ``m3u8`` holds about 550 bytes per segment, so the hook stops it after as
many tags as the collector's step budget (at least 10,000; 200,000 by default, about
110 MB for the smallest segments); the parse is then truncated there.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import m3u8

from shared.video.collector import Collector
from shared.video.hls_lines import DEFINE, VariableError, attributes, substitute_variables
from shared.video.model import MAX_MANIFEST_BYTES, Kind, SkippedTag

MAX_SKIPPED_TAGS: Final = 32
KEY_REASON: Final = "encryption key (EXT-X-KEY / EXT-X-SESSION-KEY)"
LIVE_REASON: Final = "live playlist (no EXT-X-ENDLIST and no EXT-X-PLAYLIST-TYPE:VOD)"
_KEY_TAGS: Final = ("#EXT-X-KEY:", "#EXT-X-SESSION-KEY:")
_ENDLIST = re.compile(r"^[ \t]*#EXT-X-ENDLIST", re.M)
_VOD = re.compile(r"^[ \t]*#EXT-X-PLAYLIST-TYPE:[ \t]*VOD[ \t]*$", re.M | re.I)
_SEGMENT_TAG = re.compile(r"^[ \t]*#EXTINF", re.M)
_VARIANT_TAG = re.compile(r"^[ \t]*#EXT-X-STREAM-INF", re.M)
# Tags whose URI attribute names a playlist (RFC 8216 §4.3.4.1, .2, .3; image streams).
_PLAYLIST_URI_TAGS: Final = ("EXT-X-MEDIA", "EXT-X-I-FRAME-STREAM-INF", "EXT-X-IMAGE-STREAM-INF")


class _Stop(Exception):
    """The tag budget is reached: m3u8 stops here."""


@dataclass
class _Hook:
    """``m3u8.parse``'s ``custom_tags_parser``: keys, defines, the tag budget, and where a
    failure happened. ``shift`` maps m3u8's line numbers to indexes in the playlist."""

    collector: Collector
    budget: int
    shift: int = 0
    restore: tuple[dict[str, Any], dict[str, Any]] | None = None
    last_tag: int = -1
    tags: int = 0
    data: dict[str, Any] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)

    def __call__(self, line: str, lineno: int, data: dict[str, Any], state: Any) -> bool:
        if self.restore is not None and lineno == 1:  # a resumed pass: carry on as before
            data.update(self.restore[0])
            state.clear()
            state.update(self.restore[1])
            self.restore = None
            self.data, self.state = data, state
            return True  # the "#EXTM3U" put before the lines it resumes with
        self.data, self.state = data, state
        if not line.startswith("#EXT"):
            return False
        self.last_tag = lineno - 1 + self.shift
        self.tags += 1
        if self.tags > self.budget:
            raise _Stop
        if line.startswith(_KEY_TAGS):
            uri = attributes(line.partition(":")[2]).get("URI")
            if uri:
                self.collector.key(uri, KEY_REASON)
            return True
        return line.startswith(DEFINE)  # m3u8 does not know it; substituted already


def parse_hls(
    body: bytes, collector: Collector, query: str, imports: Mapping[str, str] | None
) -> str | None:
    """Collect an HLS playlist's references; returns why it is not expanded, else None."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        return "playlist is not UTF-8 (RFC 8216 requires it)"
    text = text.strip()
    if not text.startswith("#EXTM3U"):
        return "playlist does not start with #EXTM3U"
    is_media = _SEGMENT_TAG.search(text) is not None or _VARIANT_TAG.search(text) is None
    if is_media and _ENDLIST.search(text) is None and _VOD.search(text) is None:
        return LIVE_REASON
    lines = text.splitlines()
    if DEFINE in text or "{$" in text:
        try:
            collector.variables = substitute_variables(lines, query, imports, MAX_MANIFEST_BYTES)
        except VariableError as error:
            return f"playlist refused (EXT-X-DEFINE): {error}"
    _collect(_read(lines, collector), collector)
    return None


def _read(lines: list[str], collector: Collector) -> dict[str, Any]:
    """m3u8's data for ``lines``, resumed after each tag it cannot parse, with what the
    line scanner read instead put where m3u8 would have put it (in the playlist's order)."""
    hook = _Hook(collector, budget=max(collector.steps_left, 0))
    start = 0
    while True:
        text = "\n".join(lines) if start == 0 else "#EXTM3U\n" + "\n".join(lines[start:])
        try:
            return m3u8.parse(text, custom_tags_parser=hook)
        except _Stop:
            collector.stopped = "stopped at the step budget (tags read by m3u8)"
            return hook.data
        except Exception as error:  # noqa: BLE001 - any failure of m3u8 costs one tag
            start = _skip(lines, max(hook.last_tag, start), hook, error)
        if len(collector.skipped_tags) >= MAX_SKIPPED_TAGS and start < len(lines):
            collector.skipped_tags.append(
                SkippedTag(start + 1, "(the rest)", f"more than {MAX_SKIPPED_TAGS} tags skipped")
            )
            _scan(lines, start, len(lines), _expected(hook.state), hook.data, collector)
            return hook.data
        if start >= len(lines):
            return hook.data
        hook.shift = start - 1  # m3u8's line 2 is lines[start]
        hook.restore = (hook.data, hook.state)


def _skip(lines: list[str], first: int, hook: _Hook, error: Exception) -> int:
    """Read the failed tag at ``first`` and the URI lines after it with the scanner; clean
    m3u8's state of what the tag left half done; returns where m3u8 resumes."""
    end = first + 1
    while end < len(lines) and not lines[end].lstrip().startswith("#EXT"):
        end += 1
    line = lines[first].strip()
    tag = line[1:].partition(":")[0][:40] if line.startswith("#") else "URI line"
    hook.collector.skipped_tags.append(
        SkippedTag(first + 1, tag, f"{type(error).__name__}: {str(error)[:100]}")
    )
    expected = _expected(hook.state)
    for name in ("expect_segment", "expect_playlist"):
        hook.state[name] = False
    for name in ("segment", "stream_info"):
        hook.state.pop(name, None)
    _scan(lines, first, end, expected, hook.data, hook.collector)
    return end


def _expected(state: Mapping[str, Any]) -> Kind | None:
    """What m3u8 took the next URI line for: a segment, a variant playlist, or nothing."""
    if state.get("expect_segment"):
        return "segment"
    if state.get("expect_playlist"):
        return "playlist"
    return None


def _scan(
    lines: list[str],
    start: int,
    end: int,
    expected: Kind | None,
    data: dict[str, Any],
    collector: Collector,
) -> None:
    """RFC 8216's line rules for ``lines[start:end]``: a URI line is the segment of the
    ``EXTINF`` (or ``EXT-X-BYTERANGE``) before it, or the variant of the
    ``EXT-X-STREAM-INF`` before it; ``URI`` attributes of ``EXT-X-MAP`` are init
    sections, of ``EXT-X-MEDIA`` and the I-frame and image stream tags playlists; key
    tags' URIs are never taken. What it finds goes into m3u8's ``data``."""
    found = {"segment": "segments", "playlist": "playlists", "init": "segment_map"}
    for index in range(start, end):
        line = lines[index].strip()
        if not line or (line.startswith("#") and not line.startswith("#EXT")):
            continue
        if not line.startswith("#"):
            if expected is None:
                collector.ignore(line, "URI line without EXTINF or EXT-X-STREAM-INF")
            else:
                data.setdefault(found[expected], []).append({"uri": line})
            expected = None
            continue
        name, _, rest = line[1:].partition(":")
        if name == "EXT-X-STREAM-INF":
            expected = "playlist"
        elif name in ("EXTINF", "EXT-X-BYTERANGE"):
            expected = "segment"
        elif name in ("EXT-X-KEY", "EXT-X-SESSION-KEY"):
            collector.key(attributes(rest).get("URI") or line, KEY_REASON)
        elif name == "EXT-X-MAP" or name in _PLAYLIST_URI_TAGS:
            uri = attributes(rest).get("URI")
            if uri is not None:
                kind = "segment_map" if name == "EXT-X-MAP" else "media"
                data.setdefault(kind, []).append({"uri": uri})
        elif name == "EXT-X-SESSION-DATA" and "URI" in attributes(rest):
            collector.ignore(attributes(rest)["URI"], "session data (EXT-X-SESSION-DATA)")


def _collect(data: Mapping[str, Any], collector: Collector) -> None:
    """Every URI m3u8 and the scanner found, by kind (variants, renditions, I-frame and
    image playlists, init sections, segments), each kind in the playlist's order."""
    for name in ("playlists", "media", "iframe_playlists", "image_playlists"):
        for item in data.get(name, ()):
            collector.add(_uri(item), "playlist")
    for item in data.get("session_data", ()):
        if _uri(item):
            collector.ignore(_uri(item) or "", "session data (EXT-X-SESSION-DATA)")
    steering = data.get("content_steering")
    if isinstance(steering, dict) and _uri(steering, "server_uri"):
        collector.ignore(_uri(steering, "server_uri") or "", "content steering (not an object)")
    for item in data.get("segment_map", ()):
        collector.add(_uri(item), "init")
    for item in data.get("segments", ()):
        collector.add(_uri(item), "segment")


def _uri(item: object, name: str = "uri") -> str | None:
    value = item.get(name) if isinstance(item, dict) else None
    return value if isinstance(value, str) and value else None
