"""URI ↔ S3 key mapping for the regional bucket.

CloudFront asks the S3 origin for ``/<key>`` with the key percent-encoded; this module
is the one place that turns such a URI back into the key, so the backfill writes exactly
the object the next cache miss will ask for. Standard library only (the edge imports it).

Rules: the URI is percent-decoded exactly once (``%252e`` stays ``%2e`` in the key);
``.`` and ``..`` segments, NUL and control characters, empty keys, keys over 1024 UTF-8
bytes and keys under the reserved ``_edgefill/`` prefix are rejected. A key never leaves
the configured prefix and a URI never names another host.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final
from urllib.parse import quote, unquote

from shared.messages import CONTROL_CHARACTERS

# S3's limit on an object key.
MAX_KEY_BYTES: Final = 1024
# edgefill's own objects (leases) live here; CloudFront is denied reads of it and no
# message may name a key under it.
RESERVED_PREFIX: Final = "_edgefill/"
_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
# What S3 (and CloudFront) leave unescaped in a key's URI path.
_SAFE_IN_PATH: Final = "/-._~!$&'()*+,;=:@"


class InvalidKey(ValueError):
    """A URI that cannot be mapped to an object key of the regional bucket."""


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
        uri = "/" + quote(self.key[len(head) :], safe=_SAFE_IN_PATH)
        # from_uri refuses "://" (it reads like a URL naming a host): escape that colon so
        # every key still has a URI that maps back to it.
        return uri.replace("://", "%3A//")

    def __str__(self) -> str:
        return self.key


def _key_problem(decoded: str) -> str | None:
    if not decoded:
        return "is empty"
    if CONTROL_CHARACTERS.search(decoded):
        return "holds a NUL or control character"
    # Backslashes count as separators too: some origins and tools treat them as "/".
    segments = re.split(r"[/\\]", decoded)
    if any(segment in (".", "..") for segment in segments):
        return "holds a '.' or '..' segment (path traversal)"
    if decoded.startswith("/"):
        return "starts with '/' (an empty first segment)"
    return None
