"""CloudFront POPs for the lab: HTTPS caches in front of an origin group.

Each POP listens on its own 127.0.0.x address (all on one port, as real edges all answer
on 443), presents a certificate from the lab CA for the distribution domain and the
viewer host, and behaves as CloudFront does for a cache behavior whose cache policy keys
on host, URI, query string and the normalized Accept-Encoding:

- a hit is answered from the POP's cache with ``X-Cache: Hit from cloudfront``;
- a miss goes to the origin group: the primary (the regional bucket, through moto's S3)
  and, on 403/404 (the template's failover criteria), the secondary (the full origin).
  The **real** ``edge_origin_request`` handler runs before each origin attempt with the
  origin-request event CloudFront would build (an ``s3`` origin for the primary; a
  ``custom`` origin carrying the ``x-edgefill-queue`` custom header for the secondary), and
  the request it returns is the one sent (custom headers included, as CloudFront adds them);
- concurrent misses for one cache key at one POP are collapsed into one origin fetch;
- an object is stored only when its whole body reached the viewer (CloudFront drops an
  object whose viewer went away mid-body), and only for 200 responses that allow caching;
- an invalidation drops the cached objects whose paths it names (``invalidate``, called
  by ``edgefill/lab/invalidations.py`` when the invalidation completes).

Not emulated: compression at the edge (the origin's bytes are served as they are, under
the cache key of the viewer's normalized encoding), Range requests from viewers (the full
body is served), TTLs (a lab POP keeps an object until it stops or an invalidation drops
it).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.client
import json
import logging
import os
import secrets
import shutil
import socket
import ssl
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, BinaryIO, Final
from urllib.parse import unquote, urlsplit

from botocore.exceptions import BotoCoreError, ClientError

from edgefill.lab.pollers import LambdaContext
from edgefill.lab.tls import TLSThreadingHTTPServer
from shared.messages import ENCODINGS

EdgeHandler = Callable[[dict[str, Any], Any], Any]
# Chooses the origin group for one viewer request (the lab's viewer-request function:
# edgefill/lab/regions.py); given the viewer (client_ip, host, uri, query, method, headers),
# returns the distribution as that request sees it. Raises ``ViewerRequestError``.
OriginSelector = Callable[[dict[str, Any]], "Distribution"]

QUEUE_HEADER: Final = "x-edgefill-queue"
# The template's origin group fails over on these statuses from the primary.
DEFAULT_FAILOVER_STATUSES: Final = frozenset({403, 404, 500, 502, 503, 504})
# Bytes moved per read/write between origin, cache file and viewer.
_CHUNK: Final = 256 * 1024
# Headers that describe one hop, never copied from an origin response to a viewer.
_HOP_BY_HOP: Final = frozenset(
    {
        "connection",
        "keep-alive",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
        "proxy-authenticate",
        "proxy-authorization",
        "content-length",
    }
)
# Response headers S3 returns that a viewer sees through CloudFront.
_S3_HEADERS: Final = (
    ("ContentType", "Content-Type"),
    ("CacheControl", "Cache-Control"),
    ("ContentEncoding", "Content-Encoding"),
    ("ContentDisposition", "Content-Disposition"),
    ("ContentLanguage", "Content-Language"),
    ("ETag", "ETag"),
)
_log = logging.getLogger("edgefill.lab.pop")


def normalize_accept_encoding(header: str | None) -> str:
    """CloudFront's normalized cache-key encoding for a viewer's Accept-Encoding:
    ``br+gzip``, ``gzip``, ``br`` or ``identity`` (anything else is dropped)."""
    accepted: set[str] = set()
    for item in (header or "").split(","):
        name, _, params = item.strip().partition(";")
        quality = params.strip().lower()
        if quality.startswith("q="):
            try:
                if float(quality[2:]) <= 0:
                    continue
            except ValueError:
                continue
        accepted.add(name.strip().lower())
    if "br" in accepted and "gzip" in accepted:
        return "br+gzip"
    if "gzip" in accepted:
        return "gzip"
    if "br" in accepted:
        return "br"
    return "identity"


_ORIGIN_ENCODING: Final = {"br+gzip": "br,gzip", "gzip": "gzip", "br": "br", "identity": None}
assert set(_ORIGIN_ENCODING) == set(ENCODINGS)


@dataclass(frozen=True, slots=True)
class PopSite:
    """Where a lab POP lives: its code, the AWS region it stands for, its address."""

    code: str
    region: str
    address: str


@dataclass(frozen=True, slots=True)
class Distribution:
    """The lab distribution: names, origin group and the origin custom headers."""

    distribution_id: str
    domain: str  # d111111abcdef8.cloudfront.net
    viewer_hosts: tuple[str, ...]  # Host values the distribution answers (domain + CNAMEs)
    bucket: str
    bucket_region: str
    origin_url: str  # the full origin: http(s)://host:port[/path]
    origin_custom_headers: tuple[tuple[str, str], ...]  # (("x-edgefill-queue", url),)
    failover_statuses: frozenset[int] = DEFAULT_FAILOVER_STATUSES
    forward_host: bool = True  # the origin request policy forwards the viewer's Host

    @property
    def bucket_domain(self) -> str:
        return f"{self.bucket}.s3.{self.bucket_region}.amazonaws.com"


@dataclass
class PopStats:
    """Counters of one POP (read by the demo, the tests and ``edgefill lab up``)."""

    requests: int = 0
    hits: int = 0
    misses: int = 0
    collapsed: int = 0  # misses answered by another viewer's fetch
    primary_fetches: int = 0
    failovers: int = 0  # fetches that went on to the secondary origin
    edge_invocations: int = 0
    stored: int = 0
    not_stored: int = 0  # bodies that did not reach the viewer in full
    errors: int = 0


@dataclass(frozen=True, slots=True)
class CachedObject:
    status: int
    headers: tuple[tuple[str, str], ...]
    path: Path
    size: int
    stored_at: float


@dataclass
class OriginResponse:
    """A response from an origin attempt, body still to be read."""

    status: int
    headers: list[tuple[str, str]]
    length: int | None
    chunks: Iterator[bytes]
    origin: str  # "s3", "custom" or "lambda" (a response generated by the function)
    close: Callable[[], None] = field(default=lambda: None)


class ViewerRequestError(RuntimeError):
    """The viewer-request function failed; CloudFront answers ``status`` (503)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class EdgeFunctionError(RuntimeError):
    """The origin-request function raised or returned something CloudFront rejects."""


