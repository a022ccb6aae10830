"""HTTP to one CloudFront edge address, speaking as the viewer host.

A warmer must reach a chosen edge IP while CloudFront sees an ordinary viewer request:
the TCP connection goes to the IP, while the TLS SNI, the certificate check and the
``Host`` header all use the viewer host. ``EdgeClient`` keeps one urllib3 connection
pool per (edge address, viewer host), so connections are kept alive and reused per
edge, and reads every body to the end without keeping it (CloudFront does not cache an
object whose viewer left before the last byte).

Trust follows ``REQUESTS_CA_BUNDLE`` as requests does (else certifi's bundle): the lab
points it at its own CA, production leaves it unset.
"""

from __future__ import annotations

import http.client
import os
import ssl
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

import certifi
import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import HTTPError, ProtocolError
from urllib3.util import SKIP_HEADER

# A chunk at a time is all the memory a body ever takes, whatever its size.
CHUNK_BYTES: Final = 64 * 1024
DEFAULT_CONNECT_TIMEOUT: Final = 5.0
DEFAULT_READ_TIMEOUT: Final = 30.0
USER_AGENT: Final = "edgefill-prewarm/1"
# The response headers a warm report uses; the rest is not worth copying per request.
KEPT_HEADERS: Final = ("X-Cache", "X-Amz-Cf-Pop", "Age", "Content-Type", "Content-Encoding")


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
    """What a fully read response told us; the body itself is never kept."""

    status: int
    headers: Mapping[str, str]
    bytes_read: int
    content_length: int | None
    seconds: float

    @property
    def complete(self) -> bool:
        """Every byte the edge announced arrived (always true without Content-Length)."""
        return self.content_length is None or self.bytes_read == self.content_length


class EdgeClient:
    """Keep-alive pools to edge addresses; ``get`` reads a whole response as a viewer would.

    Thread-safe. ``maxsize`` connections per edge at most: with ``maxsize`` ≥ the warmer's
    concurrency no request ever waits for or discards a connection.
    """

    def __init__(
        self,
        protocol: Literal["https", "http"] = "https",
        port: int | None = None,
        maxsize: int = 32,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        ca_bundle: str | None = None,
    ) -> None:
        self.protocol = protocol
        self.port = port if port is not None else (443 if protocol == "https" else 80)
        self.maxsize = maxsize
        self.timeout = urllib3.Timeout(connect=connect_timeout, read=read_timeout)
        self.ca_bundle = ca_bundle or os.environ.get("REQUESTS_CA_BUNDLE") or certifi.where()
        self._lock = threading.Lock()
        # Bounded by edges × viewer hosts of a run: a handful of pools.
        self._pools: dict[tuple[str, str], HTTPConnectionPool] = {}
        self._context: ssl.SSLContext | None = None
        self.connections = 0  # TCP connections opened (each one a TLS handshake over https)

    def _ssl_context(self) -> ssl.SSLContext:
        # One context for every pool: the CA bundle is parsed once, not per connection.
        if self._context is None:
            # REQUESTS_CA_BUNDLE may name a file or, as requests allows, a directory.
            if os.path.isdir(self.ca_bundle):
                context = ssl.create_default_context(capath=self.ca_bundle)
            else:
                context = ssl.create_default_context(cafile=self.ca_bundle)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            self._context = context
        return self._context

    def pool(self, address: str, viewer_host: str) -> HTTPConnectionPool:
        """The keep-alive pool to ``address`` that presents itself as ``viewer_host``."""
        key = (address, viewer_host.lower())
        with self._lock:
            pool = self._pools.get(key)
            if pool is None:
                pool = self._new_pool(address, viewer_host)
                self._pools[key] = pool
            return pool

    def _new_pool(self, address: str, viewer_host: str) -> HTTPConnectionPool:
        counted = self._count_connection
        common: dict[str, Any] = {
            "port": self.port,
            "maxsize": self.maxsize,
            "block": False,
            "timeout": self.timeout,
            "retries": False,  # the warmer owns retries: it backs off with jitter
        }
        if self.protocol == "http":
            plain = HTTPConnectionPool(address, **common)
            plain.ConnectionCls = _counting(HTTPConnection, counted)
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
        secure.ConnectionCls = _counting(HTTPSConnection, counted)  # type: ignore[assignment]
        return secure

    def _count_connection(self) -> None:
        with self._lock:
            self.connections += 1

    def get(
        self,
        address: str,
        viewer_host: str,
        path: str,
        accept_encoding: str | None,
    ) -> EdgeResponse:
        """GET ``path`` from ``address`` as ``viewer_host`` and read the body to its end.

        ``accept_encoding=None`` sends no Accept-Encoding at all (CloudFront's ``identity``
        key). Raises ``EdgeError`` when no complete response could be read; a body cut
        short is an error, never a success.
        """
        headers = {
            "Host": viewer_host,
            "User-Agent": USER_AGENT,
            # http.client would add "Accept-Encoding: identity" on its own; SKIP_HEADER
            # keeps the identity variant free of the header, as a bare viewer sends it.
            "Accept-Encoding": accept_encoding if accept_encoding is not None else SKIP_HEADER,
        }
        pool = self.pool(address, viewer_host)
        started = time.perf_counter()
        bytes_read = 0
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
        except urllib3.exceptions.SSLError as error:
            raise EdgeError(f"TLS failed with {address} as {viewer_host}: {error}", False) from None
        except HTTPError as error:
            raise EdgeError(f"no response from {address}: {_reason(error)}", True) from None
        length = _content_length(response.headers.get("Content-Length"))
        try:
            for chunk in response.stream(CHUNK_BYTES, decode_content=False):
                bytes_read += len(chunk)
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
        )

    def close(self) -> None:
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.close()


class _WholeResponse(http.client.HTTPResponse):
    """Reads the socket a chunk at a time rather than 8 KiB at a time: a typical response
    (headers and body) then costs one read, not three."""

    def __init__(self, sock: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(sock, *args, **kwargs)
        small, self.fp = self.fp, sock.makefile("rb", buffering=CHUNK_BYTES)
        small.close()  # nothing was read through it yet; closing leaves the socket open


def _counting(base: type[HTTPConnection], on_connect: Any) -> type[HTTPConnection]:
    """A connection class that reports each new TCP (and TLS) connection it opens."""

    class Counted(base):  # type: ignore[valid-type,misc]
        response_class = _WholeResponse

        def connect(self) -> None:
            on_connect()
            super().connect()

    return Counted


def _content_length(raw: str | None) -> int | None:
    if raw is None:
        return None
    try:
        value = int(raw.split(",")[0].strip())
    except ValueError:
        return None
    return value if value >= 0 else None


def _reason(error: BaseException) -> str:
    # urllib3 nests the useful cause (ConnectionResetError, timeout) a level or two down.
    text = str(error) or type(error).__name__
    return text if len(text) <= 300 else text[:297] + "..."
