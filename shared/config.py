"""Worker configuration: ``EDGEFILL_*`` environment variables validated once, at the boundary.

Each worker builds its model with ``from_env(os.environ)`` inside the handler's cached
factory, never at import time. A bad value raises ``ConfigError`` naming the variable.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal, TypedDict
from urllib.parse import urlsplit

from shared.keys import InvalidKey, normalize_prefix
from shared.messages import (
    ENCODINGS,
    is_host_name,
    is_host_pattern,
    is_region_code,
    is_target,
)
from shared.queues import InvalidQueueUrl, region_in_queue_url

DEFAULT_MAX_OBJECT_BYTES: Final = 5 * 1024**3  # S3's single-PUT ceiling; larger still works
DEFAULT_RESOLVER: Final = "8.8.8.8"
# Prewarm tuning (see docs/PREWARM.md): warm threads, tries per request, seconds a request
# may take, message attempts before failed tasks are given up, first re-enqueue delay.
DEFAULT_CONCURRENCY: Final = 30  # measured: bench/bench_prewarm.py, docs/BENCHMARKS.md
DEFAULT_REQUEST_ATTEMPTS: Final = 3
# HTTP/2 warms (issue 23, docs/PREWARM.md): streams in flight in total (the warm threads)
# and per edge connection (never above the edge's SETTINGS_MAX_CONCURRENT_STREAMS).
# EDGEFILL_CONCURRENCY stays the HTTP/1.1 bound: requests (sockets) in flight at once.
DEFAULT_WARM_STREAMS: Final = 128
MAX_WARM_STREAMS: Final = 1024
DEFAULT_WARM_STREAMS_PER_EDGE: Final = 100
MAX_WARM_STREAMS_PER_EDGE: Final = 1000
WARM_HTTP_VERSIONS: Final = ("2", "1.1")
DEFAULT_REQUEST_TIMEOUT: Final = 30
DEFAULT_MAX_ATTEMPTS: Final = 5
DEFAULT_RETRY_DELAY: Final = 30
# About what CloudFront takes to complete one invalidation: each window's batch then
# finds the previous one done (3 000 paths, 15 wildcards in progress at most).
DEFAULT_INVALIDATION_WINDOW: Final = 60
# Multipart part size and parts held in memory at once by the backfill: the copy's memory
# bound is their product (64 MiB by default). S3 takes parts of 5 MiB to 5 GiB.
DEFAULT_PART_BYTES: Final = 8 * 1024**2
MIN_PART_BYTES: Final = 5 * 1024**2
MAX_PART_BYTES: Final = 5 * 1024**3
# One multipart upload holds at most 10,000 parts of at most 5 GiB: the largest object a
# copy can write, and so the largest EDGEFILL_MAX_OBJECT_BYTES (a body of unknown length
# is cut into parts big enough for it, backfill_worker/transfer/plan.py).
MAX_OBJECT_BYTES: Final = 10_000 * MAX_PART_BYTES
DEFAULT_PARTS_IN_FLIGHT: Final = 8
MAX_PARTS_IN_FLIGHT: Final = 32  # the S3 client's connection pool (shared/aws.py)
# Freshness (docs/BACKFILL.md "Freshness"): lifetime of a copy whose origin gave none,
# from one minute to ten years.
DEFAULT_REVALIDATE_AFTER: Final = 86_400
MAX_REVALIDATE_AFTER: Final = 10 * 365 * 86_400
# The least time between two revalidations of a copy (EDGEFILL_MIN_REVALIDATE): at least
# the sweep's schedule period (15 minutes by default), so that ``max-age=1`` does not make
# every sweep refresh the copy. It governs when edgefill revalidates, never the
# Cache-Control S3 serves (always the origin's). One second is allowed for the lab.
DEFAULT_MIN_REVALIDATE: Final = 900
MAX_MIN_REVALIDATE: Final = 86_400
# How far ahead the sweep queues refreshes (EDGEFILL_SWEEP_LOOKAHEAD), each delayed to its
# copy's due time: at most SQS's 900 s DelaySeconds, and meant to equal the schedule's
# period so that every copy is revalidated on time.
DEFAULT_SWEEP_LOOKAHEAD: Final = 900
MAX_SWEEP_LOOKAHEAD: Final = 900
# CloudFront distribution IDs: upper-case letters and digits (E2EXAMPLE1234).
_DISTRIBUTION_ID = re.compile(r"[A-Z0-9]{5,32}")
# Resumable copies (docs/BACKFILL.md "Copies longer than one invocation"): seconds before
# the invocation's end at which no part starts and the copy is handed over, and the most
# continuations one copy may chain. 60 s: measured (docs/BENCHMARKS.md) a handover takes
# well under a second, so the 60 s are the in-flight parts' slack (one 30 s origin read
# timeout) above the 30 s cleanup margin; 48 hops × 15 min = 12 h, inside the 1-day
# lifecycle rule that aborts forgotten uploads.
DEFAULT_HANDOVER_SECONDS: Final = 60.0
MIN_HANDOVER_SECONDS: Final = 0.5
MAX_HANDOVER_SECONDS: Final = 840.0  # Lambda's 900 s timeout, less a minute to copy
DEFAULT_MAX_HOPS: Final = 48
MAX_HOPS: Final = 1000
# How long an origin 404/410 is remembered; markers expire by lifecycle after a day, so a
# longer memory could not be kept anyway.
DEFAULT_MISSING_TTL: Final = 300
MAX_MISSING_TTL: Final = 86400
# Objects a copied playlist or manifest may queue (EDGEFILL_EXPAND_MAX); a 10-hour VOD
# rendition of 2 s segments holds 18,000.
DEFAULT_EXPAND_MAX: Final = 20_000
MAX_EXPAND_MAX: Final = 1_000_000

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class ConfigError(ValueError):
    """An environment variable is missing or malformed; ``variable`` names it."""

    def __init__(self, variable: str, reason: str) -> None:
        super().__init__(f"{variable}: {reason}")
        self.variable = variable
        self.reason = reason


@dataclass(frozen=True, slots=True)
class BackfillConfig:
    """Configuration of ``backfill_worker``."""

    bucket: str
    origin_url: str  # scheme://host[:port][/prefix], no trailing slash
    prewarm_queue_url: str | None = None
    key_prefix: str = ""
    max_object_bytes: int = DEFAULT_MAX_OBJECT_BYTES
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    query: Literal["ignore", "forward"] = "ignore"
    # Extension of the contract (EDGEFILL_BUCKET_REGION): the bucket's region when it is
    # not the worker's own (an existing bucket elsewhere); None means the worker's region.
    bucket_region: str | None = None
    # The worker's own region (AWS_REGION, set by Lambda); with ``bucket_region`` it says
    # which region's fills this worker takes (issue 20: a message for another is refused).
    worker_region: str | None = None
    part_bytes: int = DEFAULT_PART_BYTES
    parts_in_flight: int = DEFAULT_PARTS_IN_FLIGHT
    # Freshness: invalidations go to this distribution (None: none are made), the sweep
    # sends refresh messages to the backfill queue, copies without an origin lifetime are
    # revalidated after ``revalidate_after`` seconds.
    distribution_id: str | None = None
    # The worker's own queue: the sweep's refreshes, continuations of copies longer than
    # one invocation (without it such a copy is abandoned at the deadline as before) and
    # playlist expansion send here.
    backfill_queue_url: str | None = None
    revalidate_after: int = DEFAULT_REVALIDATE_AFTER
    min_revalidate: int = DEFAULT_MIN_REVALIDATE
    sweep_lookahead: int = DEFAULT_SWEEP_LOOKAHEAD
    handover_seconds: float = DEFAULT_HANDOVER_SECONDS
    max_hops: int = DEFAULT_MAX_HOPS
    # EDGEFILL_INVALIDATION_WINDOW: seconds replaced and deleted paths wait, recorded in
    # the bucket, for one invalidation to take them all (a reminder on backfill_queue_url).
    invalidation_window: int = DEFAULT_INVALIDATION_WINDOW
    # EDGEFILL_MISSING_TTL: seconds an origin 404/410 is remembered (one GET per path).
    missing_ttl: int = DEFAULT_MISSING_TTL
    # Video (issue 14): a copied HLS playlist or DASH manifest queues fills for what it
    # references (to backfill_queue_url, above). Off unless EDGEFILL_EXPAND_PLAYLISTS=true
    # (the template turns it on).
    expand_playlists: bool = False
    expand_max: int = DEFAULT_EXPAND_MAX
    # EDGEFILL_BACKFILL_DLQ_URL (issue 19): a message refused for good (bad message or
    # key, a limit) is sent here at once with its reason (shared/dead_letters.py); None:
    # it is skipped and logged, as before.
    dlq_url: str | None = None
    # Video (issue 21): the distribution's viewer hosts (EDGEFILL_VIEWER_HOSTS: its domain,
    # aliases, viewer host): absolute manifest URIs on them name our objects.
    viewer_hosts: tuple[str, ...] = ()

    @property
    def origin_host(self) -> str:
        """``host[:port]`` of the full origin: the only host the worker may contact."""
        return urlsplit(self.origin_url).netloc

    @property
    def fills_region(self) -> str | None:
        """The region whose bucket this worker fills: the bucket's, else its own."""
        return self.bucket_region or self.worker_region

    def accepts(self, decoded_path: str) -> bool:
        """Include/exclude globs on the decoded path (``/img/a b.jpg``); exclude wins."""
        if self.include and not any(fnmatch.fnmatchcase(decoded_path, g) for g in self.include):
            return False
        return not any(fnmatch.fnmatchcase(decoded_path, g) for g in self.exclude)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> BackfillConfig:
        """Read and validate the backfill worker's variables."""
        bucket = _required(env, "EDGEFILL_BUCKET")
        if not re.fullmatch(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]", bucket):
            raise ConfigError("EDGEFILL_BUCKET", f"{bucket!r} is not a valid S3 bucket name")
        try:
            prefix = normalize_prefix(env.get("EDGEFILL_KEY_PREFIX", ""))
        except InvalidKey as error:
            raise ConfigError("EDGEFILL_KEY_PREFIX", str(error)) from None
        query = env.get("EDGEFILL_QUERY", "ignore").strip() or "ignore"
        if query not in ("ignore", "forward"):
            raise ConfigError("EDGEFILL_QUERY", f"must be 'ignore' or 'forward', got {query!r}")
        bucket_region = env.get("EDGEFILL_BUCKET_REGION", "").strip() or None
        if bucket_region is not None and not is_region_code(bucket_region):
            raise ConfigError(
                "EDGEFILL_BUCKET_REGION", f"{bucket_region!r} is not an AWS region code"
            )
        return cls(
            bucket=bucket,
            origin_url=_origin_url(_required(env, "EDGEFILL_ORIGIN_URL")),
            prewarm_queue_url=_optional_url(env, "EDGEFILL_PREWARM_QUEUE_URL"),
            key_prefix=prefix,
            max_object_bytes=_bounded_int(
                env, "EDGEFILL_MAX_OBJECT_BYTES", DEFAULT_MAX_OBJECT_BYTES, 1, MAX_OBJECT_BYTES
            ),
            include=_list(env, "EDGEFILL_INCLUDE"),
            exclude=_list(env, "EDGEFILL_EXCLUDE"),
            query=query,  # type: ignore[arg-type]
            bucket_region=bucket_region,
            worker_region=_aws_region(env),
            part_bytes=_bounded_int(
                env, "EDGEFILL_PART_BYTES", DEFAULT_PART_BYTES, MIN_PART_BYTES, MAX_PART_BYTES
            ),
            parts_in_flight=_bounded_int(
                env, "EDGEFILL_PARTS_IN_FLIGHT", DEFAULT_PARTS_IN_FLIGHT, 1, MAX_PARTS_IN_FLIGHT
            ),
            distribution_id=_distribution_id(env),
            revalidate_after=_bounded_int(
                env,
                "EDGEFILL_REVALIDATE_AFTER",
                DEFAULT_REVALIDATE_AFTER,
                60,
                MAX_REVALIDATE_AFTER,
            ),
            min_revalidate=_bounded_int(
                env, "EDGEFILL_MIN_REVALIDATE", DEFAULT_MIN_REVALIDATE, 1, MAX_MIN_REVALIDATE
            ),
            sweep_lookahead=0
            if env.get("EDGEFILL_SWEEP_LOOKAHEAD", "").strip() == "0"
            else _bounded_int(
                env, "EDGEFILL_SWEEP_LOOKAHEAD", DEFAULT_SWEEP_LOOKAHEAD, 1, MAX_SWEEP_LOOKAHEAD
            ),
            handover_seconds=_bounded_seconds(
                env,
                "EDGEFILL_HANDOVER_SECONDS",
                DEFAULT_HANDOVER_SECONDS,
                MIN_HANDOVER_SECONDS,
                MAX_HANDOVER_SECONDS,
            ),
            max_hops=_bounded_int(env, "EDGEFILL_MAX_HOPS", DEFAULT_MAX_HOPS, 1, MAX_HOPS),
            # SQS delays a message by at most 900 s: the reminder's delay.
            invalidation_window=_bounded_int(
                env, "EDGEFILL_INVALIDATION_WINDOW", DEFAULT_INVALIDATION_WINDOW, 1, 900
            ),
            missing_ttl=_bounded_int(
                env, "EDGEFILL_MISSING_TTL", DEFAULT_MISSING_TTL, 1, MAX_MISSING_TTL
            ),
            **_expansion(env),
            dlq_url=_dlq_url(
                env,
                "EDGEFILL_BACKFILL_DLQ_URL",
                ("EDGEFILL_BACKFILL_QUEUE_URL", "EDGEFILL_PREWARM_QUEUE_URL"),
            ),
        )


