"""Message contract v1: the JSON bodies that travel on the backfill and prewarm queues.

Standard library only: the edge function imports this module on every cold start at
every CloudFront edge, so it stays free of pydantic, requests and Powertools.

``parse`` turns one SQS message body into a typed, immutable value or raises
``MessageError`` naming the offending field; ``to_json`` is its inverse, so
``parse(to_json(m)) == m`` for every valid message.

``format_time`` / ``parse_time`` are the one RFC 3339 UTC time of the project (a
message's ``at``, the copies' ``fetched-at``, the due index): they live here because the
edge, which may import only this module's kind, stamps ``at`` too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

VERSION: Final = 1

# SQS accepts message bodies up to 1 MiB.
MAX_BODY_BYTES: Final = 1024 * 1024
# CloudFront limits the URI a viewer may send to 8 KiB; anything longer is not a real request.
MAX_URI_BYTES: Final = 8192
MAX_QUERY_BYTES: Final = 8192
MAX_PATHS: Final = 1000
MAX_TARGETS: Final = 200
MAX_TEXT_BYTES: Final = 512
# Re-enqueued prewarm attempts are numbered; a ceiling keeps a bad value from looping forever.
MAX_ATTEMPT: Final = 100
# Backfill modes: copy a missing object, or revalidate a copy against the origin.
MODES: Final = ("fill", "refresh")
# CloudFront invalidation IDs: upper-case letters and digits (I2J0I21PCUYOIK).
_INVALIDATION_ID = re.compile(r"[A-Z0-9]{1,64}")
# A continuation's hop count; the worker gives up far below this (EDGEFILL_MAX_HOPS).
MAX_HOP: Final = 1000
_HANDOVER_TOKEN = re.compile(r"[A-Za-z0-9-]{8,64}")
# Video expansion (issues 19 and 21): how many manifest levels below the first one an
# expanded fill or follow-up is (a valid HLS tree is two deep), and the EXT-X-DEFINE
# variables a media playlist may IMPORT from the multivariant playlist that named it.
MAX_DEPTH: Final = 2
MAX_VARIABLES_BYTES: Final = 64 * 1024
VARIABLE_NAME: Final = re.compile(r"[A-Za-z0-9_-]{1,256}")

# CloudFront's four normalized Accept-Encoding cache keys, in the order a warmer sends them.
ENCODINGS: Final = ("br+gzip", "gzip", "br", "identity")
ACCEPT_ENCODING: Final[dict[str, str | None]] = {
    "br+gzip": "br, gzip",
    "gzip": "gzip",
    "br": "br",
    "identity": None,
}

# RFC 3986 path characters (pchar and "/"), with "%" only as the start of an escape.
_URI_PATH = re.compile(r"/(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/]|%[0-9A-Fa-f]{2})*")
# RFC 3986 query characters; no "#", no whitespace, no raw non-ASCII.
_QUERY = re.compile(r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/?]|%[0-9A-Fa-f]{2})*")
# Shapes the configuration (shared/config), key (shared/keys) and queue URL
# (shared/queues) checks share with the messages: one definition of each.
REGION_PATTERN: Final = r"[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d{1,2}"
HOST_NAME_PATTERN: Final = (
    r"(?=.{1,253}$)(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*"
    r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
)
CONTROL_CHARACTERS: Final = re.compile(r"[\x00-\x1f\x7f]")
# A wildcard alternate domain name begins with these two characters (CloudFront's rule).
WILDCARD_PREFIX: Final = "*."
_REGION = re.compile(REGION_PATTERN)
# RFC 3339 UTC with seconds, fixed width: "2026-11-30T06:00:00Z" (a public contract).
_TIME_FORMAT: Final = "%Y-%m-%dT%H:%M:%SZ"
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?(?:Z|[+-][0-9]{2}:[0-9]{2})"
)
_POP = re.compile(r"[A-Z]{3}\d{1,3}-[A-Z]\d{1,3}")
_HOST_NAME = re.compile(HOST_NAME_PATTERN)
_HOST = re.compile(HOST_NAME_PATTERN + r"(?::\d{1,5})?")  # a Host header may carry a port
_CONTROL = CONTROL_CHARACTERS


class MessageError(ValueError):
    """A message body that breaks the v1 contract; ``field`` names what is wrong."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True, slots=True)
