"""What a parse returns: the references, what was ignored and why, and how far to go on."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal

Kind = Literal["playlist", "init", "segment"]
Format = Literal["hls", "dash"]

# Long VOD playlists run to a couple of MB (10 hours of 2 s segments is ~2 MB); a body
# this big is already read into the worker's memory, and parsing is linear in it.
MAX_MANIFEST_BYTES: Final = 8 * 1024 * 1024

# Expansion depth (issue 19): levels below the first manifest an expansion reaches. A
# valid HLS tree is two levels deep (master → media playlists → segments), a DASH one
# level; a manifest is read for its references only above this depth.
MAX_EXPAND_DEPTH: Final = 2


@dataclass(frozen=True, slots=True)
class Reference:
    """One object a manifest names: its CloudFront URI path, its query and its kind.
    ``init`` covers the objects a player reads before the media: initialization segments,
    DASH index segments (``RepresentationIndex``, ``SegmentTemplate@index``) and bitstream
    switching segments."""

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


@dataclass(frozen=True, slots=True)
class SkippedTag:
    """An HLS tag the ``m3u8`` package could not parse: read by the line scanner instead."""

    line: int  # 1-based, counted as the playlist's lines after its leading blank ones
    tag: str  # the tag's name, such as "EXT-X-STREAM-INF", cut to 40 characters
    error: str  # what m3u8 raised, cut to 120 characters

    def as_log(self) -> dict[str, object]:
        return {"line": self.line, "tag": self.tag, "error": self.error}


@dataclass(frozen=True, slots=True)
class Child:
    """A reference as an expansion carries it on: its depth below the first manifest and,
    for a playlist, whether it is read for references in turn and the variables it may
    ``IMPORT`` (its multivariant playlist's ``EXT-X-DEFINE`` ones)."""

    reference: Reference
    depth: int
    expands: bool
    variables: tuple[tuple[str, str], ...] = ()


def expands_at(depth: int) -> bool:
    """True when a manifest reached at ``depth`` is read for its references."""
    return depth < MAX_EXPAND_DEPTH


@dataclass(frozen=True)
class Manifest:
    """The outcome of one parse. ``expanded`` is False when the manifest was not read for
    references at all (not a manifest, live, malformed, too big, an undefined variable);
    ``reason`` says why. ``skipped_tags``: HLS tags read by the line scanner instead of
    ``m3u8``. ``variables``: the playlist's own ``EXT-X-DEFINE`` variables."""

    format: Format | None
    references: tuple[Reference, ...] = ()
    ignored: tuple[Ignored, ...] = ()
    ignored_reasons: dict[str, int] = field(default_factory=dict)
    expanded: bool = True
    reason: str | None = None
    truncated: bool = False
    skipped_tags: tuple[SkippedTag, ...] = ()
    variables: tuple[tuple[str, str], ...] = ()

    def count(self, kind: Kind) -> int:
        return sum(1 for reference in self.references if reference.kind == kind)

    def children(self, depth: int) -> list[Child]:
        """The references as children of this manifest read at ``depth``: a playlist one
        level deeper (read in turn while ``expands_at`` its depth, with this playlist's
        variables to import), anything else at ``MAX_EXPAND_DEPTH``, never read: only
        manifests referenced as playlists are expanded (issue 19)."""
        below = min(depth + 1, MAX_EXPAND_DEPTH)
        out = []
        for reference in self.references:
            if reference.kind == "playlist":
                child = Child(reference, below, expands_at(below), self.variables)
            else:
                child = Child(reference, MAX_EXPAND_DEPTH, False)
            out.append(child)
        return out
