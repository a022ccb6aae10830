"""What the origin says about storing: may this response become the bucket's copy?

The bucket is a shared cache that nothing corrects: the first copy of a key is what every
viewer gets from then on. So a response is stored only when the origin meant it for
everyone and S3 can serve it as the origin did. ``decide(status, headers)`` is pure (no
I/O, no clock) and never raises: every header value, however malformed, ends in either

- ``Refusal(reason, detail, directive)``: never stored; permanent (the same response
  would be refused again). ``reason`` is the log line's ``reason`` and the metric
  dimension:
  - ``redirect``: a 3xx. Its target is never fetched: the key must hold the resource the
    URI names, and a redirect must not carry a copy past the include/exclude filters.
  - ``uncacheable``: the origin forbids a shared cache to keep it: Cache-Control
    ``private``, ``no-store``, ``no-cache``, ``s-maxage=0``, ``max-age=0`` without a
    positive ``s-maxage``; ``Pragma: no-cache`` without Cache-Control; ``Vary: *`` or a
    Vary naming Cookie or Authorization; ``Set-Cookie`` or ``Set-Cookie2``.
  - ``unstorable_header``: active content (HTML, XHTML, SVG, XML) whose
    Content-Security-Policy S3 could not serve with it.
  - ``bad_header``: a Content-Length that is not a number (non-ASCII digits included).
- ``Storable(attributes, dropped)``: what S3 keeps (representation headers, validators as
  metadata) and every other header the copy loses, named with why.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Final, NamedTuple

from shared.object_store import ObjectAttributes
from shared.origin import declared_length
from shared.redact import redact_url

# Media types a browser runs (scripts, frames, forms): their CSP is part of the content.
ACTIVE_TYPES: Final = frozenset(
    {"text/html", "application/xhtml+xml", "image/svg+xml", "text/xml", "application/xml"}
)
_CSP_HEADERS: Final = ("content-security-policy", "content-security-policy-report-only")
# The representation headers S3 stores and serves back, by lower-case name.
_KEPT: Final = {
    "content-type": "content_type",
    "cache-control": "cache_control",
    "content-disposition": "content_disposition",
    "content-language": "content_language",
    "content-encoding": "content_encoding",
}
# The validators kept as user metadata (CloudFront shows them as x-amz-meta-*).
_METADATA: Final = {"etag": "origin-etag", "last-modified": "origin-last-modified"}
# Headers about the connection, the framing or this one response, not the representation:
# losing them loses nothing, so they are not named (Content-MD5 is checked, not kept).
_NOT_CARRIED: Final = frozenset(
    {
        "connection",
        "keep-alive",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
        "proxy-connection",
        "content-length",
        "content-range",
        "content-md5",
        "accept-ranges",
        "date",
        "age",
        "via",
        "server",
        "alt-svc",
        "x-cache",
    }
)
# S3's and CloudFront's own response headers (request ids, encryption, version, POP),
# except user metadata, which is the origin's content and is named when dropped.
_AWS_PREFIX: Final = "x-amz-"
_AWS_METADATA_PREFIX: Final = "x-amz-meta-"
# S3 refuses larger user metadata (2 KB in all) and larger header values are suspicious.
MAX_VALUE: Final = 2048
MAX_METADATA_VALUE: Final = 512
_DELTA_SECONDS = re.compile(r"[0-9]+")
# One element of a comma-separated list, a quoted string kept whole.
_LIST_ELEMENT = re.compile(r'(?:[^,"]|"(?:[^"\\]|\\.)*"?)+')
# An entity tag (RFC 9110 §8.8.3): optional W/, then a quoted string of visible bytes.
_ENTITY_TAG = re.compile(r'(?:W/)?"[\x21\x23-\x7e]*"')
_REDIRECTS: Final = range(300, 400)


@dataclass(frozen=True, slots=True)
class Refusal:
    """The response must not be stored; ``directive`` names the header that decided."""

    reason: str
    detail: str
    directive: str | None = None


class DroppedHeader(NamedTuple):
    """A header the copy does not carry, and why."""

    name: str
    why: str


@dataclass(frozen=True, slots=True)
class Storable:
    """The response may be stored: with these attributes, without these headers."""

    attributes: ObjectAttributes
    dropped: tuple[DroppedHeader, ...] = field(default=())


def decide(status: int, headers: Mapping[str, str]) -> Storable | Refusal:
    """Whether a response of ``status`` with ``headers`` may become the shared copy."""
    fields = _lower(headers)
    if status in _REDIRECTS:
        location = fields.get("location")
        target = (
            f" to {redact_url(location, keep_query_names=False)[:300]}"
            if location
            else " without a Location"
        )
        return Refusal("redirect", f"origin answered {status}{target}", f"HTTP {status}")
    if status != 200:
        return Refusal("origin", f"origin answered {status}", f"HTTP {status}")
    refusal = _bad_length(fields) or uncacheable(fields) or _unstorable(fields)
    if refusal is not None:
        return refusal
    return _storable(fields)


def uncacheable(fields: Mapping[str, str]) -> Refusal | None:
    """The do-not-store signal in lower-cased ``fields``, or None."""
    directive = _cache_control_refusal(fields) or _vary_refusal(fields)
    if directive is None:
        for name in ("set-cookie", "set-cookie2"):
            if name in fields:
                directive = {"set-cookie": "Set-Cookie", "set-cookie2": "Set-Cookie2"}[name]
                break
    if directive is None:
        return None
    return Refusal("uncacheable", f"{directive}: the origin forbids a shared copy", directive)


def http_date(value: str) -> datetime | None:
    """An HTTP date as an aware UTC datetime, or None when it is not one or falls outside
    what datetime (and so S3's client) can represent."""
    try:
        when = parsedate_to_datetime(value)
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return when.astimezone(UTC)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    fields: dict[str, str] = {}
    for name, value in headers.items():
        key = name.lower()
        fields[key] = f"{fields[key]}, {value}" if key in fields else value
    return fields


def _list(value: str) -> list[str]:
    return [element.strip() for element in _LIST_ELEMENT.findall(value) if element.strip()]


def _directives(value: str) -> list[tuple[str, str | None]]:
    parsed = []
    for element in _list(value):
        name, equals, argument = element.partition("=")
        text = argument.strip().strip('"') if equals else None
        parsed.append((name.strip().lower(), text))
    return parsed


def _cache_control_refusal(fields: Mapping[str, str]) -> str | None:
    cache_control = fields.get("cache-control")
    if cache_control is None:
        pragma = {token.lower() for token in _list(fields.get("pragma", ""))}
        return "Pragma: no-cache" if "no-cache" in pragma else None
    directives = _directives(cache_control)
    names = [name for name, _ in directives]
    for forbidden in ("private", "no-store", "no-cache"):
        if forbidden in names:
            return f"Cache-Control: {forbidden}"
    # The first occurrence counts; an invalid value is the most restrictive (stale).
    ages = {name: _seconds(argument) for name, argument in reversed(directives)}
    if "s-maxage" in ages:
        return None if ages["s-maxage"] else "Cache-Control: s-maxage=0"
    if "max-age" in ages and not ages["max-age"]:
        return "Cache-Control: max-age=0"
    return None


def _seconds(argument: str | None) -> int:
    if argument is None or not _DELTA_SECONDS.fullmatch(argument):
        return 0
    # RFC 9111 §1.2.2: a delta too large to represent means 2^31 seconds.
    return int(argument) if len(argument) <= 10 else 2**31


def _vary_refusal(fields: Mapping[str, str]) -> str | None:
    for token in _list(fields.get("vary", "")):
        lowered = token.lower()
        if lowered == "*":
            return "Vary: *"
        if lowered in ("cookie", "authorization"):
            return f"Vary: {token[:40]}"
    return None


def _bad_length(fields: Mapping[str, str]) -> Refusal | None:
    try:
        declared_length(fields.get("content-length"))
    except ValueError as error:
        return Refusal("bad_header", str(error), "Content-Length")
    return None


def _unstorable(fields: Mapping[str, str]) -> Refusal | None:
    media_type = fields.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type not in ACTIVE_TYPES:
        return None
    for name in _CSP_HEADERS:
        if name in fields:
            header = "Content-Security-Policy" + ("-Report-Only" if "report" in name else "")
            return Refusal(
                "unstorable_header",
                f"{media_type} with {header}: S3 would serve it without its policy",
                header,
            )
    return None


def _usable(value: str, limit: int) -> str | None:
    """Why ``value`` cannot go into S3 as it is, or None when it can."""
    if not value.isascii() or not value.isprintable():
        return "not printable ASCII"
    if len(value) > limit:
        return f"longer than {limit} characters"
    return None


def _storable(fields: Mapping[str, str]) -> Storable:
    kept: dict[str, str] = {}
    metadata: dict[str, str] = {}
    expires: datetime | None = None
    dropped: list[DroppedHeader] = []
    for name, value in fields.items():
        if name in _KEPT or name == "expires" or name in _METADATA:
            limit = MAX_METADATA_VALUE if name in _METADATA else MAX_VALUE
            problem = _usable(value, limit) or _invalid(name, value)
            if problem is not None:
                dropped.append(DroppedHeader(_display(name), problem))
            elif name == "expires":
                expires = http_date(value)
            elif name in _METADATA:
                metadata[_METADATA[name]] = value
            else:
                kept[_KEPT[name]] = value
        elif _named_when_dropped(name):
            dropped.append(DroppedHeader(_display(name), "S3 does not store it"))
    attributes = ObjectAttributes(
        content_type=kept.get("content_type"),
        cache_control=kept.get("cache_control"),
        content_disposition=kept.get("content_disposition"),
        content_language=kept.get("content_language"),
        content_encoding=kept.get("content_encoding"),
        expires=expires,
        metadata=metadata,
    )
    return Storable(attributes, tuple(dropped))


def _invalid(name: str, value: str) -> str | None:
    if name in ("expires", "last-modified") and http_date(value) is None:
        return "not an HTTP date (or out of range)"
    if name == "etag" and not _ENTITY_TAG.fullmatch(value.strip()):
        return "not an entity tag"
    return None


def _named_when_dropped(name: str) -> bool:
    if name in _NOT_CARRIED:
        return False
    return not name.startswith(_AWS_PREFIX) or name.startswith(_AWS_METADATA_PREFIX)


def _display(name: str) -> str:
    """A header name as logs show it (``content-security-policy`` → ``Content-Security-
    Policy``), cut so a hostile name cannot flood the line."""
    return "-".join(part[:1].upper() + part[1:] for part in name.split("-"))[:80]