class _KeyedLocks:
    """One lock per cache key while someone holds or waits for it (collapsed forwarding)."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[tuple[str, str, str], tuple[threading.Lock, int]] = {}

    @contextlib.contextmanager
    def hold(self, key: tuple[str, str, str]) -> Iterator[None]:
        """Hold ``key``'s lock; the lock is forgotten when nobody holds or waits for it."""
        with self._guard:
            lock, users = self._locks.get(key, (threading.Lock(), 0))
            self._locks[key] = (lock, users + 1)
        lock.acquire()
        try:
            yield
        finally:
            lock.release()
            with self._guard:
                lock, users = self._locks[key]
                if users == 1:
                    del self._locks[key]
                else:
                    self._locks[key] = (lock, users - 1)


class Pop:
    """One CloudFront POP: an HTTPS server, a cache, an origin group."""

    def __init__(
        self,
        site: PopSite,
        distribution: Distribution,
        port: int,
        tls_context: ssl.SSLContext | None,
        s3: Any,
        edge_handler: EdgeHandler,
        cache_dir: Path,
        origin_ca_bundle: str | None = None,
        origin_selector: OriginSelector | None = None,
    ) -> None:
        self.site = site
        self.distribution = distribution
        self.origin_selector = origin_selector
        self.stats = PopStats()
        self.history: deque[dict[str, Any]] = deque(maxlen=1000)  # recent requests, newest last
        # (wall-clock time, path) as each viewer request arrives, before any cache or origin
        # work: tests tell when requests started (across processes, hence time.time()).
        self.arrivals: deque[tuple[float, str]] = deque(maxlen=10000)
        self._s3 = s3
        self._edge_handler = edge_handler
        self._cache_dir = cache_dir / site.code
        self._cache_dir.mkdir(parents=True, exist_ok=True)
        self._cache: dict[tuple[str, str, str], CachedObject] = {}
        self._cache_lock = threading.Lock()
        self._stats_lock = threading.Lock()
        self.key_locks = _KeyedLocks()
        self._origin_ca_bundle = origin_ca_bundle
        self._server = _PopServer((site.address, port), _PopRequestHandler, tls_context)
        self._server.pop = self
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"pop-{self.site.code}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._server.close_connections()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        shutil.rmtree(self._cache_dir, ignore_errors=True)

    def cached(self, host: str, path: str, encoding: str) -> bool:
        """True when the POP holds ``path`` (with its query) for ``host`` and ``encoding``."""
        with self._cache_lock:
            return (host.lower(), path, encoding) in self._cache

    def invalidate(self, matches: Callable[[str], bool]) -> int:
        """Drop every cached object whose path ``matches`` (edgefill/lab/invalidations.py)."""
        with self._cache_lock:
            gone = [key for key in self._cache if matches(key[1])]
            for key in gone:
                del self._cache[key]
        return len(gone)

    def count(self, name: str, amount: int = 1) -> None:
        with self._stats_lock:
            setattr(self.stats, name, getattr(self.stats, name) + amount)

    # ---- cache -------------------------------------------------------------------
    def lookup(self, key: tuple[str, str, str]) -> CachedObject | None:
        with self._cache_lock:
            return self._cache.get(key)

    def new_cache_file(self) -> tuple[BinaryIO, Path]:
        handle, name = tempfile.mkstemp(dir=self._cache_dir, suffix=".part")
        return os.fdopen(handle, "wb"), Path(name)

    def store(
        self, key: tuple[str, str, str], response: OriginResponse, part: Path, size: int
    ) -> None:
        final = self._cache_dir / hashlib.sha256(repr(key).encode()).hexdigest()
        part.replace(final)
        entry = CachedObject(response.status, tuple(response.headers), final, size, time.time())
        with self._cache_lock:
            self._cache[key] = entry
        self.count("stored")

    # ---- origin group ------------------------------------------------------------
    def route(self, viewer: dict[str, Any]) -> Distribution:
        """The distribution as this viewer request sees it: the origin group a
        viewer-request function chose, else the cache behaviour's own."""
        if self.origin_selector is None:
            return self.distribution
        return self.origin_selector(viewer)

    def fetch(self, viewer: dict[str, Any]) -> OriginResponse:
        """One origin-group fetch for a viewer request: primary, then on a failover
        status the secondary, each behind the origin-request function."""
        self.count("primary_fetches")
        dist: Distribution = viewer.get("routing") or self.distribution
        request = self._invoke_edge(self._origin_request_event(viewer, secondary=False))
        if "status" in request:
            return _generated_response(request)
        try:
            response = self._fetch_s3(request, dist)
        except (BotoCoreError, OSError) as error:
            _log.warning("%s: primary origin unreachable (%s); failing over", self.site.code, error)
            response = None
        if response is not None and response.status not in dist.failover_statuses:
            return response
        if response is not None:
            response.close()
        self.count("failovers")
        request = self._invoke_edge(self._origin_request_event(viewer, secondary=True))
        if "status" in request:
            return _generated_response(request)
        return self._fetch_custom(request, dist)

    def _origin_request_event(self, viewer: dict[str, Any], secondary: bool) -> dict[str, Any]:
        dist: Distribution = viewer.get("routing") or self.distribution
        headers = {
            "x-forwarded-for": [{"key": "X-Forwarded-For", "value": viewer["client_ip"]}],
            "user-agent": [{"key": "User-Agent", "value": "Amazon CloudFront"}],
            "via": [{"key": "Via", "value": viewer["via"]}],
        }
        if viewer["origin_encoding"]:
            headers["accept-encoding"] = [
                {"key": "Accept-Encoding", "value": viewer["origin_encoding"]}
            ]
        if secondary:
            parts = urlsplit(dist.origin_url)
            host = viewer["host"] if dist.forward_host else str(parts.hostname)
            headers["host"] = [{"key": "Host", "value": host}]
            origin: dict[str, Any] = {
                "custom": {
                    "customHeaders": {
                        name: [{"key": name, "value": value}]
                        for name, value in dist.origin_custom_headers
                    },
                    "domainName": parts.hostname,
                    "keepaliveTimeout": 5,
                    "path": parts.path.rstrip("/"),
                    "port": parts.port or (443 if parts.scheme == "https" else 80),
                    "protocol": parts.scheme,
                    "readTimeout": 30,
                    "sslProtocols": ["TLSv1.2"],
                }
            }
        else:
            headers["host"] = [{"key": "Host", "value": dist.bucket_domain}]
            origin = {
                "s3": {
                    "authMethod": "none",  # OAC signs after the function runs
                    "customHeaders": {},
                    "domainName": dist.bucket_domain,
                    "path": "",
                    "region": dist.bucket_region,
                }
            }
        return {
            "Records": [
                {
                    "cf": {
                        "config": {
                            "distributionDomainName": dist.domain,
                            "distributionId": dist.distribution_id,
                            "eventType": "origin-request",
                            "requestId": viewer["request_id"],
                        },
                        "request": {
                            "clientIp": viewer["client_ip"],
                            "headers": headers,
                            "method": viewer["method"],
                            "origin": origin,
                            "querystring": viewer["query"],
                            "uri": viewer["uri"],
                        },
                    }
                }
            ]
        }

    def _invoke_edge(self, event: dict[str, Any]) -> dict[str, Any]:
        self.count("edge_invocations")
        context = LambdaContext(
            "us-east-1.edgefill-edge-origin-request", "us-east-1", "123456789012", 30
        )
        try:
            result = self._edge_handler(event, context)
        except Exception as error:
            raise EdgeFunctionError(f"the origin-request function raised {error!r}") from error
        if not isinstance(result, dict):
            raise EdgeFunctionError(f"the function returned {type(result).__name__}, not an object")
        if "status" in result:
            return result
        if not isinstance(result.get("uri"), str) or not result["uri"].startswith("/"):
            raise EdgeFunctionError("the returned request has no valid uri")
        if not isinstance(result.get("headers", {}), dict) or not isinstance(
            result.get("origin"), dict
        ):
            raise EdgeFunctionError("the returned request has malformed headers or origin")
        return result

    def _fetch_s3(self, request: dict[str, Any], dist: Distribution) -> OriginResponse:
        origin = request["origin"].get("s3")
        if not isinstance(origin, dict) or origin.get("domainName") != dist.bucket_domain:
            raise EdgeFunctionError(
                f"the function routed the primary to {origin!r:.120}, not the lab bucket"
            )
        key = unquote(request["uri"][1:])
        method = request.get("method", "GET")
        try:
            if method == "HEAD":
                answer = self._s3.head_object(Bucket=dist.bucket, Key=key)
            else:
                answer = self._s3.get_object(Bucket=dist.bucket, Key=key)
        except ClientError as error:
            status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 500))
            # Behind OAC without s3:ListBucket, S3 answers 403 for a missing key.
            if status == 404:
                status = 403
            return OriginResponse(status, [("Content-Type", "application/xml")], 0, iter(()), "s3")
        headers = [
            (name, str(answer[field_])) for field_, name in _S3_HEADERS if answer.get(field_)
        ]
        if answer.get("LastModified"):
            headers.append(
                ("Last-Modified", formatdate(answer["LastModified"].timestamp(), usegmt=True))
            )
        # CloudFront passes an object's user metadata through to viewers.
        headers += [(f"x-amz-meta-{k}", v) for k, v in (answer.get("Metadata") or {}).items()]
        body = answer.get("Body")
        chunks: Iterator[bytes] = iter(()) if body is None else body.iter_chunks(_CHUNK)
        return OriginResponse(
            200,
            headers,
            int(answer["ContentLength"]),
            chunks,
            "s3",
            close=(lambda: None) if body is None else body.close,
        )

    def _fetch_custom(self, request: dict[str, Any], dist: Distribution) -> OriginResponse:
        origin = request["origin"].get("custom")
        configured = urlsplit(dist.origin_url)
        configured_port = configured.port or (443 if configured.scheme == "https" else 80)
        if (
            not isinstance(origin, dict)
            or origin.get("domainName") != configured.hostname
            or int(origin.get("port", 0)) != configured_port
            or origin.get("protocol") != configured.scheme
        ):
            raise EdgeFunctionError(
                f"the function routed the secondary to {origin!r:.160}, not the full origin"
            )
        headers: dict[str, str] = {}
        for name, values in (request.get("headers") or {}).items():
            if isinstance(values, list) and values and isinstance(values[0], dict):
                headers[str(values[0].get("key") or name)] = str(values[0].get("value", ""))
        # CloudFront adds the origin's custom headers to the request it sends.
        for name, values in (origin.get("customHeaders") or {}).items():
            if isinstance(values, list) and values and isinstance(values[0], dict):
                headers[str(values[0].get("key") or name)] = str(values[0].get("value", ""))
        headers["X-Amz-Cf-Id"] = _cf_id()
        target = f"{origin.get('path', '')}{request['uri']}"
        if request.get("querystring"):
            target += f"?{request['querystring']}"
        timeout = float(origin.get("readTimeout", 30))
        connection: http.client.HTTPConnection
        if configured.scheme == "https":
            context = ssl.create_default_context(cafile=self._origin_ca_bundle)
            connection = http.client.HTTPSConnection(
                str(configured.hostname), configured_port, timeout=timeout, context=context
            )
        else:
            connection = http.client.HTTPConnection(
                str(configured.hostname), configured_port, timeout=timeout
            )
        connection.request(request.get("method", "GET"), target, headers=headers)
        answer = connection.getresponse()
        length_header = answer.getheader("Content-Length")
        response_headers = [
            (name, value) for name, value in answer.getheaders() if name.lower() not in _HOP_BY_HOP
        ]

        def chunks() -> Iterator[bytes]:
            while True:
                chunk = answer.read(_CHUNK)
                if not chunk:
                    return
                yield chunk

        def close() -> None:
            answer.close()
            connection.close()

        return OriginResponse(
            answer.status,
            response_headers,
            int(length_header) if length_header is not None else None,
            chunks(),
            "custom",
            close=close,
        )