class BackfillMessage:
    """Copy ``uri`` from the full origin into the regional bucket."""

    uri: str
    query: str = ""
    host: str | None = None
    distribution: str | None = None
    request_id: str | None = None
    edge_region: str | None = None
    at: str | None = None
    mode: str = "fill"
    # A continuation of a copy longer than one invocation: its hop number (1 for the
    # first continuation) and the token the lease was handed over to.
    hop: int = 0
    handover: str | None = None
    # A refresh the sweep sent: the time of the due-index entry that stands for it until
    # it completes (docs/BACKFILL.md "Freshness"), RFC 3339 UTC.
    retry_at: str | None = None
    # Video expansion: the fill's depth below the first manifest, and the variables of
    # the multivariant playlist that named it (a media playlist's EXT-X-DEFINE IMPORT).
    depth: int = 0
    variables: tuple[tuple[str, str], ...] | None = None
    # Regions (issue 20): the bucket region this fill is for, named by the marked origin's
    # x-edgefill-region header. A regional worker refuses another region's message; None
    # (a single-stack distribution, the sweep, the CLI) is any worker's.
    region: str | None = None

    def __post_init__(self) -> None:
        _check_uri("uri", self.uri)
        _check_expansion(self.depth, self.variables)
        if self.region is not None and (
            not isinstance(self.region, str) or not _REGION.fullmatch(self.region)
        ):
            raise MessageError(
                "region", f"must be an AWS region code (ap-southeast-1), got {_shown(self.region)}"
            )
        if self.retry_at is not None and (
            not isinstance(self.retry_at, str) or parse_time(self.retry_at) is None
        ):
            raise MessageError("retryAt", "must be an RFC 3339 time")
        if self.mode not in MODES:
            raise MessageError("mode", f"must be 'fill' or 'refresh', got {self.mode!r:.40}")
        if not _is_int(self.hop) or not 0 <= self.hop <= MAX_HOP:
            raise MessageError("hop", f"must be an integer from 0 to {MAX_HOP}")
        if self.handover is not None and (
            not isinstance(self.handover, str) or not _HANDOVER_TOKEN.fullmatch(self.handover)
        ):
            raise MessageError("handover", "must be 8 to 64 letters, digits or '-'")
        _check_query(self.query)
        if self.host is not None:
            _check_host("host", self.host)
        for name, value in (
            ("distribution", self.distribution),
            ("requestId", self.request_id),
            ("edgeRegion", self.edge_region),
            ("at", self.at),
        ):
            if value is not None:
                _check_text(name, value)


@dataclass(frozen=True, slots=True)
class PrewarmMessage:
    """Warm ``paths`` at ``targets`` for ``encodings``; ``None`` means the worker's default."""

    paths: tuple[str, ...]
    targets: tuple[str, ...] | None = None
    encodings: tuple[str, ...] | None = None
    host: str | None = None
    source: str | None = None
    attempt: int = 0
    # Video: playlists and manifests among ``paths`` also warm what they reference.
    expand: bool = False
    after_invalidation: str | None = None
    # With ``expand``: the paths' depth below the first manifest, and the variables of
    # the multivariant playlist that named them (as on a backfill message).
    depth: int = 0
    variables: tuple[tuple[str, str], ...] | None = None

    def __post_init__(self) -> None:
        _check_expansion(self.depth, self.variables)
        if not isinstance(self.paths, tuple) or not self.paths:
            raise MessageError("paths", "must be a non-empty list of paths")
        if len(self.paths) > MAX_PATHS:
            raise MessageError("paths", f"holds {len(self.paths)} paths; the most is {MAX_PATHS}")
        for index, path in enumerate(self.paths):
            _check_uri(f"paths[{index}]", path, allow_query=True)
        if self.targets is not None:
            _check_targets(self.targets)
        if self.encodings is not None:
            _check_encodings(self.encodings)
        if self.host is not None:
            _check_host("host", self.host)
        if self.source is not None:
            _check_text("source", self.source)
        if not _is_int(self.attempt) or not 0 <= self.attempt <= MAX_ATTEMPT:
            raise MessageError("attempt", f"must be an integer from 0 to {MAX_ATTEMPT}")
        if not isinstance(self.expand, bool):
            raise MessageError("expand", f"must be true or false, got {self.expand!r:.40}")
        if self.after_invalidation is not None and (
            not isinstance(self.after_invalidation, str)
            or not _INVALIDATION_ID.fullmatch(self.after_invalidation)
        ):
            raise MessageError(
                "afterInvalidation", "must be a CloudFront invalidation ID (letters and digits)"
            )


