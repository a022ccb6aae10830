"""``Http2EdgeClient`` on its own: memory stays flat whatever the body's size, HEAD
(``edgefill check``) works over HTTP/2 as over HTTP/1.1, and ``submit`` runs many requests
from one thread, each ``done`` called once, those over the stream limit waiting in the
connection's queue rather than in threads."""

from __future__ import annotations

import socket
import ssl
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from edgefill.lab.h2_server import H2ServerConnection, H2ServerStream
from edgefill.lab.tls import LabCA
from shared.edge_http import EdgeError, EdgeResponse
from shared.edge_http2 import CONNECTION_WINDOW, Http2EdgeClient

VIEWER = "cdn.example.com"
CHUNK = b"x" * (64 * 1024)
BODY_BYTES = 48 * 1024 * 1024  # six times the most a connection may buffer


class BigBodyEdge:
    """An HTTP/2 edge answering every GET with ``body_bytes`` sent a chunk at a time (the
    same chunk object each time: the server itself holds no body), allowing
    ``max_streams`` streams at once."""

    def __init__(
        self,
        ca: LabCA,
        body_bytes: int = BODY_BYTES,
        max_streams: int = 128,
        addresses: tuple[str, ...] = ("127.0.0.1",),
    ) -> None:
        self.body_bytes = body_bytes
        self.max_streams = max_streams
        self.peak = 0  # streams answered at once
        self._active = 0
        self._count_lock = threading.Lock()
        self._context = ca.server_context(VIEWER)
        # One port on each address (edges share the client's one port, as CloudFront's do)
        self._listeners = [socket.create_server((addresses[0], 0))]
        self.port = self._listeners[0].getsockname()[1]
        self._listeners += [socket.create_server((a, self.port)) for a in addresses[1:]]
        for listener in self._listeners:
            threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                raw, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(raw,), daemon=True).start()

    def _serve(self, raw: socket.socket) -> None:
        try:
            sock = self._context.wrap_socket(raw, server_side=True)
        except (OSError, ssl.SSLError):
            return
        H2ServerConnection(sock, self._answer, max_concurrent_streams=self.max_streams).serve()

    def _answer(self, stream: H2ServerStream) -> None:
        with self._count_lock:
            self._active += 1
            self.peak = max(self.peak, self._active)
        try:
            length = 0 if stream.method == "HEAD" else self.body_bytes
            headers = [
                ("content-length", str(self.body_bytes)),
                ("x-cache", "Miss from cloudfront"),
            ]
            stream.respond(200, headers, end=stream.method == "HEAD")
            while length > 0:
                stream.send(CHUNK[:length])
                length -= len(CHUNK)
            stream.end()
        finally:
            with self._count_lock:
                self._active -= 1

    def stop(self) -> None:
        for listener in self._listeners:
            listener.close()


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
    edge, ca = big_edge
    client = Http2EdgeClient(port=edge.port, ca_bundle=str(ca.bundle_path))
    try:
        client.get("127.0.0.1", VIEWER, "/warm-up", None)  # a live connection to the edge
        with pytest.raises(EdgeError) as error:
            client.get("127.0.0.1", host, path, None)
    finally:
        client.close()
    assert not error.value.retryable and "refused to send" in error.value.reason


@pytest.fixture(scope="module")
def narrow_edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[BigBodyEdge, LabCA]]:
    """Small bodies, and two streams at a time: a caller's burst must queue."""
    ca = LabCA(Path(tmp_path_factory.mktemp("ca")))
    edge = BigBodyEdge(ca, body_bytes=3000, max_streams=2)
    yield edge, ca
    edge.stop()


class Outcomes:
    """What ``done`` was called with, from which thread, and how often."""

    def __init__(self) -> None:
        self.results: dict[str, list[EdgeResponse | EdgeError]] = {}
        self.threads: set[str] = set()
        self._lock = threading.Lock()
        self.all_in = threading.Condition(self._lock)

    def done_for(self, key: str) -> Callable[[EdgeResponse | EdgeError], None]:
        def done(outcome: EdgeResponse | EdgeError) -> None:
            with self._lock:
                self.results.setdefault(key, []).append(outcome)
                self.threads.add(threading.current_thread().name)
                self.all_in.notify_all()

        return done

    def wait_for(self, count: int, timeout: float = 30.0) -> None:
        with self._lock:
            assert self.all_in.wait_for(lambda: len(self.results) >= count, timeout)


