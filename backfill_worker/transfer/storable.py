"""What the origin says about storing: may this response become the bucket's copy?

The bucket is a shared cache that nothing corrects: the first copy of a key is what every
viewer gets from then on. So a response is stored only when the origin meant it for
everyone, for a while, and S3 can serve it as the origin did. ``decide(status, headers,
received_at)`` is pure (no I/O; the receipt time is an argument) and never raises: every
header value, however malformed, ends in either

- ``Refusal(reason, detail, directive, rule)``: never stored; permanent (the same
  response would be refused again). ``reason`` is the log line's ``reason`` and the
  metric dimension, ``directive`` the header field that decided, ``rule`` the rule (an
  RFC section, or edgefill's own rule):
  - ``redirect``: a 3xx. Its target is never fetched: the key must hold the resource the
    URI names, and a redirect must not carry a copy past the include/exclude filters.
  - ``uncacheable``: a shared cache may not keep it, or not for any time (RFC 9111):
    Cache-Control ``private`` (§5.2.2.7), ``no-store`` (§5.2.2.5), ``no-cache``
    (§5.2.2.4: the bucket cannot revalidate each request), qualified forms included;
    ``Pragma: no-cache`` without Cache-Control (§5.4); stale on arrival (§4.2): a
    freshness lifetime of 0 (``s-maxage=0``, ``max-age=0`` without a positive
    ``s-maxage``, an Expires not after Date) or used up by the current age (Age, Date:
    §4.2.3), an invalid or repeated-and-differing ``max-age``/``s-maxage`` (§4.2.1), an
    invalid Expires without either (§5.3: already expired); a Vary naming anything but
    Accept-Encoding (§4.1: the bucket holds one variant for every viewer);
    ``Set-Cookie`` or ``Set-Cookie2`` (a per-viewer response).
  - ``unstorable_header``: S3 could not serve it as the origin sent it: active content
    (HTML, XHTML, SVG, XML) whose Content-Security-Policy S3 drops; a Cache-Control that
    is not printable ASCII of at most 2 048 characters; an Expires that governs the
    lifetime but is not an IMF-fixdate S3 writes back byte for byte (S3 would serve a
    value the origin never sent).
  - ``bad_header``: a Content-Length that is not a number (non-ASCII digits included).
- ``Storable(attributes, dropped)``: what S3 keeps (representation headers, validators and
  the origin's Date and Age as metadata) and every other header the copy loses, named
  with why.

Cache-Control, Vary, Pragma, Age and dates are read by ``shared/cache_control.py``, the
parser the copies' lifetimes use too (``backfill_worker/freshness/lifetime.py``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final, NamedTuple

from shared.cache_control import (
    CacheControl,
    age_value,
    current_age,
    delta_seconds,
    freshness_lifetime,
    http_date,
    is_imf_fixdate,
    parse_cache_control,
    split_list,
)
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
# Kept as user metadata (CloudFront shows them as x-amz-meta-*): the validators, and the
# origin's Date and Age, from which a copy's current age is known later (RFC 9111 §4.2.3).
_METADATA: Final = {
    "etag": "origin-etag",
    "last-modified": "origin-last-modified",
    "date": "origin-date",
    "age": "origin-age",
}
# Headers about the connection, the framing or this one response, not the representation:
# losing them loses nothing, so they are not named (Content-MD5 is checked, not kept; an
# unusable Date or Age is simply not carried).
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
# An entity tag (RFC 9110 §8.8.3): optional W/, then a quoted string of visible bytes.
_ENTITY_TAG = re.compile(r'(?:W/)?"[\x21\x23-\x7e]*"')
_REDIRECTS: Final = range(300, 400)
# The only field a stored variant may vary on: CloudFront keys its cache on the
# normalized Accept-Encoding, and the copy is the origin's identity bytes.
_VARY_ALLOWED: Final = frozenset({"accept-encoding"})
# Storability does not need the default lifetime: heuristic and default lifetimes are
# edgefill's choice, never a reason to refuse. Any positive value will do here.
_ANY_DEFAULT: Final = 1
# The rules, as the log line names them.
RULE_PRIVATE: Final = "RFC 9111 §5.2.2.7 private"
RULE_NO_STORE: Final = "RFC 9111 §5.2.2.5 no-store"
RULE_NO_CACHE: Final = "RFC 9111 §5.2.2.4 no-cache (the bucket cannot revalidate each request)"
RULE_PRAGMA: Final = "RFC 9111 §5.4 Pragma"
RULE_VARY: Final = "RFC 9111 §4.1 Vary (the bucket holds one variant)"
RULE_STALE: Final = "RFC 9111 §4.2 stale on arrival"
RULE_INVALID: Final = "RFC 9111 §4.2.1 invalid freshness is stale"
RULE_EXPIRES: Final = "RFC 9111 §5.3 an invalid Expires is already expired"
RULE_AGE: Final = "RFC 9111 §4.2.3 current age"
RULE_COOKIE: Final = "RFC 6265 §4.1 Set-Cookie (a per-viewer response)"
RULE_REDIRECT: Final = "edgefill: a redirect is never followed"
RULE_CSP: Final = "edgefill: S3 serves no Content-Security-Policy"
RULE_KEEPABLE: Final = "edgefill: S3 serves Cache-Control and Expires byte for byte"
RULE_LENGTH: Final = "RFC 9110 §8.6 Content-Length"
RULE_STATUS: Final = "edgefill: only a 200 is copied"


@dataclass(frozen=True, slots=True)
class Refusal:
    """The response must not be stored; ``directive`` names the header that decided,
    ``rule`` the rule that refused it."""

    reason: str
    detail: str
    directive: str | None = None
    rule: str | None = None


class DroppedHeader(NamedTuple):
    """A header the copy does not carry, and why."""

    name: str
    why: str


@dataclass(frozen=True, slots=True)
class Storable:
    """The response may be stored: with these attributes, without these headers."""

    attributes: ObjectAttributes
    dropped: tuple[DroppedHeader, ...] = field(default=())


def decide(
    status: int, headers: Mapping[str, str], received_at: datetime | None = None
) -> Storable | Refusal:
    """Whether a response of ``status`` with ``headers``, received at ``received_at``,
    may become the shared copy. Without ``received_at`` the apparent age from Date is not
    counted, nor an Expires without Date (a resumed copy re-reads the headers its first
    invocation accepted)."""
    fields = lower_fields(headers)
    if status in _REDIRECTS:
        location = fields.get("location")
        target = (
            f" to {redact_url(location, keep_query_names=False)[:300]}"
            if location
            else " without a Location"
        )
        return Refusal(
            "redirect", f"origin answered {status}{target}", f"HTTP {status}", RULE_REDIRECT
        )
    if status != 200:
        return Refusal("origin", f"origin answered {status}", f"HTTP {status}", RULE_STATUS)
    refusal = (
        _bad_length(fields)
        or uncacheable(fields, received_at)
        or _unkeepable(fields)
        or _unstorable(fields)
    )
    if refusal is not None:
        return refusal
    return _storable(fields)


def uncacheable(fields: Mapping[str, str], received_at: datetime | None = None) -> Refusal | None:
    """The reason lower-cased ``fields`` may not be kept by a shared cache (see the module
    docstring), or None."""
    control = parse_cache_control(fields.get("cache-control"))
    found = (
        _forbidden(control, fields)
        or _vary_refusal(fields)
        or _cookie_refusal(fields)
        or _stale_on_arrival(control, fields, received_at)
    )
    if found is None:
        return None
    directive, rule, why = found
    return Refusal("uncacheable", f"{directive}: {why}", directive, rule)


def lower_fields(headers: Mapping[str, str]) -> dict[str, str]:
    """Header fields by lower-case name; a field sent on several lines is joined with
    commas (RFC 9110 §5.3), as a list field means the same."""
    fields: dict[str, str] = {}
    for name, value in headers.items():
        key = name.lower()
        fields[key] = f"{fields[key]}, {value}" if key in fields else value
    return fields


_Found = tuple[str, str, str]  # (directive, rule, why)


def _forbidden(control: CacheControl, fields: Mapping[str, str]) -> _Found | None:
    if not control.present:
        pragma = {token.lower() for token in split_list(fields.get("pragma"))}
        if "no-cache" in pragma:
            return "Pragma: no-cache", RULE_PRAGMA, "the origin forbids a shared copy"
        return None
    for name, rule in (
        ("private", RULE_PRIVATE),
        ("no-store", RULE_NO_STORE),
        ("no-cache", RULE_NO_CACHE),
    ):
        if control.has(name):
            return f"Cache-Control: {name}", rule, "the origin forbids a shared copy"
    return None


def _vary_refusal(fields: Mapping[str, str]) -> _Found | None:
    for token in split_list(fields.get("vary")):
        if token.lower() not in _VARY_ALLOWED:
            why = "the bucket would serve one variant to every viewer"
            return f"Vary: {token[:40]}", RULE_VARY, why
    return None


def _cookie_refusal(fields: Mapping[str, str]) -> _Found | None:
    for name, shown in (("set-cookie", "Set-Cookie"), ("set-cookie2", "Set-Cookie2")):
        if name in fields:
            return shown, RULE_COOKIE, "the origin forbids a shared copy"
    return None


def _stale_on_arrival(
    control: CacheControl, fields: Mapping[str, str], received_at: datetime | None
) -> _Found | None:
    """A response the origin made stale already (its explicit lifetime is 0, invalid or
    used up by its age): the bucket would serve it stale to everyone (§4.2.4)."""
    clock = received_at or _EPOCH
    lifetime = freshness_lifetime(fields, clock, _ANY_DEFAULT, control)
    if lifetime.rule == "expires" and received_at is None and "date" not in fields:
        return None  # an Expires with nothing to compare it with (a resumed copy)
    if not lifetime.explicit:
        return None
    if lifetime.rule == "invalid":
        rule = RULE_EXPIRES if lifetime.field == "Expires" else RULE_INVALID
        return lifetime.field, rule, f"{lifetime.why}: stale on arrival"
    if lifetime.seconds == 0:
        return lifetime.field, RULE_STALE, "a lifetime of 0: stale on arrival"
    age = current_age(fields, received_at)
    if age >= lifetime.seconds:
        field_name = "Age" if (age_value(fields.get("age")) or 0) >= age else "Date"
        why = f"current age {age} s ≥ lifetime {lifetime.seconds} s: stale on arrival"
        return field_name, RULE_AGE, why
    return None


def _bad_length(fields: Mapping[str, str]) -> Refusal | None:
    try:
        declared_length(fields.get("content-length"))
    except ValueError as error:
        return Refusal("bad_header", str(error), "Content-Length", RULE_LENGTH)
    return None


def _unkeepable(fields: Mapping[str, str]) -> Refusal | None:
    """A Cache-Control or governing Expires S3 could not serve as the origin sent it.
    Dropping either would serve the copy with no lifetime at all, so it is refused."""
    cache_control = fields.get("cache-control")
    if cache_control is not None:
        problem = _usable(cache_control, MAX_VALUE)
        if problem is not None:
            return Refusal(
                "unstorable_header",
                f"Cache-Control is {problem}: S3 would not serve it as sent",
                "Cache-Control",
                RULE_KEEPABLE,
            )
    expires = fields.get("expires")
    if expires is not None and not _expires_ignored(fields) and not _keepable_expires(expires):
        return Refusal(
            "unstorable_header",
            "Expires is not an IMF-fixdate: S3 would serve a value the origin did not send",
            "Expires",
            RULE_KEEPABLE,
        )
    return None


def _expires_ignored(fields: Mapping[str, str]) -> bool:
    """RFC 9111 §5.3: beside max-age (or s-maxage, for a shared cache) Expires is ignored."""
    control = parse_cache_control(fields.get("cache-control"))
    return control.has("max-age") or control.has("s-maxage")


def _keepable_expires(value: str) -> bool:
    return len(value) <= MAX_VALUE and is_imf_fixdate(value)


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
                RULE_CSP,
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
                if name not in _NOT_CARRIED:
                    dropped.append(DroppedHeader(_display(name), problem))
            elif name == "expires":
                expires = http_date(value)
            elif name in _METADATA:
                metadata[_METADATA[name]] = value.strip() if name == "age" else value
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
    if name == "expires" and not _keepable_expires(value):
        # Only an Expires that max-age or s-maxage overrides gets this far (§5.3).
        return "not an IMF-fixdate, and ignored beside max-age (RFC 9111 §5.3)"
    if name in ("last-modified", "date") and http_date(value) is None:
        return "not an HTTP date"
    if name == "age" and delta_seconds(value) is None:
        return "not delta-seconds"
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


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
