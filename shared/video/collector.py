"""The one path every candidate URI takes: resolve, map to a viewer path, check, count.

A parser (``hls.py``, ``dash.py``) hands each URI it finds to ``Collector.add`` with its
kind and base. The collector resolves it (RFC 3986, ``uris.py``), keeps it only when it
names one of our objects (``hosts.py``) under a URI that passes the key rules and the v1
message rules, de-duplicates, and enforces the budgets, whatever the manifest says:

- ``max_objects`` distinct objects;
- ``MAX_REFERENCE_BYTES`` of accepted paths and queries together: a 9 KB MPD whose
  8 KB ``BaseURL`` prefixes 20,000 templated segments would otherwise hold 160 MB of
  paths (and the messages made of them); the budget stops it at 8 MiB;
- one step per candidate URI out of ``STEPS_PER_OBJECT × max_objects`` (at least
  ``MIN_STEPS``), so candidates that are all refused or all the same still end the parse.

Past a budget ``add`` raises ``Full``: the parse stops, what was kept stands, and the
manifest says ``truncated`` with the budget that stopped it. At most ``MAX_IGNORED_KEPT``
ignored URIs are quoted (200 characters each); the rest are counted by reason, and a
reason's count key is the text before its first ": ", a fixed phrase.
"""

from __future__ import annotations

from collections import Counter
from typing import Final
from urllib.parse import quote

from shared.keys import InvalidKey, ObjectKey
from shared.messages import MessageError, check_reference
from shared.video.hosts import OUTSIDE_ORIGIN_PATH, OurHosts
from shared.video.model import Format, Ignored, Kind, Manifest, Reference, SkippedTag
from shared.video.uris import UriParts, resolve, split

DEFAULT_MAX_OBJECTS: Final = 20_000
STEPS_PER_OBJECT: Final = 10
MIN_STEPS: Final = 10_000
# 20,000 references of 400 bytes each; a manifest's own size bound (8 MiB) as well.
MAX_REFERENCE_BYTES: Final = 8 * 1024 * 1024
MAX_IGNORED_KEPT: Final = 50
# Distinct key URIs remembered per manifest (a real one names a handful).
MAX_KEYS_KEPT: Final = 10_000
# What CloudFront leaves unescaped in a path (and "%", which starts an existing escape).
_SAFE_IN_PATH: Final = "/-._~!$&'()*+,;=:@%"
_SAFE_IN_QUERY: Final = _SAFE_IN_PATH + "?"


class Full(Exception):
    """A budget is reached: the parse stops here."""


