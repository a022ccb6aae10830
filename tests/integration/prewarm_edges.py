"""Local HTTPS "CloudFront edges" for the prewarm tests: one per 127.0.0.x, one shared port.

Each edge speaks HTTP/2 and HTTP/1.1 (ALPN, as CloudFront), records what it saw (SNI, Host
or ``:authority``, Accept-Encoding, path), answers with X-Cache
and X-Amz-Cf-Pop like CloudFront, and can misbehave per path: ``flaky:N`` (503 for the
first N requests), ``reset`` (closes the connection before answering), ``short`` (announces
more bytes than it sends), ``404``. ``documents`` serves given bodies (playlists) with
their Content-Type instead of the generated ones.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import h2.errors
import pytest

from edgefill.lab.dns import LabDNSServer
from edgefill.lab.h2_server import H2ServerConnection, H2ServerStream, answer_with
from edgefill.lab.tls import LabCA, TLSThreadingHTTPServer
from shared.config import PrewarmConfig
from shared.edge_http import EdgeClient
from shared.edge_http2 import Http2EdgeClient
from shared.edns import REGION_SUBNETS

BODY_REPEAT = 2000  # bodies of a few tens of KB: several chunks each


def body_for(path: str, encoding: str | None) -> bytes:
    return (f"{path}|{encoding or 'identity'}|".encode()) * BODY_REPEAT


@dataclass(frozen=True)
class Seen:
    edge: str
    path: str
    host: str | None
    accept_encoding: str | None


class _EdgeHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as CloudFront does
    server: _EdgeServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        edge = self.server.edge
        encoding = self.headers.get("Accept-Encoding")
        edge.record(Seen(edge.address, self.path, self.headers.get("Host"), encoding))
        fault = edge.fault_for(self.path)
        if fault == "reset":
            self.close_connection = True
            self.connection.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
            )
            return
        if fault == "503":
            self._answer(503, b"busy")
            return
        if fault == "404":
            self._answer(404, b"not found")
            return
        body, content_type = edge.documents.get(self.path, (body_for(self.path, encoding), None))
        key = (self.headers.get("Host"), self.path, encoding)
        hit = edge.cache_hit(key)
        if fault == "short":
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Cache", "Miss from cloudfront")
            self.send_header("X-Amz-Cf-Pop", edge.pop)
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.close_connection = True
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        if content_type is not None:
            self.send_header("Content-Type", content_type)
        self.send_header("X-Cache", "Hit from cloudfront" if hit else "Miss from cloudfront")
        self.send_header("X-Amz-Cf-Pop", edge.pop)
        self.end_headers()
        self.wfile.write(body)

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Amz-Cf-Pop", self.server.edge.pop)
        self.end_headers()
        self.wfile.write(body)


class _EdgeServer(TLSThreadingHTTPServer):
    edge: FakeEdge

    def serve_http2(self, request: ssl.SSLSocket, client_address: tuple[str, int]) -> None:
        """HTTP/2 with the edge's stream limit and its HTTP/2 faults (see ``H2_FAULTS``)."""
        edge = self.edge
        answer = answer_with(_EdgeHandler, self, client_address)

        def handle(stream: H2ServerStream) -> None:
            # Counted as HTTP/2 counts them, when the stream arrives: a handler thread
            # outlives its stream's END_STREAM, so counting threads would see the next
            # stream of a one-stream edge overlap the one just ended.
            edge.count_streams(stream.connection.open_streams())
            fault = edge.h2_fault_for(stream.path)
            if fault is None:
                answer(stream)
            else:
                edge.misbehave(fault, stream)

        H2ServerConnection(request, handle, max_concurrent_streams=edge.max_streams).serve()


# HTTP/2 faults per path (``FakeEdge.h2_faults``), each as a misbehaving CloudFront edge:
# "rst" resets the stream after half the body; "refuse" answers REFUSED_STREAM; "stall"
# sends the headers and a first chunk, then nothing more (as if the flow-control window
# never reopened) until the viewer gives up; "goaway" sends GOAWAY naming the stream
# before this one as the last processed, then ends the connection; "goaway-once" does so
# for the first request of that path only.
H2_FAULTS = ("rst", "refuse", "stall", "goaway", "goaway-once")


