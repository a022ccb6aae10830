"""URI ↔ S3 key mapping for the regional bucket.

CloudFront asks the S3 origin for ``/<key>`` with the key percent-encoded; this module
is the one place that turns such a URI back into the key, so the backfill writes exactly
the object the next cache miss will ask for. Standard library only (the edge imports it).

Rules: the URI is percent-decoded exactly once (``%252e`` stays ``%2e`` in the key);
``.`` and ``..`` segments, NUL and control characters, empty keys, keys over 1024 UTF-8
bytes and keys under the reserved ``_edgefill/`` prefix are rejected. A key never leaves
the configured prefix and a URI never names another host.

One URI, one key, one origin resource: S3 reads a ``+`` in a request path as a space and
``%2F`` as ``/``, and decodes every escape, while an origin may read ``+``, ``%2F``,
``%5C`` or ``%3B`` apart from ``+``, ``/``, backslash or ``;``. A URI is therefore accepted only
in the canonical spelling of its key (``to_uri``), up to what RFC 3986 calls equivalent
(hex case, escaped unreserved characters) and HTTP clients normalize anyway; any other
spelling raises ``NonCanonicalUri``, so two accepted URIs share a key only when the origin
is asked for the same path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar, Final
from urllib.parse import quote, unquote

from shared.messages import CONTROL_CHARACTERS

# S3's limit on an object key.
MAX_KEY_BYTES: Final = 1024
# edgefill's own objects (leases) live here; CloudFront is denied reads of it and no
# message may name a key under it.
RESERVED_PREFIX: Final = "_edgefill/"
_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
# A "." or ".." segment, with "/" or backslash as the separator.
_DOT_SEGMENT = re.compile(r"(?:^|[/\\])\.\.?(?=[/\\]|$)")
# What a key's canonical URI path leaves unescaped: RFC 3986 pchar and "/", except "+"
# (S3 reads a raw "+" as a space, so "+" is always written %2B).
_SAFE_IN_PATH: Final = "/-._~!$&'(),;=:@*"
# An escaped "/" or backslash, in any hex case: S3 reads %2F as a separator, origins differ.
_ESCAPED_SEPARATOR = re.compile(r"%(?:2[Ff]|5[Cc])")
# A canonical URI holds only the characters above and "%" (only as an escape: checked
# first) ...
_NON_CANONICAL_CHARACTER = re.compile(r"[^A-Za-z0-9\-._~!$&'(),;=:@*/%]")
# ... and never escapes one that the canonical spelling writes raw: the sub-delimiters but
# "+", ":" (except before "//", see to_uri) and "@". Escaped unreserved characters are the
# same URI (RFC 3986 §6.2.2.2) and HTTP clients send them decoded, so they are accepted.
_ESCAPED_RAW_CHARACTER = re.compile(r"%(?:2[146789AaCc]|3[BbDd]|3[Aa](?!//)|40)")


class InvalidKey(ValueError):
    """A URI that cannot be mapped to an object key of the regional bucket.

    ``reason`` is the backfill's skip reason (its log field and metric dimension)."""

    reason: ClassVar[str] = "bad_key"


class NonCanonicalUri(InvalidKey):
    """A URI that S3 and the full origin could read as two different resources: a raw
    ``+``, an escaped ``/`` or backslash, or any spelling other than its key's canonical one."""

    reason: ClassVar[str] = "non_canonical"


def normalize_prefix(prefix: str) -> str:
    """``EDGEFILL_KEY_PREFIX`` as a key prefix: no leading ``/``, one trailing ``/``."""
    stripped = prefix.strip("/")
    if not stripped:
        return ""
    problem = _key_problem(stripped)
    if problem:
        raise InvalidKey(f"key prefix {prefix!r:.80} {problem}")
    if (stripped + "/").startswith(RESERVED_PREFIX):
        raise InvalidKey(f"key prefix {prefix!r:.80} is under the reserved {RESERVED_PREFIX!r}")
    return stripped + "/"