class Collector:
    """Resolves, checks and de-duplicates candidate URIs; counts what it ignores."""

    def __init__(
        self, uri: str, hosts: OurHosts, max_objects: int, prefix: str, query: str = ""
    ) -> None:
        self.hosts = hosts
        path = uri.split("?", 1)[0]
        # The manifest as a viewer fetched it: relative URIs resolve against it.
        self.base = UriParts("https", hosts.base_host, path, query or None)
        self.max_objects = max_objects
        self.steps_left = max(MIN_STEPS, STEPS_PER_OBJECT * max_objects)
        self.bytes_left = MAX_REFERENCE_BYTES
        self.prefix = prefix
        self.references: dict[tuple[str, str], Reference] = {}
        self.ignored: list[Ignored] = []
        self.reasons: Counter[str] = Counter()
        self.stopped: str | None = None
        self.skipped_tags: list[SkippedTag] = []
        # Viewer URIs the manifest names as keys: never returned, even named again as a
        # segment or a playlist.
        self.keys: set[tuple[str, str]] = set()
        self.variables: dict[str, str] = {}
        # (scheme, authority) → "viewer", "origin" or a reason: most URIs share the base's.
        self._places: dict[tuple[str | None, str | None], str] = {}

    def add(self, raw: str | None, kind: Kind, base: UriParts | None = None) -> None:
        """Resolve ``raw`` against ``base`` (default: the manifest) and keep it if it passes;
        raises ``Full`` when a budget is reached."""
        if raw is None:
            return
        self.step()
        if len(self.references) >= self.max_objects:
            self.stop(f"stopped at the object cap ({self.max_objects})")
        outcome = self.viewer_uri(raw, base or self.base)
        if isinstance(outcome, str):
            self.ignore(raw, outcome)
            return
        known = self.references.get(outcome)
        if known is not None:
            if kind == "segment" and known.kind == "init":
                # One file holding the init section and the segments (byte ranges of it)
                # is the media file: a segment.
                self.references[outcome] = Reference(known.path, kind, known.query)
            return
        path, query = outcome
        problem = self._key_problem(path, query)
        if problem is not None:
            self.ignore(raw, problem)
            return
        cost = len(path) + len(query)
        if cost > self.bytes_left:
            self.stop(f"stopped at the reference byte budget ({MAX_REFERENCE_BYTES} bytes)")
        self.bytes_left -= cost
        self.references[outcome] = Reference(path, kind, query)

    def step(self) -> None:
        """One unit of work (a candidate URI, a BaseURL alternative); raises ``Full`` when
        the step budget is spent."""
        self.steps_left -= 1
        if self.steps_left < 0:
            self.stop(f"stopped at the step budget ({STEPS_PER_OBJECT} URIs per object)")

    def stop(self, reason: str) -> None:
        self.stopped = reason
        raise Full(reason)

    def absolute(self, raw: str, base: UriParts) -> UriParts | str:
        """``raw`` resolved against ``base``, or why it is no URI of ours to resolve."""
        text = raw.strip().replace("\\", "/")
        # Players in browsers (the WHATWG URL rules) read "\\" as "/" in http(s) URLs, so
        # "\\\\other.host\\x" names another host there: resolve it as they do.
        if not text:
            return "empty URI"
        if text[:5].lower() == "data:":
            return "data URI"
        return resolve(base, split(text))

    def is_ours(self, target: UriParts) -> bool:
        """True when ``target`` names an object on one of our hosts (a DASH BaseURL)."""
        place = self._place(target)
        return place in ("viewer", "origin") and self.hosts.path_at(place, target.path) is not None

    def viewer_uri(self, raw: str, base: UriParts) -> tuple[str, str] | str:
        """(path, query) of ``raw`` as a viewer asks the distribution for it, percent-
        encoded as CloudFront passes a URI; or the reason it is ignored."""
        target = self.absolute(raw, base)
        if isinstance(target, str):
            return target
        place = self._place(target)
        if place not in ("viewer", "origin"):
            return place
        path = self.hosts.path_at(place, target.path)
        if path is None:
            return OUTSIDE_ORIGIN_PATH
        try:
            return quote(path, safe=_SAFE_IN_PATH), quote(target.query or "", safe=_SAFE_IN_QUERY)
        except UnicodeError:  # a lone surrogate cannot name an object
            return "malformed URI"

    def _place(self, target: UriParts) -> str:
        where = (target.scheme, target.authority)
        place = self._places.get(where)
        if place is None:
            place = self.hosts.place(target.scheme, target.authority)
            if len(self._places) < 1024:
                self._places[where] = place
        return place

    def _key_problem(self, path: str, query: str) -> str | None:
        try:
            ObjectKey.from_uri(path, self.prefix)
        except InvalidKey as error:  # the reason a viewer's URI would be skipped for
            return f"key rules ({error.reason}): {str(error)[:200]}"
        try:
            check_reference(path, query)
        except MessageError as error:
            return f"key rules (message {error.field}): {error.reason[:200]}"
        return None

    def key(self, raw: str, reason: str) -> None:
        """A key URI: ignored, and remembered so that no reference may name it."""
        outcome = self.viewer_uri(raw, self.base)
        if not isinstance(outcome, str) and len(self.keys) < MAX_KEYS_KEPT:
            self.keys.add(outcome)
        self.ignore(raw, reason)

    def ignore(self, raw: str, reason: str) -> None:
        self.reasons[reason.split(": ", 1)[0]] += 1
        if len(self.ignored) < MAX_IGNORED_KEPT:
            self.ignored.append(Ignored(raw[:200], reason))

    def result(self, kind: Format) -> Manifest:
        references = tuple(self.references.values())
        if self.keys:
            kept = tuple(r for r in references if (r.path, r.query) not in self.keys)
            for _ in range(len(references) - len(kept)):
                self.ignore("(a key URI)", "named as an encryption key too")
            references = kept
        return Manifest(
            kind,
            references=references,
            ignored=tuple(self.ignored),
            ignored_reasons=dict(self.reasons),
            truncated=self.stopped is not None,
            reason=self.stopped,
            skipped_tags=tuple(self.skipped_tags),
            variables=tuple(self.variables.items()),
        )
