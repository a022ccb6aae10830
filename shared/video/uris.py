"""RFC 3986 reference resolution: how every URI a manifest names becomes absolute.

One resolver for both formats (HLS URI lines and attributes, every DASH ``BaseURL`` level
and template): ``split`` is the regular expression of RFC 3986 Appendix B, ``resolve`` the
algorithm of §5.2.2 (with §5.2.3 ``merge`` and §5.2.4 ``remove_dot_segments``), and
``UriParts.text`` the recomposition of §5.3. Unlike ``urllib.parse.urljoin`` it keeps
empty segments (``.//entire6.ts`` against ``/v/index.m3u8`` is ``/v//entire6.ts``, the
object a player asks for) and treats ``.``/``..`` exactly as the RFC does.

Two reading choices, both those of browsers' players (the WHATWG URL rules), both allowed
by the RFC:
- §5.2.2 "non-strict": a reference whose scheme is the base's (``https:seg.ts`` against an
  https base) resolves as a relative reference.
- A ``scheme:`` prefix that is not RFC 3986 §3.1 scheme syntax (``my file:1.ts``) is no
  scheme: the whole text is a relative reference.

The fragment is dropped: it is never sent to a server, so it names no other object.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# RFC 3986 Appendix B; it matches every string.
_REFERENCE = re.compile(r"(?:([^:/?#]+):)?(?://([^/?#]*))?([^?#]*)(?:\?([^#]*))?(?:#.*)?", re.S)
_RELATIVE = re.compile(r"(?://([^/?#]*))?([^?#]*)(?:\?([^#]*))?(?:#.*)?", re.S)
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*")


@dataclass(frozen=True, slots=True)
class UriParts:
    """A URI reference's components; None is "undefined" in RFC 3986's sense."""

    scheme: str | None
    authority: str | None
    path: str
    query: str | None

    def text(self) -> str:
        """The reference recomposed (RFC 3986 §5.3), without a fragment."""
        out = f"{self.scheme}:" if self.scheme is not None else ""
        if self.authority is not None:
            out += f"//{self.authority}"
        out += self.path
        return out if self.query is None else f"{out}?{self.query}"


def split(text: str) -> UriParts:
    """The components of a URI reference (RFC 3986 Appendix B)."""
    match = _REFERENCE.fullmatch(text)
    assert match is not None  # the expression matches every string
    scheme = match.group(1)
    if scheme is not None and not _SCHEME.fullmatch(scheme):
        relative = _RELATIVE.fullmatch(text)
        assert relative is not None
        return UriParts(None, relative.group(1), relative.group(2), relative.group(3))
    return UriParts(scheme, match.group(2), match.group(3), match.group(4))


def resolve(base: UriParts, reference: UriParts) -> UriParts:
    """The target URI of ``reference`` against the absolute ``base`` (RFC 3986 §5.2.2)."""
    scheme = reference.scheme
    if scheme is not None and base.scheme is not None and scheme.lower() == base.scheme.lower():
        scheme = None  # the non-strict reading of §5.2.2, as browsers' players resolve
    if scheme is not None:
        return UriParts(
            scheme, reference.authority, remove_dot_segments(reference.path), reference.query
        )
    if reference.authority is not None:
        return UriParts(
            base.scheme, reference.authority, remove_dot_segments(reference.path), reference.query
        )
    if not reference.path:
        query = reference.query if reference.query is not None else base.query
        return UriParts(base.scheme, base.authority, base.path, query)
    if reference.path.startswith("/"):
        path = remove_dot_segments(reference.path)
    else:
        path = remove_dot_segments(_merge(base, reference.path))
    return UriParts(base.scheme, base.authority, path, reference.query)


def _merge(base: UriParts, path: str) -> str:
    """RFC 3986 §5.2.3."""
    if base.authority is not None and not base.path:
        return "/" + path
    return base.path[: base.path.rfind("/") + 1] + path


def remove_dot_segments(path: str) -> str:
    """RFC 3986 §5.2.4, in one pass over the input (linear in its length)."""
    if "/." not in path and not path.startswith("."):
        return path  # a dot segment starts the path or follows a "/"
    output: list[str] = []  # segments, each with its leading "/" when it had one
    position, end = 0, len(path)
    while position < end:
        if path.startswith("../", position):  # A
            position += 3
        elif path.startswith(("./", "/./"), position):  # A; B (leaves the "/")
            position += 2
        elif path.startswith("/.", position) and position + 2 == end:  # B, at the end
            output.append("/")
            break
        elif path.startswith("/../", position):  # C
            position += 3
            if output:
                output.pop()
        elif path.startswith("/..", position) and position + 3 == end:  # C, at the end
            if output:
                output.pop()
            output.append("/")
            break
        elif path[position:] in (".", ".."):  # D
            break
        else:  # E: the first segment, with its "/", moves to the output
            following = path.find("/", position + 1)
            following = end if following < 0 else following
            output.append(path[position:following])
            position = following
    return "".join(output)