@dataclass(frozen=True, slots=True)
class PrewarmConfig:
    """Configuration of ``prewarm_worker`` (and of ``edgefill warm``)."""

    distribution_domain: str
    viewer_host: str
    targets: tuple[str, ...] = ()
    encodings: tuple[str, ...] = ENCODINGS
    protocol: Literal["https", "http"] = "https"
    resolver_host: str = DEFAULT_RESOLVER
    resolver_port: int = 53
    region_subnets: tuple[tuple[str, Network], ...] = ()  # overrides of the built-in table
    edge_port: int | None = None
    prewarm_queue_url: str | None = None
    concurrency: int = DEFAULT_CONCURRENCY
    request_attempts: int = DEFAULT_REQUEST_ATTEMPTS
    request_timeout: int = DEFAULT_REQUEST_TIMEOUT
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    retry_delay: int = DEFAULT_RETRY_DELAY
    # EDGEFILL_WARM_HTTP: "2" (HTTP/2 to each edge that offers it, else HTTP/1.1) or
    # "1.1" (HTTP/1.1 keep-alive only); streams in total and per edge for HTTP/2.
    warm_http: Literal["2", "1.1"] = "2"
    warm_streams: int = DEFAULT_WARM_STREAMS
    warm_streams_per_edge: int = DEFAULT_WARM_STREAMS_PER_EDGE
    # Messages with ``afterInvalidation`` wait for that invalidation of this distribution.
    distribution_id: str | None = None
    # Viewer hosts a message may name besides the viewer host and the distribution domain
    # (EDGEFILL_ALLOWED_HOSTS, lower case), and whether edges may have non-global
    # addresses (EDGEFILL_ALLOW_PRIVATE_EDGES: the lab and the tests only).
    allowed_hosts: tuple[str, ...] = ()
    allow_private_edges: bool = False
    # Bytes one message may download before no new warm starts (None: no cap).
    max_warm_bytes: int | None = None
    # EDGEFILL_PREWARM_DLQ_URL (issue 19): a message refused for good (contract, host,
    # task cap) is sent here at once with its reason; None: it fails, as before, until
    # the queue's redrive policy moves it.
    dlq_url: str | None = None
    # Video (issue 21): the full origin (EDGEFILL_ORIGIN_URL, optional here): absolute
    # manifest URIs on it, under its path, name the same objects as for the backfill.
    origin_url: str | None = None
    # Regions (issue 20): the worker's own region (AWS_REGION). With no targets in the
    # message nor in EDGEFILL_TARGETS, a regional prewarm worker warms its own region's
    # edges: a fill in R warms R, where R's viewers are.
    worker_region: str | None = None

    @property
    def http2(self) -> bool:
        """Whether warms try HTTP/2 (over TLS only: CloudFront has no cleartext HTTP/2)."""
        return self.warm_http == "2" and self.protocol == "https"

    @property
    def port(self) -> int:
        """The TCP port edges are contacted on."""
        if self.edge_port is not None:
            return self.edge_port
        return 443 if self.protocol == "https" else 80

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> PrewarmConfig:
        """Read and validate the prewarm worker's variables."""
        domain = _hostname(
            env, "EDGEFILL_DISTRIBUTION_DOMAIN", _required(env, "EDGEFILL_DISTRIBUTION_DOMAIN")
        )
        viewer_host = env.get("EDGEFILL_VIEWER_HOST", "").strip() or domain
        _hostname(env, "EDGEFILL_VIEWER_HOST", viewer_host)
        targets = _list(env, "EDGEFILL_TARGETS")
        for target in targets:
            if not is_target(target):
                raise ConfigError(
                    "EDGEFILL_TARGETS",
                    f"{target!r} is neither a region code (us-east-1) nor a POP code (NRT20-P2)",
                )
        encodings = _list(env, "EDGEFILL_ENCODINGS") or ENCODINGS
        for encoding in encodings:
            if encoding not in ENCODINGS:
                raise ConfigError(
                    "EDGEFILL_ENCODINGS",
                    f"unknown encoding {encoding!r}; expected some of {', '.join(ENCODINGS)}",
                )
        protocol = env.get("EDGEFILL_PROTOCOL", "https").strip() or "https"
        if protocol not in ("https", "http"):
            raise ConfigError("EDGEFILL_PROTOCOL", f"must be 'https' or 'http', got {protocol!r}")
        resolver_host, resolver_port = _resolver(env.get("EDGEFILL_RESOLVER", DEFAULT_RESOLVER))
        edge_port = env.get("EDGEFILL_EDGE_PORT", "").strip()
        return cls(
            distribution_domain=domain,
            viewer_host=viewer_host,
            targets=targets,
            encodings=encodings,
            protocol=protocol,  # type: ignore[arg-type]
            resolver_host=resolver_host,
            resolver_port=resolver_port,
            region_subnets=_region_subnets(env.get("EDGEFILL_REGION_SUBNETS", "")),
            worker_region=_aws_region(env),
            edge_port=_port("EDGEFILL_EDGE_PORT", edge_port) if edge_port else None,
            prewarm_queue_url=_optional_url(env, "EDGEFILL_PREWARM_QUEUE_URL"),
            concurrency=_bounded_int(env, "EDGEFILL_CONCURRENCY", DEFAULT_CONCURRENCY, 1, 256),
            request_attempts=_bounded_int(
                env, "EDGEFILL_REQUEST_ATTEMPTS", DEFAULT_REQUEST_ATTEMPTS, 1, 10
            ),
            request_timeout=_bounded_int(
                env, "EDGEFILL_REQUEST_TIMEOUT", DEFAULT_REQUEST_TIMEOUT, 1, 900
            ),
            max_attempts=_bounded_int(env, "EDGEFILL_MAX_ATTEMPTS", DEFAULT_MAX_ATTEMPTS, 1, 100),
            retry_delay=_bounded_int(env, "EDGEFILL_RETRY_DELAY", DEFAULT_RETRY_DELAY, 1, 900),
            warm_http=_warm_http(env),
            warm_streams=_bounded_int(
                env, "EDGEFILL_WARM_STREAMS", DEFAULT_WARM_STREAMS, 1, MAX_WARM_STREAMS
            ),
            warm_streams_per_edge=_bounded_int(
                env,
                "EDGEFILL_WARM_STREAMS_PER_EDGE",
                DEFAULT_WARM_STREAMS_PER_EDGE,
                1,
                MAX_WARM_STREAMS_PER_EDGE,
            ),
            distribution_id=_distribution_id(env),
            allowed_hosts=tuple(
                _host_pattern(env, "EDGEFILL_ALLOWED_HOSTS", host)
                for host in _list(env, "EDGEFILL_ALLOWED_HOSTS")
            ),
            allow_private_edges=_flag(env, "EDGEFILL_ALLOW_PRIVATE_EDGES"),
            max_warm_bytes=_optional_positive_int(env, "EDGEFILL_MAX_WARM_BYTES"),
            dlq_url=_dlq_url(env, "EDGEFILL_PREWARM_DLQ_URL", ("EDGEFILL_PREWARM_QUEUE_URL",)),
            origin_url=(
                _origin_url(env["EDGEFILL_ORIGIN_URL"].strip())
                if env.get("EDGEFILL_ORIGIN_URL", "").strip()
                else None
            ),
        )


