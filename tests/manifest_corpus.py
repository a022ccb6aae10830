"""The manifest corpus (``tests/fixtures/manifests/``): each real manifest, the URI and
hosts it is read with, and the objects it is expected to name (SOURCES.md says how)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from shared.manifests import OurHosts

CORPUS: Final = Path(__file__).parent / "fixtures" / "manifests"
# The distribution's viewer hosts for every corpus manifest (the first is where each is
# served from); a manifest's ``@hosts`` adds to them.
CORPUS_HOSTS: Final = ("cdn.example.com", "media.example.com", "www.x.com")
_RANGE = re.compile(r"\{(\d+)\.\.(\d+)\}")


@dataclass(frozen=True)
class CorpusCase:
    """One corpus manifest and what it must name."""

    path: Path
    uri: str  # with its query, as a viewer asks for it
    hosts: tuple[str, ...]
    origin: str | None
    variables: dict[str, str] | None
    objects: list[tuple[str, str]] = field(default_factory=list)  # (kind, uri)
    not_expanded: str | None = None  # the reason's start, when it is not expanded

    @property
    def name(self) -> str:
        return f"{self.path.parent.name}/{self.path.name}"

    @property
    def content_type(self) -> str:
        return "application/dash+xml" if self.path.suffix == ".mpd" else HLS_TYPE

    def our_hosts(self) -> OurHosts:
        return OurHosts.of(*self.hosts, origin=self.origin)


HLS_TYPE: Final = "application/vnd.apple.mpegurl"


def corpus_cases() -> list[CorpusCase]:
    """Every manifest of the corpus with its expectation."""
    manifests = sorted([*CORPUS.glob("hls/*.m3u8"), *CORPUS.glob("dash/*.mpd")])
    return [load_case(path) for path in manifests]


def load_case(path: Path) -> CorpusCase:
    """``path`` and its ``<file>.expected``."""
    hosts = list(CORPUS_HOSTS)
    uri = f"/corpus/{path.parent.name}/{path.name}"
    origin = None
    variables = None
    objects: list[tuple[str, str]] = []
    not_expanded = None
    for line in path.with_name(path.name + ".expected").read_text(encoding="utf-8").splitlines():
        word, _, rest = line.partition(" ")
        if not line or line.startswith("#"):
            continue
        if word == "@hosts":
            hosts += rest.split()
        elif word == "@origin":
            origin = rest.strip()
        elif word == "@uri":
            uri = rest.strip()
        elif word == "@variables":
            variables = json.loads(rest)
        elif word == "!":
            not_expanded = rest.strip()
        else:
            objects += [(word, expanded) for expanded in _ranges(rest.strip())]
    return CorpusCase(path, uri, tuple(hosts), origin, variables, objects, not_expanded)


def _ranges(text: str) -> list[str]:
    """``seg-{1..3}.ts`` as ``seg-1.ts``, ``seg-2.ts``, ``seg-3.ts`` (``{01..03}`` keeps
    the width)."""
    match = _RANGE.search(text)
    if match is None:
        return [text]
    first, last = match.groups()
    width = len(first) if first.startswith("0") else 0
    head, tail = text[: match.start()], text[match.end() :]
    return [f"{head}{number:0{width}d}{tail}" for number in range(int(first), int(last) + 1)]
