"""Which absolute URIs are ours: the viewer hosts of the distribution, and the full origin.

A manifest may name its objects with absolute URIs. One counts only when a viewer asking
the distribution for it would reach the same object:
- on a **viewer host** (the distribution domain, an alias, the viewer host; ``http`` or
  ``https``): its path is the viewer path. An entry ``host`` matches the scheme's default
  port (``https://h:443/`` is ``https://h/``, RFC 3986 §6.2.3), ``host:port`` that port
  only, and a wildcard alias ``*.example.com`` one more label (``a.example.com``, not
  ``example.com`` nor ``a.b.example.com``: what a wildcard certificate covers);
- on the **full origin** (``EDGEFILL_ORIGIN_URL``: same scheme, host and port) under its
  configured path: the viewer path is what follows that path (``https://origin/vod`` +
  ``/vod/a/b.ts`` is ``/a/b.ts``). Elsewhere on the origin nothing maps to a viewer path.

Anything else — another host, credentials, another scheme — is foreign, and foreign
objects are never fetched, copied or warmed. Host names are compared as ASCII, case-
insensitively, never decoded (``cdn%2Eexample.com`` is not ``cdn.example.com``): a
spelling that could be read two ways is foreign.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from shared.video.uris import UriParts, split

_DEFAULT_PORTS = {"http": 80, "https": 443}
OUTSIDE_ORIGIN_PATH = "on the full origin, outside EDGEFILL_ORIGIN_URL's path"


@dataclass(frozen=True, slots=True)
class _Authority:
    host: str  # lower case; an IP literal keeps its brackets
    port: int  # the scheme's default when the URI names none


def _authority(scheme: str, text: str) -> _Authority | str:
    """``host[:port]`` of an http(s) authority, or why it is not one of ours."""
    if "@" in text:
        return "URI carries credentials"
    if text.startswith("["):
        host, bracket, rest = text.partition("]")
        host += bracket
        if not bracket or (rest and not rest.startswith(":")):
            return "malformed URI"
        port_text = rest[1:]
    else:
        host, _, port_text = text.partition(":")
    if port_text and (not port_text.isascii() or not port_text.isdigit() or len(port_text) > 5):
        return "malformed URI"
    port = int(port_text) if port_text else _DEFAULT_PORTS[scheme]
    if not host or port > 65535:
        return "malformed URI"
    return _Authority(host.lower(), port)


@dataclass(frozen=True, slots=True)
class _Entry:
    host: str  # lower case, or "*.domain" for a wildcard alias
    port: int | None  # None: the scheme's default port

    def matches(self, authority: _Authority, scheme: str) -> bool:
        wanted = _DEFAULT_PORTS[scheme] if self.port is None else self.port
        if authority.port != wanted:
            return False
        if self.host.startswith("*."):
            label, dot, rest = authority.host.partition(".")
            return bool(label) and bool(dot) and rest == self.host[2:]
        return authority.host == self.host


def _entry(text: str) -> _Entry:
    host, _, port = text.strip().lower().partition(":")
    return _Entry(host, int(port) if port.isdigit() else None)


@dataclass(frozen=True)
class OurHosts:
    """The hosts whose URIs name our objects. ``viewer``: host names (``host``,
    ``host:port`` or ``*.domain``); the first that is not a wildcard is where relative
    URIs of a manifest resolve. ``origin``: the full origin's URL, with its path prefix."""

    viewer: tuple[str, ...] = ()
    origin: str | None = None
    _entries: tuple[_Entry, ...] = field(init=False, repr=False, compare=False)
    _origin: tuple[str, _Authority, str] | None = field(init=False, repr=False, compare=False)
    _base_host: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        origin = None
        if self.origin:
            parts = split(self.origin)
            scheme = (parts.scheme or "").lower()
            if scheme in _DEFAULT_PORTS and parts.authority is not None:
                authority = _authority(scheme, parts.authority)
                if isinstance(authority, _Authority):
                    origin = (scheme, authority, parts.path.rstrip("/"))
        entries = [_entry(host) for host in self.viewer if host and host.strip()]
        base = next((e for e in entries if not e.host.startswith("*.")), None)
        if base is None:
            # No viewer host: relative URIs resolve on a host no manifest can name (a
            # random one, per parse), so only they count.
            base = _Entry(f"unknown-{secrets.token_hex(8)}.invalid", None)
            entries.append(base)
        object.__setattr__(self, "_entries", tuple(entries))
        object.__setattr__(self, "_origin", origin)
        port = "" if base.port is None else f":{base.port}"
        object.__setattr__(self, "_base_host", base.host + port)

    @classmethod
    def of(cls, *hosts: str | None, origin: str | None = None) -> OurHosts:
        """Our hosts from the names given (None and duplicates left out). A name that is
        the full origin's own host is left out too: it is matched as the origin, under
        its path (messages queued before issue 21 carry the origin's Host)."""
        origin_host = None
        if origin:
            authority = split(origin).authority or ""
            origin_host = authority.rpartition("@")[2].partition(":")[0].lower() or None
        names: list[str] = []
        for host in hosts:
            name = (host or "").strip().lower()
            if name and name not in names and name.partition(":")[0] != origin_host:
                names.append(name)
        return cls(tuple(names), origin)

    @property
    def base_host(self) -> str:
        """The host relative URIs of a manifest resolve on (``host`` or ``host:port``)."""
        return self._base_host

    def place(self, scheme: str | None, authority: str | None) -> str:
        """``"viewer"`` or ``"origin"`` for an absolute URI's scheme and authority, else the
        reason it names none of our objects."""
        scheme = (scheme or "").lower()
        if scheme not in _DEFAULT_PORTS:
            return "scheme is not http(s)"
        if authority is None:
            return "malformed URI"
        parsed = _authority(scheme, authority)
        if isinstance(parsed, str):
            return parsed
        if self._origin is not None and (scheme, parsed) == self._origin[:2]:
            return "origin"
        if any(entry.matches(parsed, scheme) for entry in self._entries):
            return "viewer"
        return "another host"

    def path_at(self, place: str, path: str) -> str | None:
        """The viewer path of ``path`` at a ``place`` (``viewer`` or ``origin``); None when
        the origin's path is not under EDGEFILL_ORIGIN_URL's."""
        if place == "viewer" or self._origin is None or not self._origin[2]:
            return path or "/"
        prefix = self._origin[2]
        return path[len(prefix) :] if path.startswith(prefix + "/") else None

    def viewer_path(self, target: UriParts) -> tuple[str, str] | str:
        """(path, query) a viewer asks the distribution for to get ``target`` (an absolute
        URI), or the reason it is not one of ours."""
        place = self.place(target.scheme, target.authority)
        if place not in ("viewer", "origin"):
            return place
        path = self.path_at(place, target.path)
        if path is None:
            return OUTSIDE_ORIGIN_PATH
        return path, target.query or ""

    def is_ours(self, target: UriParts) -> bool:
        """True when ``target`` names an object a viewer reaches on the distribution."""
        return not isinstance(self.viewer_path(target), str)
