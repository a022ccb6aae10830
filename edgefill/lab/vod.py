"""A small VOD title on the lab's full origin, in HLS and in DASH (issue 14).

One CMAF encoding serves both formats, as a packager would lay it out::

    /premiere/master.m3u8            HLS master: 3 variant streams
    /premiere/manifest.mpd           DASH: SegmentTemplate, the same files
    /premiere/<rendition>/index.m3u8 HLS media playlist (EXT-X-MAP, EXT-X-KEY, segments)
    /premiere/<rendition>/init.mp4   init segment
    /premiere/<rendition>/seg-NNN.m4s media segments
    /premiere/keys/premiere.key      the AES-128 key: referenced, never to be copied

Segment bodies are generated (a few KiB each, different per rendition and number), so the
tree costs little memory and a copy's bytes are easy to check.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Final

from edgefill.lab.origin import LabOrigin

PREFIX: Final = "/premiere"
RENDITIONS: Final = (
    ("360p", 800_000, 4 * 1024),
    ("720p", 2_400_000, 8 * 1024),
    ("1080p", 6_000_000, 12 * 1024),
)
SEGMENTS: Final = 6
SEGMENT_SECONDS: Final = 4
HLS_TYPE: Final = "application/vnd.apple.mpegurl"
DASH_TYPE: Final = "application/dash+xml"


@dataclass(frozen=True, slots=True)
class VodObject:
    path: str  # decoded
    content_type: str
    size: int
    kind: str  # "manifest", "playlist", "init", "segment" or "key"


@dataclass(frozen=True)
class VodTree:
    """What ``seed`` put on the origin."""

    objects: tuple[VodObject, ...]

    @property
    def master(self) -> str:
        return f"{PREFIX}/master.m3u8"

    @property
    def mpd(self) -> str:
        return f"{PREFIX}/manifest.mpd"

    @property
    def key(self) -> str:
        return f"{PREFIX}/keys/premiere.key"

    @property
    def renditions(self) -> tuple[str, ...]:
        return tuple(name for name, _, _ in RENDITIONS)

    def of_kind(self, *kinds: str) -> list[str]:
        return [o.path for o in self.objects if o.kind in kinds]

    def hls_tree(self) -> list[str]:
        """Every object the HLS master brings (the key excluded): what expansion copies."""
        return [self.master, *self.of_kind("playlist", "init", "segment")]

    def playback(self, rendition: str) -> list[str]:
        """A player's requests, in order: master, media playlist, init, every segment."""
        base = f"{PREFIX}/{rendition}"
        segments = [f"{base}/seg-{n:03d}.m4s" for n in range(SEGMENTS)]
        return [self.master, f"{base}/index.m3u8", f"{base}/init.mp4", *segments]


def _bytes(label: str, size: int) -> bytes:
    block = hashlib.sha256(label.encode()).digest()
    return (block * (size // len(block) + 1))[:size]


def master_playlist() -> str:
    lines = ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-INDEPENDENT-SEGMENTS"]
    for name, bandwidth, _ in RENDITIONS:
        height = name.removesuffix("p")
        width = int(height) * 16 // 9
        lines.append(f"#EXT-X-STREAM-INF:BANDWIDTH={bandwidth},RESOLUTION={width}x{height}")
        lines.append(f"{name}/index.m3u8")
    return "\n".join(lines) + "\n"


def media_playlist() -> str:
    lines = [
        "#EXTM3U",
        "#EXT-X-VERSION:7",
        f"#EXT-X-TARGETDURATION:{SEGMENT_SECONDS}",
        "#EXT-X-PLAYLIST-TYPE:VOD",
        '#EXT-X-MAP:URI="init.mp4"',
        '#EXT-X-KEY:METHOD=AES-128,URI="../keys/premiere.key",IV=0x00000000000000000000000000000001',
    ]
    for number in range(SEGMENTS):
        lines += [f"#EXTINF:{SEGMENT_SECONDS}.000,", f"seg-{number:03d}.m4s"]
    lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def mpd() -> str:
    representations = "".join(
        f'<Representation id="{name}" bandwidth="{bandwidth}" codecs="avc1.64001f"/>'
        for name, bandwidth, _ in RENDITIONS
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" '
        'profiles="urn:mpeg:dash:profile:isoff-live:2011" '
        f'mediaPresentationDuration="PT{SEGMENTS * SEGMENT_SECONDS}S" minBufferTime="PT2S">'
        '<Period id="1"><AdaptationSet mimeType="video/mp4" segmentAlignment="true">'
        f'<SegmentTemplate timescale="1" duration="{SEGMENT_SECONDS}" startNumber="0" '
        'initialization="$RepresentationID$/init.mp4" '
        'media="$RepresentationID$/seg-$Number%03d$.m4s"/>'
        f"{representations}</AdaptationSet></Period></MPD>\n"
    )


def _files() -> list[tuple[str, bytes, str, str]]:
    """(path, bytes, content type, kind) of every object of the title."""
    files = [
        (f"{PREFIX}/master.m3u8", master_playlist().encode(), HLS_TYPE, "manifest"),
        (f"{PREFIX}/manifest.mpd", mpd().encode(), DASH_TYPE, "manifest"),
    ]
    for name, _, segment_bytes in RENDITIONS:
        base = f"{PREFIX}/{name}"
        files.append((f"{base}/index.m3u8", media_playlist().encode(), HLS_TYPE, "playlist"))
        files.append((f"{base}/init.mp4", _bytes(f"init {name}", 700), "video/mp4", "init"))
        for number in range(SEGMENTS):
            data = _bytes(f"{name} {number}", segment_bytes)
            files.append((f"{base}/seg-{number:03d}.m4s", data, "video/iso.segment", "segment"))
    key = (f"{PREFIX}/keys/premiere.key", _bytes("key", 16), "application/octet-stream", "key")
    return [*files, key]


def title() -> VodTree:
    """The title's layout (nothing is served)."""
    return VodTree(tuple(VodObject(p, t, len(data), kind) for p, data, t, kind in _files()))


def seed(origin: LabOrigin) -> VodTree:
    """Put the title on ``origin`` (both formats, 3 renditions, the key)."""
    for path, data, content_type, _ in _files():
        origin.put(path, data, content_type=content_type)
    return title()