def _warm_http(env: Mapping[str, str]) -> Literal["2", "1.1"]:
    value = env.get("EDGEFILL_WARM_HTTP", "").strip() or "2"
    if value not in WARM_HTTP_VERSIONS:
        raise ConfigError("EDGEFILL_WARM_HTTP", f"must be '2' or '1.1', got {value[:20]!r}")
    return "2" if value == "2" else "1.1"


class _Expansion(TypedDict):
    backfill_queue_url: str | None
    expand_playlists: bool
    expand_max: int
    viewer_hosts: tuple[str, ...]


def _expansion(env: Mapping[str, str]) -> _Expansion:
    """EDGEFILL_BACKFILL_QUEUE_URL, EDGEFILL_EXPAND_PLAYLISTS, EDGEFILL_EXPAND_MAX and
    EDGEFILL_VIEWER_HOSTS."""
    queue_url = _optional_url(env, "EDGEFILL_BACKFILL_QUEUE_URL")
    expand = _flag(env, "EDGEFILL_EXPAND_PLAYLISTS")
    if expand and queue_url is None:
        raise ConfigError(
            "EDGEFILL_EXPAND_PLAYLISTS",
            "is true but EDGEFILL_BACKFILL_QUEUE_URL, where expansion sends, is not set",
        )
    return _Expansion(
        backfill_queue_url=queue_url,
        expand_playlists=expand,
        expand_max=_bounded_int(env, "EDGEFILL_EXPAND_MAX", DEFAULT_EXPAND_MAX, 1, MAX_EXPAND_MAX),
        viewer_hosts=tuple(_viewer_host(item) for item in _list(env, "EDGEFILL_VIEWER_HOSTS")),
    )