class FakeEdge:
    """One HTTPS edge on ``address``:``port`` whose certificate covers ``cert_names``.

    ``max_streams`` is the SETTINGS_MAX_CONCURRENT_STREAMS it announces over HTTP/2;
    ``alpn`` what it offers (``("http/1.1",)``: an edge without HTTP/2)."""

    def __init__(
        self,
        address: str,
        ca: LabCA | None,
        cert_names: tuple[str, ...],
        pop: str,
        max_streams: int = 128,
        alpn: tuple[str, ...] = ("h2", "http/1.1"),
    ) -> None:
        self.address = address
        self.pop = pop
        self.max_streams = max_streams
        self.h2_faults: dict[str, str] = {}
        self.peak_streams = 0  # streams served at once on one edge, over HTTP/2
        # No CA: a plain HTTP edge (EDGEFILL_PROTOCOL=http).
        self._context = ca.server_context(*cert_names, alpn=alpn) if ca is not None else None
        self.sni: list[str | None] = []
        if self._context is not None:
            self._context.sni_callback = self._on_sni
        self.seen: list[Seen] = []
        self.faults: dict[str, str] = {}
        self.documents: dict[str, tuple[bytes, str | None]] = {}  # path → (body, type)
        self._counts: dict[str, int] = {}
        self._cache: set[tuple[Any, ...]] = set()
        self._lock = threading.Lock()
        self._server: _EdgeServer | None = None
        self._thread: threading.Thread | None = None

    def _on_sni(self, _sock: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
        with self._lock:
            self.sni.append(name)

    def record(self, seen: Seen) -> None:
        with self._lock:
            self.seen.append(seen)

    def cache_hit(self, key: tuple[Any, ...]) -> bool:
        with self._lock:
            hit = key in self._cache
            self._cache.add(key)
            return hit

    def fault_for(self, path: str) -> str | None:
        with self._lock:
            fault = self.faults.get(path)
            self._counts[path] = self._counts.get(path, 0) + 1
            if fault and fault.startswith("flaky:"):
                return "503" if self._counts[path] <= int(fault.split(":")[1]) else None
            return fault

    def count_streams(self, open_now: int) -> None:
        with self._lock:
            self.peak_streams = max(self.peak_streams, open_now)

    def h2_fault_for(self, path: str) -> str | None:
        with self._lock:
            fault = self.h2_faults.get(path)
            if fault == "goaway-once":
                del self.h2_faults[path]
                return "goaway"
            return fault

    def misbehave(self, fault: str, stream: H2ServerStream) -> None:
        """Answer ``stream`` with the HTTP/2 ``fault`` (one of ``H2_FAULTS``)."""
        self.record(Seen(self.address, stream.path, stream.headers.get(":authority"), None))
        if fault == "refuse":
            stream.reset(h2.errors.ErrorCodes.REFUSED_STREAM)
        elif fault == "goaway":
            stream.connection.goaway(last_stream_id=max(0, stream.stream_id - 2))
        else:  # "rst" and "stall" start an ordinary answer
            body = body_for(stream.path, stream.headers.get("accept-encoding"))
            stream.respond(200, [("content-length", str(len(body))), ("x-amz-cf-pop", self.pop)])
            stream.send(body[: len(body) // 2])
            if fault == "rst":
                stream.reset(h2.errors.ErrorCodes.INTERNAL_ERROR)
            else:
                stream.wait_closed(60)  # until the viewer resets it

    def reset(self) -> None:
        with self._lock:
            self.h2_faults.clear()
            self.peak_streams = 0
            self.sni.clear()
            self.seen.clear()
            self.faults.clear()
            self.documents.clear()
            self._counts.clear()
            self._cache.clear()

    def start(self, port: int) -> int:
        self._server = _EdgeServer((self.address, port), _EdgeHandler, self._context)
        self._server.edge = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )
        self._thread.start()
        return int(self._server.server_address[1])

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def start_edges(edges: list[FakeEdge]) -> int:
    """Start every edge on one port (EDGEFILL_EDGE_PORT is one number for all edges)."""
    for _ in range(20):
        port = 0
        started: list[FakeEdge] = []
        try:
            for edge in edges:
                port = edge.start(port)
                started.append(edge)
            return port
        except OSError:
            for edge in started:
                edge.stop()
    raise OSError("could not start the edges on one shared port")


def edge_client(port: int, warm_http: str = "2", **options: Any) -> EdgeClient:
    """The client a warm uses: HTTP/2 to each edge (``warm_http="2"``, the default and
    production's) or HTTP/1.1 keep-alive only (``"1.1"``, as ``EDGEFILL_WARM_HTTP``)."""
    if warm_http == "2":
        return Http2EdgeClient(port=port, **options)
    return EdgeClient(port=port, **options)


@pytest.fixture(params=["2", "1.1"], ids=["h2", "http1.1"])
def warm_http(request: pytest.FixtureRequest) -> str:
    """Runs a test once over HTTP/2 and once with HTTP/1.1 forced."""
    return str(request.param)


DOMAIN = "d111abc.cloudfront.net"
VIEWER = "cdn.example.com"
EU_SUBNET = "192.0.2.0/24"  # an override of the built-in table, as EDGEFILL_REGION_SUBNETS


@dataclass
class Lab:
    ca: LabCA
    dns: LabDNSServer
    edges: dict[str, FakeEdge]
    port: int

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            "EDGEFILL_DISTRIBUTION_DOMAIN": DOMAIN,
            "EDGEFILL_VIEWER_HOST": VIEWER,
            "EDGEFILL_RESOLVER": self.dns.resolver,
            "EDGEFILL_EDGE_PORT": str(self.port),
            "EDGEFILL_ALLOW_PRIVATE_EDGES": "true",  # edges on 127.0.0.x
            "EDGEFILL_REGION_SUBNETS": json.dumps({"eu-west-1": EU_SUBNET}),
        }
        env.update(extra)
        return env

    def config(self, **extra: str) -> PrewarmConfig:
        return PrewarmConfig.from_env(self.env(**extra))


@pytest.fixture(scope="module")
def lab_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    ca = LabCA(Path(tmp_path_factory.mktemp("ca")))
    edges = {
        "127.0.0.2": FakeEdge("127.0.0.2", ca, (VIEWER,), "IAD89-C1"),
        "127.0.0.3": FakeEdge("127.0.0.3", ca, (VIEWER,), "NRT20-P2"),
        "127.0.0.4": FakeEdge("127.0.0.4", ca, (VIEWER,), "DUB56-P1"),
        # A certificate for another name: verification must refuse it.
        "127.0.0.5": FakeEdge("127.0.0.5", ca, ("other.example",), "FRA2-C1"),
    }
    port = start_edges(list(edges.values()))
    dns_server = LabDNSServer(
        DOMAIN,
        subnet_answers={
            REGION_SUBNETS["us-east-1"]: "127.0.0.2",
            REGION_SUBNETS["ap-northeast-1"]: "127.0.0.3",
            EU_SUBNET: "127.0.0.4",
        },
        pop_answers={
            "NRT20-P2": "127.0.0.3",
            "HKG60-C1": "127.0.0.3",  # answers with X-Amz-Cf-Pop NRT20-P2: a mismatch
            "FRA2-C1": "127.0.0.5",
            "SFO5-C1": "127.0.0.9",  # nothing listens there: a dead edge
        },
        default_address="127.0.0.2",
        ttl=60,
    ).start()
    yield Lab(ca, dns_server, edges, port)
    dns_server.stop()
    for edge in edges.values():
        edge.stop()


@pytest.fixture
def lab(lab_servers: Lab, monkeypatch: pytest.MonkeyPatch) -> Lab:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(lab_servers.ca.bundle_path))
    lab_servers.dns.reset_counts()
    lab_servers.dns.set_fault(None)
    for edge in lab_servers.edges.values():
        edge.reset()
    return lab_servers