@dataclass(frozen=True, slots=True)
class ObjectKey:
    """An object key in the regional bucket, known to be safe."""

    key: str

    @classmethod
    def from_uri(cls, uri: str, prefix: str = "") -> ObjectKey:
        """Map a CloudFront URI (percent-encoded, starting with ``/``) to a key under prefix."""
        if not isinstance(uri, str):
            raise InvalidKey(f"uri must be a string, got {type(uri).__name__}")
        if not uri.startswith("/"):
            raise InvalidKey(f"uri must start with '/': {uri[:80]!r}")
        if uri.startswith("//") or "://" in uri:
            raise InvalidKey(f"uri must be a path, not a URL naming a host: {uri[:80]!r}")
        if "?" in uri or "#" in uri:
            raise InvalidKey("uri must not hold '?' or '#'; the query travels separately")
        if _ESCAPE.search(uri):
            raise InvalidKey("uri has a '%' that does not start a two-digit hex escape")
        try:
            decoded = unquote(uri[1:], encoding="utf-8", errors="strict")
        except UnicodeDecodeError:
            raise InvalidKey("uri percent-decodes to bytes that are not UTF-8") from None
        problem = _key_problem(decoded)
        if problem:
            raise InvalidKey(f"key {decoded[:80]!r} {problem}")
        if decoded.startswith(RESERVED_PREFIX):
            raise InvalidKey(f"key {decoded[:80]!r} is under the reserved {RESERVED_PREFIX!r}")
        _check_canonical(uri, decoded)
        key = normalize_prefix(prefix) + decoded
        size = len(key.encode("utf-8"))
        if size > MAX_KEY_BYTES:
            raise InvalidKey(f"key is {size} UTF-8 bytes; S3 allows at most {MAX_KEY_BYTES}")
        return cls(key)

    def to_uri(self, prefix: str = "") -> str:
        """The URI a viewer uses for this key (the inverse of ``from_uri``)."""
        head = normalize_prefix(prefix)
        if head and not self.key.startswith(head):
            raise InvalidKey(f"key {self.key[:80]!r} is not under prefix {head!r}")
        relative = self.key[len(head) :]
        if "\\" in relative:
            raise NonCanonicalUri(
                f"key {self.key[:80]!r} holds a '\\': no URI names it alike for S3 and origins"
            )
        return _canonical_uri(relative)

    def __str__(self) -> str:
        return self.key


def _canonical_uri(decoded: str) -> str:
    uri = "/" + quote(decoded, safe=_SAFE_IN_PATH)
    # from_uri refuses "://" (it reads like a URL naming a host): escape that colon so
    # every key still has a URI that maps back to it.
    return uri.replace("://", "%3A//")


def _check_canonical(uri: str, decoded: str) -> None:
    """Raise ``NonCanonicalUri`` unless ``uri`` is ``_canonical_uri(decoded)`` up to RFC 3986
    equivalence (hex case, escaped unreserved characters: what ``requests`` normalizes).

    Checked on the URI itself, in two regex scans, rather than by re-encoding the key:
    the edge runs this on every failover, and ``quote`` of a 1 KiB key costs tens of µs."""
    if "+" in uri:
        raise NonCanonicalUri(
            "uri holds a raw '+': S3 reads it as a space, the origin as a plus (write %2B)"
        )
    separator = _ESCAPED_SEPARATOR.search(uri)
    if separator:
        raise NonCanonicalUri(
            f"uri holds {separator.group(0)!r}, an escaped '/' or backslash: S3 reads %2F as "
            "a separator, origins read either one their own way"
        )
    if _NON_CANONICAL_CHARACTER.search(uri) or _ESCAPED_RAW_CHARACTER.search(uri):
        canonical = _canonical_uri(decoded)
        raise NonCanonicalUri(
            f"uri {uri[:80]!r} is not the canonical spelling of its key ({canonical[:80]!r}): "
            "S3 would serve both spellings from one key while the origin may not"
        )


def _key_problem(decoded: str) -> str | None:
    if not decoded:
        return "is empty"
    if CONTROL_CHARACTERS.search(decoded):
        return "holds a NUL or control character"
    # Backslashes count as separators too: some origins and tools treat them as "/".
    # (The substring tests skip the regex for the usual key, whose dots follow a name.)
    if ("/." in decoded or "\\." in decoded or decoded[0] == ".") and _DOT_SEGMENT.search(decoded):
        return "holds a '.' or '..' segment (path traversal)"
    if decoded.startswith("/"):
        return "starts with '/' (an empty first segment)"
    return None