def _viewer_host(value: str) -> str:
    """An EDGEFILL_VIEWER_HOSTS entry: ``host``, ``host:port`` or a wildcard alias
    ``*.example.com``, in lower case."""
    name, colon, port = value.partition(":")
    wildcard = name.startswith("*.")
    if (
        not is_host_name(name[2:] if wildcard else name)
        or (colon and (wildcard or not port.isascii() or not port.isdigit()))
        or (colon and not 0 < int(port) < 65536)
    ):
        raise ConfigError(
            "EDGEFILL_VIEWER_HOSTS",
            f"{value[:80]!r} is not a host name, host:port or wildcard alias (*.example.com)",
        )
    return value.lower()


def _flag(env: Mapping[str, str], name: str) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw in ("", "false"):
        return False
    if raw == "true":
        return True
    raise ConfigError(name, f"must be 'true' or 'false', got {raw[:40]!r}")


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigError(name, "is required but not set")
    return value


def _list(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in env.get(name, "").split(",") if item.strip())


def _positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(name, f"must be a whole number, got {raw!r}") from None
    if value <= 0:
        raise ConfigError(name, f"must be positive, got {value}")
    return value


def _optional_positive_int(env: Mapping[str, str], name: str) -> int | None:
    """A positive whole number, or None when the variable is unset or empty."""
    if not env.get(name, "").strip():
        return None
    return _positive_int(env, name, 0)


