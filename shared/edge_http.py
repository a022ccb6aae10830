"""HTTP to one CloudFront edge address, speaking as the viewer host.

A warmer must reach a chosen edge IP while CloudFront sees an ordinary viewer request:
the TCP connection goes to the IP, while the TLS SNI, the certificate check and the
``Host`` header all use the viewer host. ``EdgeClient`` keeps one urllib3 connection
pool per (edge address, viewer host), so connections are kept alive and reused per
edge, and reads every body to the end without keeping it (CloudFront does not cache an
object whose viewer left before the last byte).

Bounds (edge addresses rotate, and a container lives for hours): the pools live in an
LRU of ``max_pools`` entries and an evicted pool is closed; and the sockets open at
once never exceed ``maxsize`` (the warmer's concurrency, one request per thread) plus
``SPARE_CONNECTIONS``: before a new connection opens over that budget, idle connections
of the least recently used pools are closed first. Lambda gives a function 1,024 file
descriptors; without these bounds each edge ever seen kept up to ``maxsize`` idle
sockets, and past about 35 edges every warm failed with ``Too many open files``.

Trust follows ``REQUESTS_CA_BUNDLE`` as requests does (else certifi's bundle): the lab
points it at its own CA, production leaves it unset.
"""

from __future__ import annotations

import functools
import os
import queue
import ssl
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal

import certifi

from shared.header_numbers import header_number

if TYPE_CHECKING:
    from urllib3.connection import HTTPConnection
    from urllib3.connectionpool import HTTPConnectionPool

# urllib3 (and http.client under it) is imported when the first HTTP/1.1 pool is made, not
# with this module: a warm over HTTP/2 (shared/edge_http2.py, this class's subclass) never
# needs it, and `edgefill warm` started about 30 ms sooner without it (docs/BENCHMARKS.md).

# A chunk at a time is all the memory a body ever takes, whatever its size.
CHUNK_BYTES: Final = 64 * 1024
DEFAULT_CONNECT_TIMEOUT: Final = 5.0
DEFAULT_READ_TIMEOUT: Final = 30.0
USER_AGENT: Final = "edgefill-prewarm/1"
# The response headers a warm report uses; the rest is not worth copying per request.
KEPT_HEADERS: Final = ("X-Cache", "X-Amz-Cf-Pop", "Age", "Content-Type", "Content-Encoding")
# Sockets allowed beyond one per warm thread: room for a connection being replaced while
# its successor opens, without ever approaching Lambda's 1,024 descriptors.
SPARE_CONNECTIONS: Final = 4
# Pools kept (idle or not) when no thread is using them: a pool without connections is a
# few hundred bytes, so this bounds memory, while the socket budget bounds descriptors.
DEFAULT_MAX_POOLS: Final = 16