def _generated_response(response: dict[str, Any]) -> OriginResponse:
    """A response the origin-request function generated instead of a request."""
    body = str(response.get("body", "")).encode()
    if response.get("bodyEncoding") == "base64":
        body = base64.b64decode(body)
    headers = [
        (str(values[0].get("key") or name), str(values[0].get("value", "")))
        for name, values in (response.get("headers") or {}).items()
        if isinstance(values, list) and values and isinstance(values[0], dict)
    ]
    return OriginResponse(int(response["status"]), headers, len(body), iter([body]), "lambda")


def _cf_id() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(42)).decode()


def _cacheable(response: OriginResponse) -> bool:
    if response.status != 200:
        return False
    for name, value in response.headers:
        lowered = value.lower()
        if name.lower() == "cache-control" and any(
            word in lowered for word in ("no-store", "private", "no-cache")
        ):
            return False
        if name.lower() == "set-cookie":
            return False
    return True


class _PopServer(TLSThreadingHTTPServer):
    """Keeps the viewer connections it serves, so stopping the POP can end keep-alive
    connections that warmers and viewers hold open (else their threads outlive the lab)."""

    pop: Pop

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A viewer or warmer that drops its connection is routine; anything else is logged
        (socketserver would print a traceback on stderr)."""
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError | ssl.SSLError | TimeoutError):
            _log.debug(
                "%s: connection from %s ended: %r", self.pop.site.code, client_address, error
            )
        else:
            _log.exception("%s: error serving %s", self.pop.site.code, client_address)

    def serve_http2(self, request: ssl.SSLSocket, client_address: tuple[str, int]) -> None:
        """An HTTP/2 viewer connection, kept with the others so ``stop`` can end it."""
        with self.connections_lock:
            self.connections.add(request)
        try:
            super().serve_http2(request, client_address)
        finally:
            with self.connections_lock:
                self.connections.discard(request)

    def close_connections(self, timeout: float = 5.0) -> None:
        with self.connections_lock:
            open_now = list(self.connections)
        for connection in open_now:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + timeout
        while self.connections and time.monotonic() < deadline:
            time.sleep(0.01)


class _ViewerGone(Exception):
    """The viewer closed its connection before the body ended."""


class _PopRequestHandler(BaseHTTPRequestHandler):
    """Answers viewers for the POP its server belongs to."""

    server: _PopServer

    def setup(self) -> None:
        super().setup()
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with self.server.connections_lock:
                self.server.connections.discard(self.connection)

    protocol_version = "HTTP/1.1"
    server_version = "CloudFront"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        _log.debug("%s %s", self.server.pop.site.code, format % args)

    def do_GET(self) -> None:  # noqa: N802
        self._serve(head=False)

    def do_HEAD(self) -> None:  # noqa: N802
        self._serve(head=True)

    def _serve(self, head: bool) -> None:
        self.server.pop.count("requests")
        self.server.pop.arrivals.append((time.time(), self.path))
        host = (self.headers.get("Host") or "").split(":")[0].lower()
        if host not in self.server.pop.distribution.viewer_hosts:
            self.server.pop.count("errors")
            self._send_error(403, "Bad request: this distribution does not answer that Host")
            return
        path = self.path if self.path.startswith("/") else "/"
        uri, _, query = path.partition("?")
        # A viewer-request function runs for every request, hits included, before the cache.
        try:
            routing = self.server.pop.route(
                {
                    "client_ip": self.client_address[0],
                    "host": host,
                    "uri": uri,
                    "query": query,
                    "method": "HEAD" if head else "GET",
                    "headers": {name.lower(): value for name, value in self.headers.items()},
                }
            )
        except ViewerRequestError as error:
            self.server.pop.count("errors")
            self._send_error(error.status, str(error))
            return
        encoding = normalize_accept_encoding(self.headers.get("Accept-Encoding"))
        key = (host, path, encoding)
        entry = self.server.pop.lookup(key)
        if entry is not None:
            self._send_cached(entry, head, key)
            return
        with self.server.pop.key_locks.hold(key):
            entry = self.server.pop.lookup(key)
            if entry is not None:
                self.server.pop.count("collapsed")
                self._send_cached(entry, head, key)
                return
            self.server.pop.count("misses")
            viewer = {
                "client_ip": self.client_address[0],
                "host": host,
                "uri": uri,
                "query": query,
                "method": "HEAD" if head else "GET",
                "request_id": _cf_id(),
                "origin_encoding": _ORIGIN_ENCODING[encoding],
                "via": f"1.1 {secrets.token_hex(16)}.cloudfront.net (CloudFront)",
                "routing": routing,
            }
            self._send_from_origin(viewer, key, head)

    def _send_cached(self, entry: CachedObject, head: bool, key: tuple[str, str, str]) -> None:
        self.server.pop.count("hits")
        age = str(int(time.time() - entry.stored_at))
        self._start(entry.status, entry.headers, entry.size, "Hit from cloudfront", age)
        self.server.pop.history.append({"path": key[1], "encoding": key[2], "x_cache": "Hit"})
        if head:
            return
        try:
            with entry.path.open("rb") as body:
                shutil.copyfileobj(body, self.wfile, _CHUNK)
        except OSError:
            self.close_connection = True

    def _send_from_origin(
        self, viewer: dict[str, Any], key: tuple[str, str, str], head: bool
    ) -> None:
        try:
            response = self.server.pop.fetch(viewer)
        except EdgeFunctionError as error:
            _log.error("%s: %s", self.server.pop.site.code, error)
            self.server.pop.count("errors")
            self._send_error(502, f"LambdaValidationError or LambdaExecutionError: {error}")
            return
        except (OSError, http.client.HTTPException) as error:
            self.server.pop.count("errors")
            self._send_error(502, f"The origin could not be reached: {error}")
            return
        x_cache = "Miss from cloudfront" if response.status < 400 else "Error from cloudfront"
        self.server.pop.history.append(
            {
                "path": key[1],
                "encoding": key[2],
                "x_cache": x_cache.split()[0],
                "origin": response.origin,
                "status": response.status,
            }
        )
        try:
            if response.length is None:
                self._send_spooled(response, head, x_cache)
            else:
                self._send_streamed(response, key, head, x_cache)
        finally:
            response.close()

    def _send_streamed(
        self, response: OriginResponse, key: tuple[str, str, str], head: bool, x_cache: str
    ) -> None:
        assert response.length is not None
        self._start(response.status, response.headers, response.length, x_cache)
        if head:
            return
        cacheable = _cacheable(response)
        sink, part = self.server.pop.new_cache_file() if cacheable else (None, None)
        sent = 0
        try:
            for chunk in response.chunks:
                chunk = chunk[: response.length - sent]
                if sink is not None:
                    sink.write(chunk)
                try:
                    self.wfile.write(chunk)
                except OSError as error:
                    raise _ViewerGone from error
                sent += len(chunk)
                if sent >= response.length:
                    break
        except (_ViewerGone, OSError, http.client.HTTPException) as error:
            _log.info(
                "%s: body of %s cut at %d bytes: %r", self.server.pop.site.code, key[1], sent, error
            )
        finally:
            if sink is not None:
                sink.close()
        if sent != response.length:
            # The viewer got a short body: end the connection so it notices; nothing cached.
            self.close_connection = True
            self.server.pop.count("not_stored")
            if part is not None:
                part.unlink(missing_ok=True)
            return
        if part is not None:
            self.server.pop.store(key, response, part, sent)

    def _send_spooled(self, response: OriginResponse, head: bool, x_cache: str) -> None:
        """An origin answer without Content-Length: read it whole, then send (not cached:
        a close-delimited body cannot be told apart from a cut one)."""
        with tempfile.TemporaryFile() as spool:
            size = 0
            for chunk in response.chunks:
                spool.write(chunk)
                size += len(chunk)
            self._start(response.status, response.headers, size, x_cache)
            if not head:
                spool.seek(0)
                shutil.copyfileobj(spool, self.wfile, _CHUNK)

    def _start(
        self,
        status: int,
        headers: tuple[tuple[str, str], ...] | list[tuple[str, str]],
        length: int,
        x_cache: str,
        age: str | None = None,
    ) -> None:
        self.send_response(status)
        for name, value in headers:
            if name.lower() not in _HOP_BY_HOP and name.lower() not in ("date", "server"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(length))
        if age is not None:
            self.send_header("Age", age)
        self.send_header("X-Cache", x_cache)
        self.send_header("Via", f"1.1 {secrets.token_hex(16)}.cloudfront.net (CloudFront)")
        self.send_header("X-Amz-Cf-Pop", self.server.pop.site.code)
        self.send_header("X-Amz-Cf-Id", _cf_id())
        self.end_headers()

    def _send_error(self, status: int, message: str) -> None:
        body = json.dumps({"error": message, "pop": self.server.pop.site.code}).encode()
        self._start(
            status, [("Content-Type", "application/json")], len(body), "Error from cloudfront"
        )
        if self.command != "HEAD":
            self.wfile.write(body)


def start_pops(
    sites: list[PopSite],
    distribution: Distribution,
    tls_context: ssl.SSLContext | None,
    s3: Any,
    edge_handler: EdgeHandler,
    cache_dir: Path,
    port: int = 0,
    origin_ca_bundle: str | None = None,
    attempts: int = 5,
    origin_selector: OriginSelector | None = None,
    edge_handler_for: Callable[[PopSite], EdgeHandler] | None = None,
) -> list[Pop]:
    """Start one POP per site, every one on the same port (the first POP picks a free one
    when ``port`` is 0; another process holding it on a later address means a new try).
    ``edge_handler_for`` gives each POP its own origin-request handler (its own Lambda@Edge
    container) instead of ``edge_handler`` for all."""
    last_error: OSError | None = None
    for _ in range(attempts):
        pops: list[Pop] = []
        chosen = port
        try:
            for site in sites:
                pop = Pop(
                    site,
                    distribution,
                    chosen,
                    tls_context,
                    s3,
                    edge_handler if edge_handler_for is None else edge_handler_for(site),
                    cache_dir,
                    origin_ca_bundle,
                    origin_selector,
                )
                pops.append(pop)
                chosen = pop.port
        except OSError as error:
            last_error = error
            for pop in pops:
                pop.stop()
            if port:
                break  # a fixed port that is taken will stay taken
            continue
        for pop in pops:
            pop.start()
        return pops
    raise OSError(f"cannot bind the lab POPs on one port: {last_error}")