def _bounded_int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    value = _positive_int(env, name, default)
    if not low <= value <= high:
        raise ConfigError(name, f"must be from {low} to {high}, got {value}")
    return value


def _bounded_seconds(
    env: Mapping[str, str], name: str, default: float, low: float, high: float
) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(name, f"must be a number of seconds, got {raw!r}") from None
    if not low <= value <= high:  # also rejects nan and inf
        raise ConfigError(name, f"must be from {low:g} to {high:g} seconds, got {raw}")
    return value


def _port(name: str, raw: str) -> int:
    try:
        port = int(raw)
    except ValueError:
        raise ConfigError(name, f"must be a port number, got {raw!r}") from None
    if not 0 < port < 65536:
        raise ConfigError(name, f"must be a port from 1 to 65535, got {port}")
    return port


def _hostname(env: Mapping[str, str], name: str, value: str) -> str:
    if not is_host_name(value):
        raise ConfigError(name, f"{value!r} is not a DNS host name")
    return value.lower()


def _host_pattern(env: Mapping[str, str], name: str, value: str) -> str:
    """A host name or a wildcard alias (``*.example.com``: the template passes the
    distribution's aliases, and CloudFront allows wildcard ones)."""
    if not is_host_pattern(value):
        raise ConfigError(
            name,
            f"{value[:80]!r} is neither a DNS host name nor a wildcard alias "
            "('*.' then a name of two labels at least, such as *.example.com)",
        )
    return value.lower()