@dataclass(frozen=True, slots=True)
class InvalidationsDue:
    """The backfill worker's reminder to itself, on its own queue after a delay: send the
    CloudFront invalidations pending in the bucket now (``type: "invalidations"``).
    ``window``, the batching window it closes (RFC 3339 UTC), when it names one."""

    window: str | None = None

    def __post_init__(self) -> None:
        if self.window is not None:
            _check_text("window", self.window)


Message = BackfillMessage | PrewarmMessage | InvalidationsDue


def parse(body: str | bytes) -> Message:
    """Parse one SQS message body into a v1 message, or raise ``MessageError``.

    Nothing else escapes, whatever the body: JSON nested deeper than the interpreter's
    recursion limit, numbers too long to convert, bytes that are not UTF-8 and lone
    surrogates all become a ``MessageError`` naming the body, so a caller can treat every
    malformed message alike (the backfill skips it for good; it is never retried)."""
    try:
        return _parse(body)
    except MessageError:
        raise
    except RecursionError:
        raise MessageError("body", "is nested too deeply to read") from None
    except (ValueError, TypeError, OverflowError, UnicodeError, MemoryError) as error:
        raise MessageError("body", f"cannot be read ({type(error).__name__})") from None


def _parse(body: str | bytes) -> Message:
    raw = _load(body)
    kind = raw.get("type")
    if kind == "backfill":
        return _backfill_from(raw)
    if kind == "prewarm":
        return _prewarm_from(raw)
    if kind == "invalidations":
        return InvalidationsDue(window=_optional_str(raw, "window"))
    if "type" not in raw:
        raise MessageError("type", "is missing")
    raise MessageError(
        "type", f"unknown type {_shown(kind)}; expected 'backfill', 'prewarm' or 'invalidations'"
    )


def parse_backfill(body: str | bytes) -> BackfillMessage:
    """Parse a body that must be a backfill message."""
    message = parse(body)
    if not isinstance(message, BackfillMessage):
        raise MessageError("type", f"expected 'backfill', got '{_type_of(message)}'")
    return message


def parse_backfill_queue(body: str | bytes) -> BackfillMessage | InvalidationsDue:
    """Parse a body from the backfill queue: a backfill message, or the worker's own
    reminder to send pending invalidations."""
    message = parse(body)
    if isinstance(message, PrewarmMessage):
        raise MessageError("type", "expected 'backfill' or 'invalidations', got 'prewarm'")
    return message


def parse_prewarm(body: str | bytes) -> PrewarmMessage:
    """Parse a body that must be a prewarm message."""
    message = parse(body)
    if not isinstance(message, PrewarmMessage):
        raise MessageError("type", f"expected 'prewarm', got '{_type_of(message)}'")
    return message


def _type_of(message: Message) -> str:
    if isinstance(message, BackfillMessage):
        return "backfill"
    return "prewarm" if isinstance(message, PrewarmMessage) else "invalidations"


def to_dict(message: Message) -> dict[str, Any]:
    """The v1 JSON object of ``message``; optional fields left unset are omitted."""
    if isinstance(message, InvalidationsDue):
        due: dict[str, Any] = {"v": VERSION, "type": "invalidations"}
        if message.window is not None:
            due["window"] = message.window
        return due
    if isinstance(message, BackfillMessage):
        out: dict[str, Any] = {"v": VERSION, "type": "backfill", "uri": message.uri}
        if message.query:
            out["query"] = message.query
        optional: dict[str, Any] = {
            "host": message.host,
            "distribution": message.distribution,
            "requestId": message.request_id,
            "edgeRegion": message.edge_region,
            "at": message.at,
            "mode": None if message.mode == "fill" else message.mode,
            "hop": message.hop or None,
            "handover": message.handover,
            "retryAt": message.retry_at,
            "region": message.region,
        }
    else:
        out = {"v": VERSION, "type": "prewarm", "paths": list(message.paths)}
        optional = {
            "targets": None if message.targets is None else list(message.targets),
            "encodings": None if message.encodings is None else list(message.encodings),
            "host": message.host,
            "source": message.source,
            "afterInvalidation": message.after_invalidation,
        }
        if message.attempt:
            out["attempt"] = message.attempt
        if message.expand:
            out["expand"] = True
    optional["depth"] = message.depth or None
    optional["variables"] = dict(message.variables) if message.variables else None
    out.update({key: value for key, value in optional.items() if value is not None})
    return out