class EdgeError(Exception):
    """A request that produced no usable response: ``retryable`` tells whether trying again
    can help (a reset or timeout may pass; a certificate that names another host will not)."""

    def __init__(self, reason: str, retryable: bool, bytes_read: int = 0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.bytes_read = bytes_read


@dataclass(frozen=True, slots=True)
class EdgeResponse:
    """What a fully read response told us. The body is never kept, except the first
    ``keep_body`` bytes a caller asked for (a manifest to expand)."""

    status: int
    headers: Mapping[str, str]
    bytes_read: int
    content_length: int | None
    seconds: float
    body: bytes = b""
    protocol: str = "http/1.1"  # "h2" when it came over HTTP/2 (shared/edge_http2.py)
    stream_limit: int | None = None  # the edge's HTTP/2 streams at once, when known

    @property
    def complete(self) -> bool:
        """Every byte the edge announced arrived (always true without Content-Length)."""
        return self.content_length is None or self.bytes_read == self.content_length


def trust_context(ca_bundle: str) -> ssl.SSLContext:
    """A client TLS context that trusts ``ca_bundle`` (a file or, as requests allows for
    REQUESTS_CA_BUNDLE, a directory) and speaks TLS 1.2 or later; hostnames checked."""
    if os.path.isdir(ca_bundle):
        context = ssl.create_default_context(capath=ca_bundle)
    else:
        context = ssl.create_default_context(cafile=ca_bundle)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


class EdgeClient:
    """Keep-alive pools to edge addresses; ``get`` reads a whole response as a viewer would.

    Thread-safe. ``maxsize`` connections per edge at most: with ``maxsize`` ≥ the warmer's
    concurrency no request ever waits for or discards a connection. Whatever the number
    of edges, viewer hosts or ports seen, at most ``max_pools`` unused pools are kept and
    at most ``maxsize + SPARE_CONNECTIONS`` sockets are open (``open_connections``).
    """

    def __init__(
        self,
        protocol: Literal["https", "http"] = "https",
        port: int | None = None,
        maxsize: int = 32,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        ca_bundle: str | None = None,
        max_pools: int = DEFAULT_MAX_POOLS,
    ) -> None:
        self.protocol = protocol
        self.port = port if port is not None else (443 if protocol == "https" else 80)
        self.maxsize = maxsize
        self.max_pools = max(1, max_pools)
        self.max_open = maxsize + SPARE_CONNECTIONS
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.ca_bundle = ca_bundle or os.environ.get("REQUESTS_CA_BUNDLE") or certifi.where()
        # Re-entrant: closing a socket under the lock reports back through ``_closed``.
        self._lock = threading.RLock()
        # Least recently used first. Bounded: at most ``max_pools`` entries beyond those a
        # thread is using right now (``_leases``), and threads are the warmer's concurrency.
        self._pools: OrderedDict[tuple[str, str], HTTPConnectionPool] = OrderedDict()
        self._leases: dict[tuple[str, str], int] = {}
        self._context: ssl.SSLContext | None = None
        self.connections = 0  # TCP connections opened (each one a TLS handshake over https)
        self.open_connections = 0  # sockets open now
        self.peak_open_connections = 0
        self.evicted_pools = 0

    def _ssl_context(self) -> ssl.SSLContext:
        # One context for every pool: the CA bundle is parsed once, not per connection.
        if self._context is None:
            self._context = trust_context(self.ca_bundle)
        return self._context

    @property
    def pools(self) -> int:
        """Pools kept now (in use or idle)."""
        with self._lock:
            return len(self._pools)

    def _lease(self, address: str, viewer_host: str) -> tuple[tuple[str, str], HTTPConnectionPool]:
        """The keep-alive pool to ``address`` that presents itself as ``viewer_host``,
        marked in use until ``_release``: a pool in use is never evicted."""
        key = (address, viewer_host.lower())
        with self._lock:
            pool = self._pools.get(key)
            if pool is None:
                pool = self._new_pool(address, viewer_host)
                self._pools[key] = pool
                # Closed under the lock: an evicted pool's sockets, still counted open,
                # are never out of ``_reserve``'s sight.
                for old in self._evict_unused():
                    old.close()
            else:
                self._pools.move_to_end(key)
            self._leases[key] = self._leases.get(key, 0) + 1
        return key, pool

    def _release(self, key: tuple[str, str]) -> None:
        with self._lock:
            left = self._leases[key] - 1
            if left:
                self._leases[key] = left
            else:
                del self._leases[key]

    def _evict_unused(self) -> list[HTTPConnectionPool]:
        """Pools beyond ``max_pools``, least recently used first, that no thread uses."""
        # Called with the lock held.
        evicted: list[HTTPConnectionPool] = []
        excess = len(self._pools) - self.max_pools
        for key in list(self._pools):
            if excess <= 0:
                break
            if key not in self._leases:
                evicted.append(self._pools.pop(key))
                excess -= 1
        self.evicted_pools += len(evicted)
        return evicted

    def _new_pool(self, address: str, viewer_host: str) -> HTTPConnectionPool:
        import urllib3
        from urllib3.connection import HTTPConnection, HTTPSConnection
        from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

        common: dict[str, Any] = {
            "port": self.port,
            "maxsize": self.maxsize,
            "block": False,
            "timeout": urllib3.Timeout(connect=self.connect_timeout, read=self.read_timeout),
            "retries": False,  # the warmer owns retries: it backs off with jitter
        }
        if self.protocol == "http":
            plain = HTTPConnectionPool(address, **common)
            plain.ConnectionCls = _counting(HTTPConnection, self)
            return plain
        # A Host with a port (cdn.example.com:8443) names the same certificate as without.
        hostname = viewer_host.rsplit(":", 1)[0]
        secure = HTTPSConnectionPool(
            address,
            ssl_context=self._ssl_context(),
            cert_reqs="CERT_REQUIRED",
            server_hostname=hostname,  # SNI: CloudFront picks the certificate by it
            assert_hostname=hostname,  # the certificate must name the viewer host
            **common,
        )
        secure.ConnectionCls = _counting(HTTPSConnection, self)  # type: ignore[assignment]
        return secure

    def _reserve(self) -> None:
        """Count one more socket as open, closing idle connections first (least recently
        used pool first) while the budget is spent. The check, the closing and the count
        happen under one lock, so threads connecting at once cannot all slip under the
        budget, nor one count a socket another is closing. In-use sockets are at most one
        per thread, so only more threads than ``maxsize`` could pass the budget: then the
        connection still opens (a warm never waits for one)."""
        with self._lock:
            for pool in self._pools.values():
                if self.open_connections < self.max_open:
                    break
                _close_idle(pool, self._has_room)
            self._count_open()

    def _count_open(self) -> None:
        # Called with the lock held.
        self.connections += 1
        self.open_connections += 1
        self.peak_open_connections = max(self.peak_open_connections, self.open_connections)

    def _has_room(self) -> bool:
        with self._lock:
            return self.open_connections < self.max_open

    def _closed(self) -> None:
        with self._lock:
            self.open_connections -= 1

    def get(
        self,
        address: str,
        viewer_host: str,
        path: str,
        accept_encoding: str | None,
        keep_body: int = 0,
    ) -> EdgeResponse:
        """GET ``path`` from ``address`` as ``viewer_host`` and read the body to its end.

        ``accept_encoding=None`` sends no Accept-Encoding at all (CloudFront's ``identity``
        key). Raises ``EdgeError`` when no complete response could be read; a body cut
        short is an error, never a success. ``keep_body`` > 0 keeps the body's first
        ``keep_body`` bytes in ``EdgeResponse.body`` (the rest is still read, not kept).
        """
        from urllib3.util import SKIP_HEADER

        headers = {
            "Host": viewer_host,
            "User-Agent": USER_AGENT,
            # http.client would add "Accept-Encoding: identity" on its own; SKIP_HEADER
            # keeps the identity variant free of the header, as a bare viewer sends it.
            "Accept-Encoding": accept_encoding if accept_encoding is not None else SKIP_HEADER,
        }
        key, pool = self._lease(address, viewer_host)
        try:
            return self._get(pool, address, viewer_host, path, headers, keep_body)
        finally:
            self._release(key)

    def _get(
        self,
        pool: HTTPConnectionPool,
        address: str,
        viewer_host: str,
        path: str,
        headers: dict[str, str],
        keep_body: int = 0,
    ) -> EdgeResponse:
        from urllib3.exceptions import HTTPError, ProtocolError, SSLError

        started = time.perf_counter()
        bytes_read = 0
        kept = bytearray()  # at most keep_body bytes (0 for a warm: nothing is kept)
        try:
            response = pool.urlopen(
                "GET",
                path,
                headers=headers,
                redirect=False,
                preload_content=False,
                decode_content=False,
                assert_same_host=False,
            )
        except SSLError as error:
            raise EdgeError(f"TLS failed with {address} as {viewer_host}: {error}", False) from None
        except HTTPError as error:
            raise EdgeError(f"no response from {address}: {_reason(error)}", True) from None
        length = _content_length(response.headers.get("Content-Length"))
        try:
            for chunk in response.stream(CHUNK_BYTES, decode_content=False):
                bytes_read += len(chunk)
                if len(kept) < keep_body:
                    kept += chunk[: keep_body - len(kept)]
        except (HTTPError, OSError) as error:
            response.close()
            if isinstance(error, ProtocolError) and length is not None:
                reason = f"body ended after {bytes_read} of {length} bytes"
            else:
                reason = f"body broke off after {bytes_read} bytes: {_reason(error)}"
            raise EdgeError(reason, True, bytes_read) from None
        response.release_conn()
        return EdgeResponse(
            status=response.status,
            headers={
                name: response.headers[name] for name in KEPT_HEADERS if name in response.headers
            },
            bytes_read=bytes_read,
            content_length=length,
            seconds=time.perf_counter() - started,
            body=bytes(kept),
        )

    def head(
        self, address: str, viewer_host: str, path: str, accept_encoding: str | None
    ) -> EdgeResponse:
        """HEAD ``path`` at ``address`` as ``viewer_host`` (``edgefill check``), through the
        same pools and TLS checks as ``get``; every response header is kept."""
        from urllib3.exceptions import HTTPError, SSLError
        from urllib3.util import SKIP_HEADER

        headers = {
            "Host": viewer_host,
            "User-Agent": USER_AGENT,
            "Accept-Encoding": accept_encoding if accept_encoding is not None else SKIP_HEADER,
        }
        key, pool = self._lease(address, viewer_host)
        started = time.perf_counter()
        try:
            response = pool.urlopen(
                "HEAD",
                path,
                headers=headers,
                redirect=False,
                preload_content=False,
                decode_content=False,
                assert_same_host=False,
            )
            # A HEAD has no body, but http.client only forgets a response once it is read
            # (or garbage-collected). Released unread, the connection could be taken by
            # another thread while this response object lives, and its next request
            # would fail with ResponseNotReady. Reading the empty body closes it first.
            response.drain_conn()
            response.release_conn()
        except SSLError as error:
            raise EdgeError(f"TLS failed with {address} as {viewer_host}: {error}", False) from None
        except HTTPError as error:
            raise EdgeError(f"no response from {address}: {_reason(error)}", True) from None
        finally:
            self._release(key)
        return EdgeResponse(
            status=response.status,
            headers=dict(response.headers.items()),
            bytes_read=0,
            content_length=_content_length(response.headers.get("Content-Length")),
            seconds=time.perf_counter() - started,
        )

    def close(self) -> None:
        """Close every pool; connections in use close when their request ends."""
        with self._lock:
            pools = list(self._pools.values())
            self._pools.clear()
        for pool in pools:
            pool.close()


@functools.cache
def _whole_response() -> type:
    import http.client

    class WholeResponse(http.client.HTTPResponse):
        """Reads the socket a chunk at a time rather than 8 KiB at a time: a typical
        response (headers and body) then costs one read, not three."""

        def __init__(self, sock: Any, *args: Any, **kwargs: Any) -> None:
            super().__init__(sock, *args, **kwargs)
            small, self.fp = self.fp, sock.makefile("rb", buffering=CHUNK_BYTES)
            small.close()  # nothing was read through it yet; closing leaves the socket open

    return WholeResponse


def _counting(base: type[HTTPConnection], client: EdgeClient) -> type[HTTPConnection]:
    """A connection class that asks ``client`` for room before it opens a socket and
    reports each socket it opens and closes, so the client knows how many are open."""

    class Counted(base):  # type: ignore[valid-type,misc]
        response_class = _whole_response()
        _counted_open = False

        def connect(self) -> None:
            client._reserve()
            try:
                super().connect()
            except BaseException:
                client._closed()
                raise
            self._counted_open = True

        def close(self) -> None:
            try:
                super().close()
            finally:
                if self._counted_open:
                    self._counted_open = False
                    client._closed()

    return Counted


def _close_idle(pool: HTTPConnectionPool, enough: Callable[[], bool]) -> None:
    """Close the connections waiting idle in ``pool`` until ``enough()``.

    Each idle connection taken out is replaced by ``None`` (urllib3's empty slot), so the
    pool keeps its size and simply opens a fresh connection the next time it needs one.
    """
    slots = pool.pool
    if slots is None:  # closed already
        return
    taken = 0
    while not enough():
        try:
            conn = slots.get(block=False)
        except queue.Empty:
            break
        taken += 1
        if conn is not None:
            conn.close()
    for _ in range(taken):
        try:
            slots.put(None, block=False)
        except queue.Full:  # a thread returned a connection meanwhile: its slot is taken
            break


def _content_length(raw: str | None) -> int | None:
    return None if raw is None else header_number(raw.split(",")[0])


def _reason(error: BaseException) -> str:
    # urllib3 nests the useful cause (ConnectionResetError, timeout) a level or two down.
    text = str(error) or type(error).__name__
    return text if len(text) <= 300 else text[:297] + "..."