def test_given_a_burst_submitted_from_one_thread_then_each_done_is_called_once_by_the_io_thread(
    narrow_edge: tuple[BigBodyEdge, LabCA],
) -> None:
    # Given an edge that allows two streams at once and a client allowing 100 per edge
    edge, ca = narrow_edge
    client = Http2EdgeClient(port=edge.port, ca_bundle=str(ca.bundle_path))
    outcomes = Outcomes()
    # The edge serves from this process too: only the client's threads count ("h2-…")
    before = {thread.ident for thread in threading.enumerate()}
    try:
        # When one thread submits 40 requests without waiting
        for n in range(40):
            client.submit("127.0.0.1", VIEWER, f"/q/{n}", "gzip", outcomes.done_for(f"/q/{n}"))
        threads_during = [
            t for t in threading.enumerate() if t.ident not in before and t.name.startswith("h2-")
        ]
        outcomes.wait_for(40)
    finally:
        client.close()
    # Then every request was answered in full, once each, never more than two at a time
    assert sorted(outcomes.results) == sorted(f"/q/{n}" for n in range(40))
    for answers in outcomes.results.values():
        (answer,) = answers
        assert isinstance(answer, EdgeResponse) and answer.protocol == "h2"
        assert answer.status == 200 and answer.complete and answer.bytes_read == 3000
        assert answer.stream_limit == 2
    assert edge.peak <= 2 and client.h2_connections == 1
    # And the 38 over the limit waited in the connection's queue, not in threads: the
    # client added its I/O thread and one connecting thread at most, and done ran there
    assert len(threads_during) <= 2, threads_during
    assert all(name.startswith("h2-") for name in outcomes.threads)


def test_given_a_path_the_client_refuses_when_submitted_then_done_says_so_and_nothing_is_sent(
    narrow_edge: tuple[BigBodyEdge, LabCA],
) -> None:
    edge, ca = narrow_edge
    client = Http2EdgeClient(port=edge.port, ca_bundle=str(ca.bundle_path))
    outcomes = Outcomes()
    try:
        client.submit("127.0.0.1", VIEWER, "/a\r\nx-evil: 1", None, outcomes.done_for("evil"))
        outcomes.wait_for(1)
    finally:
        client.close()
    ((refused,),) = outcomes.results.values()
    assert isinstance(refused, EdgeError) and not refused.retryable
    assert "refused to send" in refused.reason
    assert client.connections == 0  # not even a connection was opened for it


def test_given_a_closed_client_when_a_request_is_submitted_then_done_fails_it_retryable(
    narrow_edge: tuple[BigBodyEdge, LabCA],
) -> None:
    edge, ca = narrow_edge
    client = Http2EdgeClient(port=edge.port, ca_bundle=str(ca.bundle_path))
    client.get("127.0.0.1", VIEWER, "/before", None)
    client.close()
    outcomes = Outcomes()
    client.submit("127.0.0.1", VIEWER, "/after", None, outcomes.done_for("after"))
    outcomes.wait_for(1)
    ((late,),) = outcomes.results.values()
    assert isinstance(late, EdgeError) and late.retryable and "client closed" in late.reason
    assert client.h2_connections == 1 and client.open_connections == 0


def test_given_an_edge_that_never_answers_then_submitted_requests_fail_alone_by_their_deadline(
    tmp_path: Path,
) -> None:
    # Given an edge that completes TLS and SETTINGS, then answers no stream at all
    ca = LabCA(tmp_path)
    context = ca.server_context(VIEWER)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def silent(stream: H2ServerStream) -> None:
        return  # never responds: the stream stays open until the viewer gives up

    def serve() -> None:
        raw, _ = listener.accept()
        sock = context.wrap_socket(raw, server_side=True)
        H2ServerConnection(sock, silent).serve()

    threading.Thread(target=serve, daemon=True).start()
    client = Http2EdgeClient(port=port, ca_bundle=str(ca.bundle_path), read_timeout=0.5)
    outcomes = Outcomes()
    try:
        # When three requests are submitted
        for n in range(3):
            client.submit("127.0.0.1", VIEWER, f"/s/{n}", None, outcomes.done_for(f"/s/{n}"))
        outcomes.wait_for(3)
    finally:
        client.close()
        listener.close()
    # Then each failed once, retryable, by its own read deadline, nothing read
    for answers in outcomes.results.values():
        (answer,) = answers
        assert isinstance(answer, EdgeError) and answer.retryable and answer.bytes_read == 0
        assert "nothing for 0.5s" in answer.reason and "HTTP/2 stream" in answer.reason


def test_given_more_edges_than_pools_then_only_connections_idle_for_a_while_are_closed(
    tmp_path: Path,
) -> None:
    # Given three edges and a client that keeps one idle connection
    ca = LabCA(tmp_path)
    edges = BigBodyEdge(ca, body_bytes=100, addresses=("127.0.0.2", "127.0.0.3", "127.0.0.4"))
    client = Http2EdgeClient(port=edges.port, ca_bundle=str(ca.bundle_path), max_pools=1)
    try:
        # When the first edge's stream has just ended and the second edge's connection opens
        assert client.get("127.0.0.2", VIEWER, "/a", None).complete
        assert client.get("127.0.0.3", VIEWER, "/b", None).complete
        # Then the first is still open (between two flights, not idle) and serves again
        assert client.get("127.0.0.2", VIEWER, "/c", None).complete
        assert (client.h2_connections, client.open_connections) == (2, 2)
        # And once connections count as idle at once, opening the third closes the others
        client.evictable_after = 0.0
        assert client.get("127.0.0.4", VIEWER, "/d", None).complete
        deadline = time.monotonic() + 10
        while client.open_connections > 1 and time.monotonic() < deadline:
            time.sleep(0.01)  # the evicted connections' I/O threads close their sockets
        assert (client.h2_connections, client.open_connections) == (3, 1)
    finally:
        client.close()
        edges.stop()
