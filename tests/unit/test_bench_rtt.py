"""The placement bench's round-trip emulation (bench/rtt.py) charges what it claims.

Lower bounds only: a loaded machine may make a request slower, never faster than its
round trips; the proxy's own counts say how many round trips it charged."""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bench.rtt import RTTProxy

RTT = 0.050


class _Answer(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: a second request reuses the connection

    def do_GET(self) -> None:  # noqa: N802
        body = b"ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, int]]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Answer)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield ("127.0.0.1", httpd.server_address[1])
    httpd.shutdown()
    httpd.server_close()


def _get(connection: http.client.HTTPConnection) -> float:
    started = time.perf_counter()
    connection.request("GET", "/")
    response = connection.getresponse()
    assert response.status == 200 and response.read() == b"ok"
    return time.perf_counter() - started


def test_a_request_pays_its_round_trips(server: tuple[str, int]) -> None:
    with RTTProxy(server, RTT) as proxy:
        host, port = proxy.address
        connection = http.client.HTTPConnection(host, port, timeout=10)
        # New connection: the TCP handshake, then the request/response exchange.
        assert _get(connection) >= 2 * RTT
        assert (proxy.counts.connections, proxy.counts.exchanges) == (1, 1)
        # Same connection again: one round trip, no handshake.
        assert _get(connection) >= RTT
        assert (proxy.counts.connections, proxy.counts.exchanges) == (1, 2)
        connection.close()


def test_zero_rtt_forwards_unchanged(server: tuple[str, int]) -> None:
    with RTTProxy(server, 0.0) as proxy:
        connection = http.client.HTTPConnection(*proxy.address, timeout=10)
        _get(connection)
        connection.close()
        assert proxy.counts.exchanges == 1


@pytest.mark.parametrize("rtt", [-0.001, 10.0, float("nan")])
def test_an_impossible_rtt_is_refused(server: tuple[str, int], rtt: float) -> None:
    with pytest.raises(ValueError, match="rtt"):
        RTTProxy(server, rtt)


def test_a_refused_target_ends_the_client_connection() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()  # nobody listens here once the probe closes
    with RTTProxy(closed, RTT) as proxy:
        connection = http.client.HTTPConnection(*proxy.address, timeout=10)
        with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
            _get(connection)
        connection.close()
        assert proxy.counts.connections == 0