def to_json(message: Message) -> str:
    """Serialize ``message`` as a compact v1 body (ASCII-safe, under the SQS limit)."""
    body = json.dumps(to_dict(message), separators=(",", ":"), ensure_ascii=True)
    if len(body) > MAX_BODY_BYTES:
        raise MessageError("body", f"is {len(body)} bytes; SQS takes at most {MAX_BODY_BYTES}")
    return body


def format_time(moment: datetime) -> str:
    """``moment`` as RFC 3339 UTC with seconds: ``2026-11-30T06:00:00Z`` (a naive
    ``moment`` is taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime(_TIME_FORMAT)


def parse_time(value: object) -> datetime | None:
    """An RFC 3339 time (any offset) as an aware UTC datetime, or None when ``value`` is
    not one (metadata and messages are outside input: never raises)."""
    if not isinstance(value, str) or len(value) > 40 or not _RFC3339.fullmatch(value.strip()):
        return None
    text = value.strip().replace("Z", "+00:00")
    try:
        return datetime.fromisoformat(text).astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def _load(body: str | bytes) -> dict[str, Any]:
    if not isinstance(body, str | bytes):
        raise MessageError("body", f"must be a JSON string, got {type(body).__name__}")
    size = len(body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body)
    if size > MAX_BODY_BYTES:
        raise MessageError("body", f"is {size} bytes; the most is {MAX_BODY_BYTES}")
    try:
        raw = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise MessageError("body", f"is not valid JSON ({error})") from None
    if not isinstance(raw, dict):
        raise MessageError("body", f"must be a JSON object, got {type(raw).__name__}")
    if "v" not in raw:
        raise MessageError("v", "is missing")
    if not _is_int(raw["v"]) or raw["v"] != VERSION:
        raise MessageError(
            "v", f"unsupported version {_shown(raw['v'])}; this build reads v{VERSION}"
        )
    return raw


def _backfill_from(raw: dict[str, Any]) -> BackfillMessage:
    if "uri" not in raw:
        raise MessageError("uri", "is missing")
    return BackfillMessage(
        uri=_str(raw, "uri"),
        query=_str(raw, "query", default=""),
        host=_optional_str(raw, "host"),
        distribution=_optional_str(raw, "distribution"),
        request_id=_optional_str(raw, "requestId"),
        edge_region=_optional_str(raw, "edgeRegion"),
        at=_optional_str(raw, "at"),
        mode=_str(raw, "mode", default="fill"),
        hop=_int_field(raw, "hop"),
        handover=_optional_str(raw, "handover"),
        retry_at=_optional_str(raw, "retryAt"),
        depth=_int_field(raw, "depth"),
        variables=_variables(raw),
        region=_optional_str(raw, "region"),
    )


def _prewarm_from(raw: dict[str, Any]) -> PrewarmMessage:
    if "paths" not in raw:
        raise MessageError("paths", "is missing")
    attempt = raw.get("attempt", 0)
    if not _is_int(attempt):
        raise MessageError("attempt", f"must be an integer, got {type(attempt).__name__}")
    paths = _str_list(raw, "paths")
    if paths is None:  # "paths": null
        raise MessageError("paths", "must be a non-empty list of paths, got null")
    return PrewarmMessage(
        paths=paths,
        targets=_str_list(raw, "targets"),
        encodings=_str_list(raw, "encodings"),
        host=_optional_str(raw, "host"),
        source=_optional_str(raw, "source"),
        attempt=attempt,
        expand=False if raw.get("expand") is None else raw["expand"],
        after_invalidation=_optional_str(raw, "afterInvalidation"),
        depth=_int_field(raw, "depth"),
        variables=_variables(raw),
    )


def _str(raw: dict[str, Any], name: str, default: str | None = None) -> str:
    value = raw.get(name, default)
    if not isinstance(value, str):
        raise MessageError(name, f"must be a string, got {type(value).__name__}")
    return value


def _optional_str(raw: dict[str, Any], name: str) -> str | None:
    value = raw.get(name)
    if value is None:
        return None
    return _str(raw, name)


def _str_list(raw: dict[str, Any], name: str) -> tuple[str, ...] | None:
    value = raw.get(name)
    if value is None:
        return None
    if not isinstance(value, list):
        raise MessageError(name, f"must be a list of strings, got {type(value).__name__}")
    for index, item in enumerate(value):
        if not isinstance(item, str):
            raise MessageError(f"{name}[{index}]", f"must be a string, got {type(item).__name__}")
    return tuple(value)


def _variables(raw: dict[str, Any]) -> tuple[tuple[str, str], ...] | None:
    value = raw.get("variables")
    if value is None:
        return None
    if not isinstance(value, dict):
        raise MessageError("variables", f"must be an object of strings, got {_shown(value)}")
    return tuple(value.items())


def _check_expansion(depth: object, variables: object) -> None:
    if not _is_int(depth) or not 0 <= depth <= MAX_DEPTH:  # type: ignore[operator]
        raise MessageError("depth", f"must be an integer from 0 to {MAX_DEPTH}")
    if variables is None:
        return
    if not isinstance(variables, tuple):
        raise MessageError("variables", "must be an object of strings")
    size = 0
    for item in variables:
        if not isinstance(item, tuple) or len(item) != 2:
            raise MessageError("variables", "must be an object of strings")
        name, value = item
        if not isinstance(name, str) or not VARIABLE_NAME.fullmatch(name):
            raise MessageError(
                "variables", f"{_shown(name)} is not a variable name (letters, digits, '-', '_')"
            )
        if not isinstance(value, str) or _CONTROL.search(value):
            raise MessageError(f"variables.{name}", "must be a string without control characters")
        size += len(name.encode("utf-8", "surrogatepass")) + len(
            value.encode("utf-8", "surrogatepass")
        )
    if size > MAX_VARIABLES_BYTES:
        raise MessageError("variables", f"hold {size} bytes; the most is {MAX_VARIABLES_BYTES}")


def prewarm_messages(
    paths: Sequence[str], *, max_paths: int = MAX_PATHS, **fields: Any
) -> list[PrewarmMessage]:
    """Prewarm messages carrying ``paths`` in order, each with ``fields`` and at most
    ``max_paths`` paths (never more than ``MAX_PATHS``) and one SQS body
    (``MAX_BODY_BYTES``): long signed segment URIs make 1,000 paths far more than 1 MiB.
    Raises ``MessageError`` (field ``body``) when a single path with those fields would
    not fit."""
    if not paths:
        return []
    max_paths = max(1, min(max_paths, MAX_PATHS))
    empty = _json_size(to_dict(PrewarmMessage(paths=("/",), **fields))) - len('"/"')
    messages: list[PrewarmMessage] = []
    chunk: list[str] = []
    size = empty
    for path in paths:
        cost = _json_size(path)
        if chunk and (len(chunk) >= max_paths or size + 1 + cost > MAX_BODY_BYTES):
            messages.append(PrewarmMessage(paths=tuple(chunk), **fields))
            chunk, size = [], empty
        if size + cost > MAX_BODY_BYTES:
            raise MessageError(
                "body",
                f"a prewarm message with one path of {cost} bytes and its other fields "
                f"({empty} bytes) is over SQS's {MAX_BODY_BYTES} bytes",
            )
        size += cost + (1 if chunk else 0)
        chunk.append(path)
    messages.append(PrewarmMessage(paths=tuple(chunk), **fields))
    return messages


def _json_size(value: object) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=True))


def _shown(value: object) -> str:
    """How an error message quotes a value from a body: a string or a number cut to 40
    characters, anything else by its type alone (the repr of a deeply nested list would
    itself raise ``RecursionError``; the repr of a 4 300-digit int raises ``ValueError``)."""
    if isinstance(value, str):
        return f"{value[:40]!r}" + ("..." if len(value) > 40 else "")
    if isinstance(value, bool | float) or value is None:
        return repr(value)
    if isinstance(value, int):
        return repr(value) if -(10**40) < value < 10**40 else "a very large integer"
    return f"a JSON {type(value).__name__}"


def _int_field(raw: dict[str, Any], name: str) -> int:
    value = raw.get(name, 0)
    if not _is_int(value):
        raise MessageError(name, f"must be an integer, got {_shown(value)}")
    return int(value)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_uri(name: str, value: object, allow_query: bool = False) -> None:
    if not isinstance(value, str):
        raise MessageError(name, f"must be a string, got {type(value).__name__}")
    if not value.startswith("/"):
        raise MessageError(name, f"must start with '/': {value[:80]!r}")
    if value.startswith("//"):
        raise MessageError(name, "must not start with '//' (it would name another host)")
    path, _, query = value.partition("?") if allow_query else (value, "", "")
    size = len(value.encode("utf-8", "surrogatepass"))
    if size > MAX_URI_BYTES:
        raise MessageError(name, f"is {size} bytes; the most is {MAX_URI_BYTES}")
    if _CONTROL.search(value):
        raise MessageError(name, "holds a control character (NUL, CR, LF, ...)")
    if not _URI_PATH.fullmatch(path):
        raise MessageError(
            name, "must be percent-encoded as CloudFront passes it (RFC 3986 path characters)"
        )
    if query and not _QUERY.fullmatch(query):
        raise MessageError(name, "has a query string with characters RFC 3986 does not allow")


def check_reference(uri: str, query: str) -> None:
    """Raise ``MessageError`` unless ``uri`` and ``query`` pass the backfill message's
    ``uri`` and ``query`` rules: what a manifest's reference must pass to become a fill
    (``shared/manifests``), without building the message."""
    _check_uri("uri", uri)
    _check_query(query)


def _check_query(value: object) -> None:
    if not isinstance(value, str):
        raise MessageError("query", f"must be a string, got {type(value).__name__}")
    if value.startswith("?"):
        raise MessageError("query", "must be the raw query string without the leading '?'")
    if len(value.encode("utf-8", "surrogatepass")) > MAX_QUERY_BYTES:
        raise MessageError("query", f"is longer than {MAX_QUERY_BYTES} bytes")
    if _CONTROL.search(value) or not _QUERY.fullmatch(value):
        raise MessageError("query", "holds characters RFC 3986 does not allow in a query")


def _check_host(name: str, value: object) -> None:
    if not isinstance(value, str) or not _HOST.fullmatch(value):
        raise MessageError(name, f"must be a DNS host name, got {_shown(value)}")


def _check_text(name: str, value: object) -> None:
    if not isinstance(value, str):
        raise MessageError(name, f"must be a string, got {type(value).__name__}")
    if len(value.encode("utf-8", "surrogatepass")) > MAX_TEXT_BYTES:
        raise MessageError(name, f"is longer than {MAX_TEXT_BYTES} bytes")
    if _CONTROL.search(value):
        raise MessageError(name, "holds a control character")


def _check_targets(targets: object) -> None:
    if not isinstance(targets, tuple) or not targets:
        raise MessageError("targets", "must be a non-empty list when given")
    if len(targets) > MAX_TARGETS:
        raise MessageError("targets", f"holds {len(targets)} targets; the most is {MAX_TARGETS}")
    for index, target in enumerate(targets):
        if not is_target(target):
            raise MessageError(
                f"targets[{index}]",
                f"{_shown(target)} is neither an AWS region code (us-east-1) "
                "nor a CloudFront POP code (NRT20-P2)",
            )


def _check_encodings(encodings: object) -> None:
    if not isinstance(encodings, tuple) or not encodings:
        raise MessageError("encodings", "must be a non-empty list when given")
    for index, encoding in enumerate(encodings):
        if encoding not in ENCODINGS:
            raise MessageError(
                f"encodings[{index}]",
                f"unknown encoding {_shown(encoding)}; expected one of {', '.join(ENCODINGS)}",
            )


def is_host_name(value: object) -> bool:
    """True for a DNS host name without a port, such as ``d111.cloudfront.net``."""
    return isinstance(value, str) and _HOST_NAME.fullmatch(value) is not None


def is_host_pattern(value: object) -> bool:
    """A host name, or a wildcard alternate domain name as CloudFront takes one: ``*.``
    then a host name of two labels at least (``*.example.com``). Never ``*.com``,
    ``*example.com``, ``a.*.example.com`` or ``*.*.example.com``."""
    if not isinstance(value, str):
        return False
    if not value.startswith(WILDCARD_PREFIX):
        return is_host_name(value)
    rest = value[len(WILDCARD_PREFIX) :]
    return "." in rest and is_host_name(rest)


def is_region_code(value: object) -> bool:
    """True for the shape of an AWS region code such as ``ap-northeast-1``."""
    return isinstance(value, str) and _REGION.fullmatch(value) is not None


def is_pop_code(value: object) -> bool:
    """True for the shape of a CloudFront POP code such as ``NRT20-P2``."""
    return isinstance(value, str) and _POP.fullmatch(value) is not None


def is_target(value: object) -> bool:
    """A prewarm target is a region code or a POP code."""
    return is_region_code(value) or is_pop_code(value)