def _origin_url(raw: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError("EDGEFILL_ORIGIN_URL", f"must be an http(s) URL with a host, got {raw!r}")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ConfigError(
            "EDGEFILL_ORIGIN_URL", "must not carry a query, a fragment or credentials"
        )
    try:
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        raise ConfigError("EDGEFILL_ORIGIN_URL", f"has a malformed port: {raw!r}") from None
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"


def _optional_url(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip()
    if not value:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(name, f"must be an SQS queue URL, got {value!r}")
    return value


def _dlq_url(env: Mapping[str, str], name: str, queues: tuple[str, ...]) -> str | None:
    """An SQS queue URL that is none of the worker's working ``queues``: a refusal sent
    to the queue it came from would come back for ever."""
    value = env.get(name, "").strip()
    if not value:
        return None
    try:
        region_in_queue_url(value)
    except InvalidQueueUrl as error:
        raise ConfigError(name, str(error)) from None
    for queue in queues:
        if value == env.get(queue, "").strip():
            raise ConfigError(name, f"is {queue}: refused messages would come back for ever")
    return value


def _distribution_id(env: Mapping[str, str]) -> str | None:
    value = env.get("EDGEFILL_DISTRIBUTION_ID", "").strip()
    if not value:
        return None
    if not _DISTRIBUTION_ID.fullmatch(value):
        raise ConfigError(
            "EDGEFILL_DISTRIBUTION_ID",
            f"{value[:40]!r} is not a CloudFront distribution ID (E2EXAMPLE1234)",
        )
    return value


def _resolver(raw: str) -> tuple[str, int]:
    raw = raw.strip() or DEFAULT_RESOLVER
    host, port = raw, "53"
    if raw.startswith("["):  # [::1]:5353
        host, _, rest = raw[1:].partition("]")
        port = rest.removeprefix(":") or "53"
    elif raw.count(":") == 1:
        host, port = raw.split(":")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ConfigError(
            "EDGEFILL_RESOLVER", f"must be an IP address[:port], got {raw!r}"
        ) from None
    return host, _port("EDGEFILL_RESOLVER", port)


def _region_subnets(raw: str) -> tuple[tuple[str, Network], ...]:
    if not raw.strip():
        return ()
    try:
        table = json.loads(raw)
    except ValueError as error:
        raise ConfigError("EDGEFILL_REGION_SUBNETS", f"is not valid JSON ({error})") from None
    if not isinstance(table, dict):
        raise ConfigError("EDGEFILL_REGION_SUBNETS", "must be a JSON object region → CIDR")
    out: list[tuple[str, Network]] = []
    for region, cidr in table.items():
        if not is_region_code(region):
            raise ConfigError("EDGEFILL_REGION_SUBNETS", f"{region!r} is not a region code")
        try:
            out.append((region, ipaddress.ip_network(str(cidr), strict=False)))
        except ValueError:
            raise ConfigError(
                "EDGEFILL_REGION_SUBNETS", f"{region}: {cidr!r} is not a CIDR block"
            ) from None
    return tuple(out)


def _aws_region(env: Mapping[str, str]) -> str | None:
    """``AWS_REGION`` when it is a region code; Lambda always sets one. Anything else (a
    local shell without it) is no region: a message's ``region`` is then not checked
    against it, only against ``EDGEFILL_BUCKET_REGION`` when that is set."""
    value = env.get("AWS_REGION", "").strip()
    return value if is_region_code(value) else None
