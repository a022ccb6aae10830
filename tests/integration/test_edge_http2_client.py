"""``Http2EdgeClient`` on its own: memory stays flat whatever the body's size, and HEAD
(``edgefill check``) works over HTTP/2 as over HTTP/1.1."""

from __future__ import annotations

import socket
import ssl
import threading
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgefill.lab.h2_server import H2ServerConnection, H2ServerStream
from edgefill.lab.tls import LabCA
from shared.edge_http2 import CONNECTION_WINDOW, Http2EdgeClient

VIEWER = "cdn.example.com"
CHUNK = b"x" * (64 * 1024)
BODY_BYTES = 48 * 1024 * 1024  # six times the most a connection may buffer


class BigBodyEdge:
    """An HTTP/2 edge answering every GET with ``BODY_BYTES`` sent a chunk at a time (the
    same chunk object each time: the server itself holds no body)."""

    def __init__(self, ca: LabCA) -> None:
        self._context = ca.server_context(VIEWER)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                raw, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(raw,), daemon=True).start()

    def _serve(self, raw: socket.socket) -> None:
        try:
            sock = self._context.wrap_socket(raw, server_side=True)
        except (OSError, ssl.SSLError):
            return
        H2ServerConnection(sock, self._answer).serve()

    def _answer(self, stream: H2ServerStream) -> None:
        length = 0 if stream.method == "HEAD" else BODY_BYTES
        headers = [("content-length", str(BODY_BYTES)), ("x-cache", "Miss from cloudfront")]
        stream.respond(200, headers, end=stream.method == "HEAD")
        while length > 0:
            stream.send(CHUNK)
            length -= len(CHUNK)
        stream.end()

    def stop(self) -> None:
        self._listener.close()


@pytest.fixture(scope="module")
def big_edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[BigBodyEdge, LabCA]]:
    ca = LabCA(Path(tmp_path_factory.mktemp("ca")))
    edge = BigBodyEdge(ca)
    yield edge, ca
    edge.stop()


def test_given_a_body_larger_than_every_window_when_read_then_memory_stays_flat(
    big_edge: tuple[BigBodyEdge, LabCA],
) -> None:
    # Given an edge sending a 48 MiB body over HTTP/2
    edge, ca = big_edge
    client = Http2EdgeClient(port=edge.port, ca_bundle=str(ca.bundle_path))
    # When the client reads it (the edge runs in this process too: its bytes count as well)
    tracemalloc.start()
    try:
        response = client.get("127.0.0.1", VIEWER, "/big.bin", None)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        client.close()
    # Then every byte was read and none kept, and memory never held more than the windows
    assert response.protocol == "h2" and response.status == 200 and response.complete
    assert response.bytes_read == BODY_BYTES and response.body == b""
    assert peak < 2 * CONNECTION_WINDOW, f"peak {peak / 2**20:.1f} MiB"


def test_given_a_head_over_http2_then_every_header_is_kept_under_its_usual_name(
    big_edge: tuple[BigBodyEdge, LabCA],
) -> None:
    edge, ca = big_edge
    client = Http2EdgeClient(port=edge.port, ca_bundle=str(ca.bundle_path))
    try:
        response = client.head("127.0.0.1", VIEWER, "/big.bin", "gzip")
    finally:
        client.close()
    assert response.protocol == "h2" and response.bytes_read == 0
    assert response.headers["X-Cache"] == "Miss from cloudfront"
    assert response.content_length == BODY_BYTES


def test_given_a_viewer_host_the_certificate_does_not_name_then_no_stream_is_sent(
    big_edge: tuple[BigBodyEdge, LabCA],
) -> None:
    from shared.edge_http import EdgeError

    edge, ca = big_edge
    client = Http2EdgeClient(port=edge.port, ca_bundle=str(ca.bundle_path))
    try:
        with pytest.raises(EdgeError) as error:
            client.get("127.0.0.1", "other.example", "/big.bin", None)
    finally:
        client.close()
    assert not error.value.retryable and "TLS failed" in error.value.reason
    assert client.h2_connections == 0 and client.open_connections == 0


@pytest.mark.parametrize(
    ("path", "host"),
    [("/a b", VIEWER), ("/a\r\nx-evil: 1", VIEWER), ("no-slash", VIEWER), ("/a", "cdn\n.x")],
)
def test_given_a_path_or_host_with_control_characters_then_nothing_is_sent(
    big_edge: tuple[BigBodyEdge, LabCA], path: str, host: str
) -> None:
    from shared.edge_http import EdgeError

    edge, ca = big_edge
    client = Http2EdgeClient(port=edge.port, ca_bundle=str(ca.bundle_path))
    try:
        client.get("127.0.0.1", VIEWER, "/warm-up", None)  # a live connection to the edge
        with pytest.raises(EdgeError) as error:
            client.get("127.0.0.1", host, path, None)
    finally:
        client.close()
    assert not error.value.retryable and "refused to send" in error.value.reason
