"""HTTP/2 to one CloudFront edge address, speaking as the viewer host.

HTTP/1.1 keep-alive carries one request per round trip per connection; HTTP/2 carries a
whole burst of requests on one connection in one round trip. ``Http2EdgeClient`` keeps one
TLS connection per (edge address, viewer host), offers ALPN ``h2`` and ``http/1.1``, and
runs many concurrent streams on it; an edge that does not select ``h2`` (or allows no
stream at all) is served by the base class, ``EdgeClient`` (HTTP/1.1 keep-alive pools),
and that choice is remembered for the edge. Every guarantee of ``EdgeClient`` holds:

- the TCP connection goes to the edge IP; the TLS SNI, the certificate check
  (``server_hostname``, ``check_hostname``) and ``:authority`` are the viewer host;
- every body is read to its end a chunk at a time and discarded (``keep_body`` aside);
  ``EdgeResponse`` carries the status and the length so the engine judges it as before;
- sockets are bounded and counted in ``connections``/``open_connections``/
  ``peak_open_connections`` with HTTP/1.1's: one per (edge, viewer host) in use, at most
  ``max_pools`` idle ones, and one short-lived probe per edge that turns out not to speak
  ``h2``. HTTP/1.1 fallback requests in flight are at most ``maxsize`` (a semaphore), so
  however many threads warm over HTTP/2, the fallback never opens more sockets than today.

Bounds on one connection: streams in flight ≤ min(``streams_per_edge``, the edge's
``SETTINGS_MAX_CONCURRENT_STREAMS``) (a thread waits for a free stream); memory ≤
``CONNECTION_WINDOW`` of received bytes not yet read by their threads (the edge may not
send more than the flow-control windows allow, and a window is reopened only after its
thread has counted and dropped the bytes), each stream at most ``STREAM_WINDOW``.

Failures stay with their streams: a stream that gets nothing for ``read_timeout`` (a
flow-control stall, a silent edge) is reset alone (``RST_STREAM CANCEL``); ``RST_STREAM``
and ``REFUSED_STREAM`` fail only that stream. A GOAWAY, a broken socket or a protocol error
ends the connection and the next request opens a new one. A stream the GOAWAY says was never
processed is sent once more on the new connection (RFC 9113 6.8: safe); the others still
unfinished fail, retryable (h2 closes its state machine on GOAWAY, so streams the edge would
still have finished are cut too, and the engine retries them).

Why ``h2`` over our own sockets rather than httpx (read in httpcore 1.0.9's source):
httpcore does pass ``extensions["sni_hostname"]`` as ``server_hostname`` (SNI and the
hostname check), but (1) its pool matches connections by origin (scheme, IP, port) only, so
two viewer hosts on one edge IP would share the first one's TLS connection and certificate;
(2) one read timeout or error fails every stream of the connection (``_read_incoming_data``
stores it for all), so one stalled stream fails its neighbours; (3) after a GOAWAY every
waiting stream raises, and a ``SETTINGS_MAX_CONCURRENT_STREAMS`` of 0 is ignored (h2 then
raises ``TooManyStreamsError``); (4) it has no hook to count sockets. Working around all
four is more code than this module, which uses h2 — the state machine httpcore itself
uses — and leaves sockets, TLS and threads to us.

Threads: one I/O thread per connection does every socket read and write (an OpenSSL
connection must not be used by two threads at once); request threads change the h2 state
under the connection's lock and wake the I/O thread to send what it produced.
"""

from __future__ import annotations

import contextlib
import dataclasses
import queue
import re
import select
import socket
import ssl
import threading
import time
from collections import OrderedDict
from typing import Any, Final, Literal

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings

from shared.config import PrewarmConfig
from shared.edge_http import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_POOLS,
    DEFAULT_READ_TIMEOUT,
    KEPT_HEADERS,
    USER_AGENT,
    EdgeClient,
    EdgeError,
    EdgeResponse,
    _content_length,
    trust_context,
)

H2: Final = "h2"
HTTP11: Final = "http/1.1"
# Streams one thread pool may run on one edge's connection unless the edge allows fewer.
# CloudFront announces 128; 100 leaves room while a stream's slot is being released.
DEFAULT_STREAMS_PER_EDGE: Final = 100
# Per-stream and per-connection receive windows: what the edge may send ahead of the
# threads reading. 256 KiB per stream keeps a 30 ms edge at ~8 MB/s per object; 8 MiB
# per connection is the most a connection ever buffers, whatever its streams.
STREAM_WINDOW: Final = 256 * 1024
CONNECTION_WINDOW: Final = 8 * 1024 * 1024
READ_BYTES: Final = 256 * 1024  # one read takes what a burst of responses brought
MAX_HEADER_LIST_BYTES: Final = 64 * 1024  # a hostile edge's headers cost at most this
# Edges remembered as HTTP/1.1 (ALPN without h2, or no streams allowed): a few bytes each.
MAX_FALLBACKS: Final = 1024
# How often an idle I/O thread wakes on its own (it is woken at once for any work).
IDLE_POLL_SECONDS: Final = 1.0
_H2_DEFAULT_WINDOW: Final = 65_535
_NOT_IN_A_HEADER: Final = re.compile(r"[\x00-\x20\x7f]")
# ``close`` waits this long per connection for its I/O thread to send GOAWAY and close.
CLOSE_WAIT_SECONDS: Final = 1.0


@dataclasses.dataclass(frozen=True, slots=True)
class _Fallback:
    """An edge served over HTTP/1.1, and why (``stream_limit`` 0: the edge allows no
    HTTP/2 stream; None: ALPN did not select h2)."""

    reason: str
    stream_limit: int | None = None


class _Gone(Exception):
    """The connection could take no new stream before anything was sent on it."""


class _NoStreams(Exception):
    """The edge allows no concurrent stream at all (SETTINGS_MAX_CONCURRENT_STREAMS 0)."""


class _Stream:
    """One request's events, queued by the I/O thread for the thread that made it."""

    __slots__ = ("events", "stream_id")

    def __init__(self, stream_id: int) -> None:
        self.stream_id = stream_id
        # ("headers", list) | ("data", bytes, flow-controlled length) | ("end",) |
        # ("reset", code) | ("gone", reason, unprocessed). Bounded by the stream's window.
        self.events: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()


class _Http2Connection:
    """One TLS connection speaking HTTP/2, its streams, and the I/O thread that pumps it."""

    def __init__(
        self,
        sock: ssl.SSLSocket,
        client: Http2EdgeClient,
        address: str,
        streams_per_edge: int,
        write_timeout: float,
    ) -> None:
        self._sock = sock
        self._client = client
        self.address = address
        self._local_limit = streams_per_edge
        self._write_timeout = write_timeout
        self._h2 = h2.connection.H2Connection(
            h2.config.H2Configuration(
                client_side=True,
                header_encoding=None,
                # Our own request headers, built from validated values (the engine's path
                # rules, the configuration's host): h2's per-request checks of them are
                # skipped (client CPU is what bounds a warm). What the edge sends is
                # still validated.
                validate_outbound_headers=False,
                normalize_outbound_headers=False,
            )
        )
        self._h2.local_settings = h2.settings.Settings(
            client=True,
            initial_values={
                h2.settings.SettingCodes.ENABLE_PUSH: 0,
                h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: STREAM_WINDOW,
                h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: MAX_HEADER_LIST_BYTES,
            },
        )
        self._h2.initiate_connection()
        self._h2.increment_flow_control_window(CONNECTION_WINDOW - _H2_DEFAULT_WINDOW)
        self._cond = threading.Condition()
        self._streams: dict[int, _Stream] = {}
        self._remote_limit: int | None = None  # until the edge's first SETTINGS
        self._finished = 0  # streams released: a waiting thread sees progress
        self.dead: str | None = None  # why no new stream may start
        self._closing = False
        # Bytes h2 produced for request threads, in order, for the I/O thread to send.
        self._outbox: list[bytes] = []
        self._wake_pending = False  # a wake-up byte is on its way to the I/O thread
        self.users = 0  # threads using it now (guarded by the client's lock)
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._thread = threading.Thread(target=self._pump, name=f"h2-{address}", daemon=True)

    # ---- life ---------------------------------------------------------------------
    def start(self, settings_timeout: float) -> None:
        """Start the I/O thread and wait for the edge's SETTINGS (its stream limit)."""
        self._thread.start()
        with self._cond:
            self._cond.wait_for(
                lambda: self._remote_limit is not None or self.dead is not None,
                settings_timeout,
            )
            if self.dead is None and self._remote_limit is None:
                self.dead = f"no HTTP/2 SETTINGS from {self.address} in {settings_timeout:g}s"
            dead = self.dead if self._remote_limit is None else None
        if dead is not None:
            self.close()
            raise EdgeError(f"no response from {self.address}: {dead}", True)

    @property
    def remote_limit(self) -> int:
        """The edge's SETTINGS_MAX_CONCURRENT_STREAMS (unlimited is 2**32 + 1)."""
        return self._remote_limit if self._remote_limit is not None else 0

    @property
    def limit(self) -> int:
        return min(self._local_limit, self.remote_limit)

    @property
    def usable(self) -> bool:
        return self.dead is None and not self._closing

    def join(self, timeout: float) -> None:
        """Wait for the I/O thread to have closed the socket (after ``close``)."""
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def close(self) -> None:
        """End the connection (GOAWAY, then the socket); streams in flight fail."""
        with self._cond:
            if not self._closing:
                self._closing = True
                with contextlib.suppress(h2.exceptions.ProtocolError):
                    self._h2.close_connection()
        self._wake()

    # ---- streams (request threads) ------------------------------------------------
    def open_stream(self, headers: list[tuple[bytes, bytes]], wait: float) -> _Stream:
        """Send a request's HEADERS on a free stream. Waits while the stream limit is
        reached; gives up after ``wait`` seconds in which no stream of this connection
        finished. Raises ``_Gone`` or ``_NoStreams`` before anything was sent."""
        with self._cond:
            progress, until = self._finished, time.monotonic() + wait
            while True:
                if not self.usable:
                    raise _Gone(self.dead or "closed")
                if self.limit == 0:
                    raise _NoStreams
                if len(self._streams) < self.limit:
                    stream = self._send_headers(headers)
                    if stream is not None:
                        wake = self._queue_output()
                        break
                if self._finished != progress:
                    progress, until = self._finished, time.monotonic() + wait
                left = until - time.monotonic()
                if left <= 0:
                    raise EdgeError(
                        f"no HTTP/2 stream free at {self.address} within {wait:g}s "
                        f"(the edge allows {self.remote_limit} at once)",
                        True,
                    )
                self._cond.wait(left)
        if wake:
            self._wake()
        return stream

    def _send_headers(self, headers: list[tuple[bytes, bytes]]) -> _Stream | None:
        # Called with the lock held. None: h2 counts more open streams than we do (one
        # just ended on the wire but its thread has not released it yet): wait a little.
        try:
            stream_id = self._h2.get_next_available_stream_id()
            self._h2.send_headers(stream_id, headers, end_stream=True)
        except h2.exceptions.TooManyStreamsError:
            return None
        except h2.exceptions.NoAvailableStreamIDError:
            self.dead = "stream identifiers used up"
            return None
        stream = _Stream(stream_id)
        self._streams[stream_id] = stream
        return stream

    def acknowledge(self, stream: _Stream, size: int) -> None:
        """The thread has read ``size`` bytes of ``stream``: the edge may send more."""
        with self._cond:
            if not self.usable:
                return
            with contextlib.suppress(h2.exceptions.ProtocolError):
                self._h2.acknowledge_received_data(size, stream.stream_id)
            # h2 sends WINDOW_UPDATE only once half a window is used: mostly nothing to send.
            wake = self._queue_output()
        if wake:
            self._wake()

    def release(self, stream: _Stream, ended: bool) -> None:
        """The thread is done with ``stream``; reset it if the edge is still sending."""
        with self._cond:
            if self._streams.pop(stream.stream_id, None) is not None:
                self._finished += 1
            if not ended and self.usable:
                with contextlib.suppress(h2.exceptions.ProtocolError):
                    self._h2.reset_stream(stream.stream_id, h2.errors.ErrorCodes.CANCEL)
            self._cond.notify()  # one stream is free: one waiting thread may take it
            wake = self._queue_output()
        if wake:
            self._wake()

    def _queue_output(self) -> bool:
        """Move what h2 wants sent to the outbox (lock held). True when the caller must
        wake the I/O thread: there is something to send and no wake-up is on its way yet
        (every syscall costs a thread a turn at the GIL, so wake-ups are coalesced)."""
        out = self._h2.data_to_send()
        if not out:
            return False
        self._outbox.append(out)
        if self._wake_pending:
            return False
        self._wake_pending = True
        return True

    # ---- I/O thread ---------------------------------------------------------------
    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            self._wake_w.send(b"\0")

    def _pump(self) -> None:
        reason = "the connection closed"
        try:
            self._sock.setblocking(False)
            while True:
                with self._cond:
                    out = b"".join(self._outbox) + self._h2.data_to_send()
                    self._outbox.clear()
                    self._wake_pending = False
                    closing = self._closing
                if out:
                    self._send_all(out)
                if closing:
                    reason = "closed by the warmer"
                    break
                data = self._receive()
                if data is None:
                    continue
                if not data:
                    reason = "the edge closed the connection"
                    break
                with self._cond:
                    self._dispatch(self._h2.receive_data(data))
                    out = b"".join(self._outbox) + self._h2.data_to_send()
                    self._outbox.clear()
                    gone = self.dead
                if gone is not None:  # GOAWAY: h2 takes no more frames; nothing to wait for
                    with contextlib.suppress(OSError, TimeoutError):
                        self._send_all(out)
                    reason = gone
                    break
                if out:
                    self._send_all(out)
        except h2.exceptions.ProtocolError as error:
            reason = f"HTTP/2 protocol error from the edge: {error!r}"[:300]
        except OSError as error:
            reason = f"connection broke: {error!r}"[:300]
        finally:
            self._shut(reason)

    def _receive(self) -> bytes | None:
        """Bytes from the edge (b"" when it hung up), or None when there are none yet: a
        request thread woke us to send, the idle poll passed, or TLS wants more first.
        A read is tried before waiting: data TLS already holds shows no readiness, and
        one syscall fewer per turn matters with many threads waiting for the GIL."""
        try:
            return self._sock.recv(READ_BYTES)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
            pass
        readable, _, _ = select.select([self._sock, self._wake_r], [], [], IDLE_POLL_SECONDS)
        if self._wake_r in readable:
            with contextlib.suppress(BlockingIOError, OSError):
                self._wake_r.recv(4096)
        if self._sock not in readable:
            return None
        try:
            return self._sock.recv(READ_BYTES)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
            return None

    def _send_all(self, data: bytes) -> None:
        send_all(self._sock, data, self._write_timeout, "the edge took no bytes")

    def _dispatch(self, events: list[h2.events.Event]) -> None:
        # Called with the lock held, by the I/O thread.
        for event in events:
            if isinstance(event, h2.events.RemoteSettingsChanged):
                self._remote_limit = self._h2.remote_settings.max_concurrent_streams
                self._cond.notify_all()  # the limit changed: every waiting thread looks
                continue
            if isinstance(event, h2.events.ConnectionTerminated):
                self._goaway(event)
                self._cond.notify_all()
                continue
            stream_id = getattr(event, "stream_id", None)
            stream = self._streams.get(stream_id) if stream_id is not None else None
            if stream is None:
                if isinstance(event, h2.events.DataReceived) and stream_id is not None:
                    # Nobody reads this stream any more: give the window back at once.
                    with contextlib.suppress(h2.exceptions.ProtocolError):
                        self._h2.acknowledge_received_data(event.flow_controlled_length, stream_id)
                continue
            if isinstance(event, h2.events.ResponseReceived):
                stream.events.put(("headers", event.headers))
            elif isinstance(event, h2.events.DataReceived):
                stream.events.put(("data", event.data, event.flow_controlled_length))
            elif isinstance(event, h2.events.StreamEnded):
                stream.events.put(("end",))
            elif isinstance(event, h2.events.StreamReset):
                stream.events.put(("reset", _code_name(event.error_code)))

    def _goaway(self, event: h2.events.ConnectionTerminated) -> None:
        last = event.last_stream_id if event.last_stream_id is not None else 0
        why = f"the edge sent GOAWAY ({_code_name(event.error_code)}, last stream {last})"
        self.dead = why
        for stream_id, stream in self._streams.items():
            if stream_id > last:
                stream.events.put(("gone", f"{why}: it never processed this request", True))
            else:
                stream.events.put(("gone", f"{why}: the connection ended mid-response", False))

    def _shut(self, reason: str) -> None:
        with self._cond:
            if self.dead is None:
                self.dead = reason
            for stream in self._streams.values():
                stream.events.put(("gone", self.dead, False))
            self._closing = True
            self._cond.notify_all()
        with contextlib.suppress(OSError):
            self._sock.close()
        for end in (self._wake_r, self._wake_w):
            end.close()
        self._client._ended(self)


class _Connecting:
    """A connection being opened for a key; other threads wait for its outcome."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.error: EdgeError | None = None


_Route = _Http2Connection | _Fallback


class Http2EdgeClient(EdgeClient):
    """``EdgeClient`` over HTTP/2: one connection per (edge address, viewer host), up to
    ``streams_per_edge`` streams on it; HTTP/1.1 keep-alive for an edge without ``h2``.

    Thread-safe, like the base class; each request is one thread's blocking call, so the
    streams in flight in total are the caller's threads. ``EdgeResponse.protocol`` says which
    protocol served a response and ``stream_limit`` the edge's stream limit, if known.
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
        streams_per_edge: int = DEFAULT_STREAMS_PER_EDGE,
    ) -> None:
        super().__init__(
            protocol, port, maxsize, connect_timeout, read_timeout, ca_bundle, max_pools
        )
        self.streams_per_edge = max(1, streams_per_edge)
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._h2_lock = threading.Lock()
        self._h2_context: ssl.SSLContext | None = None
        # Least recently used first; connections no thread uses beyond ``max_pools`` close.
        self._routes: OrderedDict[tuple[str, str], _Http2Connection] = OrderedDict()
        self._fallbacks: OrderedDict[tuple[str, str], _Fallback] = OrderedDict()
        self._connecting: dict[tuple[str, str], _Connecting] = {}
        # HTTP/1.1 requests in flight at once: the base class's pools stay within
        # ``maxsize`` connections however many threads the HTTP/2 streams need.
        self._http1_slots = threading.BoundedSemaphore(max(1, maxsize))
        self.h2_connections = 0  # HTTP/2 connections opened
        self._live: set[_Http2Connection] = set()  # whose socket is open (at most the above)

    # ---- public -------------------------------------------------------------------
    def get(
        self,
        address: str,
        viewer_host: str,
        path: str,
        accept_encoding: str | None,
        keep_body: int = 0,
    ) -> EdgeResponse:
        """As ``EdgeClient.get``, over HTTP/2 when the edge selects it."""
        return self._request("GET", address, viewer_host, path, accept_encoding, keep_body)

    def head(
        self, address: str, viewer_host: str, path: str, accept_encoding: str | None
    ) -> EdgeResponse:
        """As ``EdgeClient.head``, over HTTP/2 when the edge selects it."""
        return self._request("HEAD", address, viewer_host, path, accept_encoding, 0)

    def close(self) -> None:
        with self._h2_lock:
            connections = list(self._live)  # the routes' and those still winding down
            self._routes.clear()
        for connection in connections:
            connection.close()
        for connection in connections:
            connection.join(CLOSE_WAIT_SECONDS)
        super().close()

    # ---- routing ------------------------------------------------------------------
    def _request(
        self,
        method: str,
        address: str,
        viewer_host: str,
        path: str,
        accept_encoding: str | None,
        keep_body: int,
    ) -> EdgeResponse:
        if not path.startswith("/") or _NOT_IN_A_HEADER.search(path + viewer_host):
            # h2 does not check our own headers (see the connection's configuration).
            raise EdgeError(f"refused to send path {path[:80]!r} as {viewer_host[:80]!r}", False)
        key = (address, viewer_host.lower())
        if self.protocol == "https":
            # Twice at most: a connection found closed before anything was sent on it (an
            # idle edge hung up), or whose GOAWAY says the edge never processed the request
            # (RFC 9113 6.8: safe to send again), is replaced once, at no cost to the task.
            lost = "HTTP/2 connection lost twice"
            for _ in range(2):
                route = self._route(key, address, viewer_host)
                if isinstance(route, _Fallback):
                    return self._http1(
                        method, route, address, viewer_host, path, accept_encoding, keep_body
                    )
                try:
                    return self._exchange(
                        route, method, viewer_host, path, accept_encoding, keep_body
                    )
                except _Gone as gone:
                    lost = str(gone) or lost
                    self._forget(key, route)
                except _NoStreams:
                    self._fall_back(key, _Fallback("the edge allows no HTTP/2 stream", 0))
                finally:
                    self._unlease(key, route)
            fallback = self._fallbacks.get(key)
            if fallback is None:
                raise EdgeError(f"no response from {address}: {lost}", True)
            route = fallback
        else:
            route = _Fallback("plain http")
        return self._http1(method, route, address, viewer_host, path, accept_encoding, keep_body)

    def _unlease(self, key: tuple[str, str], connection: _Http2Connection) -> None:
        """One thread less on ``connection``; the last one out of a connection that is
        no longer the edge's (replaced, evicted in use, dead) closes it."""
        with self._h2_lock:
            connection.users -= 1
            orphan = connection.users == 0 and self._routes.get(key) is not connection
        if orphan:
            connection.close()

    def _http1(
        self,
        method: str,
        route: _Fallback,
        address: str,
        viewer_host: str,
        path: str,
        accept_encoding: str | None,
        keep_body: int,
    ) -> EdgeResponse:
        with self._http1_slots:
            if method == "HEAD":
                response = super().head(address, viewer_host, path, accept_encoding)
            else:
                response = super().get(address, viewer_host, path, accept_encoding, keep_body)
        if route.stream_limit is None:
            return response
        return dataclasses.replace(response, stream_limit=route.stream_limit)

    def _route(self, key: tuple[str, str], address: str, viewer_host: str) -> _Route:
        """The edge's live HTTP/2 connection (leased: ``users`` + 1), or its fallback;
        one thread connects while the others wait for its outcome."""
        while True:
            with self._h2_lock:
                fallback = self._fallbacks.get(key)
                if fallback is not None:
                    self._fallbacks.move_to_end(key)
                    return fallback
                connection = self._routes.get(key)
                if connection is not None and connection.usable:
                    self._routes.move_to_end(key)
                    connection.users += 1
                    return connection
                pending = self._connecting.get(key)
                mine = pending is None
                if pending is None:
                    pending = self._connecting[key] = _Connecting()
            if not mine:
                pending.done.wait(2 * self._connect_timeout + 1)
                if pending.error is not None:
                    raise pending.error
                continue
            try:
                self._connect_route(key, address, viewer_host)
            except EdgeError as error:
                pending.error = error
                raise
            finally:
                with self._h2_lock:
                    del self._connecting[key]
                pending.done.set()

    def _connect_route(self, key: tuple[str, str], address: str, viewer_host: str) -> None:
        outcome = self._connect(address, viewer_host)
        if isinstance(outcome, _Fallback):
            self._fall_back(key, outcome)
            return
        evicted: list[_Http2Connection] = []
        with self._h2_lock:
            old = self._routes.pop(key, None)
            self._routes[key] = outcome
            excess = len(self._routes) - self.max_pools
            for other_key, other in list(self._routes.items()):
                if excess <= 0:
                    break
                if other.users == 0 and other is not outcome:
                    evicted.append(self._routes.pop(other_key))
                    excess -= 1
        if old is not None and old.users == 0:
            evicted.append(old)
        for connection in evicted:
            connection.close()

    def _fall_back(self, key: tuple[str, str], fallback: _Fallback) -> None:
        with self._h2_lock:
            self._fallbacks[key] = fallback
            while len(self._fallbacks) > MAX_FALLBACKS:
                self._fallbacks.popitem(last=False)
            connection = self._routes.pop(key, None)
        if connection is not None:
            connection.close()

    def _ended(self, connection: _Http2Connection) -> None:
        """``connection``'s socket is closed (its I/O thread is ending)."""
        with self._h2_lock:
            self._live.discard(connection)
        self._closed()

    def _forget(self, key: tuple[str, str], connection: _Http2Connection) -> None:
        with self._h2_lock:
            if self._routes.get(key) is connection:
                del self._routes[key]

    def _tls_context(self) -> ssl.SSLContext:
        # Its own context: urllib3 sets ALPN "http/1.1" on the base class's.
        if self._h2_context is None:
            context = trust_context(self.ca_bundle)
            context.set_alpn_protocols([H2, HTTP11])
            self._h2_context = context
        return self._h2_context

    def _connect(self, address: str, viewer_host: str) -> _Route:
        """A TLS connection to ``address`` as ``viewer_host``: HTTP/2 when ALPN selects
        it and the edge allows streams, else the reason to use HTTP/1.1."""
        hostname = viewer_host.rsplit(":", 1)[0]  # cdn.example.com:8443 names the same cert
        self._reserve()
        try:
            raw = socket.create_connection((address, self.port), timeout=self._connect_timeout)
        except OSError as error:
            self._closed()
            raise EdgeError(f"no response from {address}: {error!r}", True) from None
        try:
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            # SNI and the certificate check both name the viewer host (check_hostname).
            sock = self._tls_context().wrap_socket(raw, server_hostname=hostname)
        except ssl.SSLError as error:
            raw.close()
            self._closed()
            raise EdgeError(f"TLS failed with {address} as {viewer_host}: {error}", False) from None
        except OSError as error:
            raw.close()
            self._closed()
            raise EdgeError(f"no response from {address}: {error!r}", True) from None
        chosen = sock.selected_alpn_protocol()
        if chosen != H2:
            sock.close()
            self._closed()
            return _Fallback(f"ALPN selected {chosen or 'nothing'}")
        connection = _Http2Connection(
            sock, self, address, self.streams_per_edge, self._connect_timeout
        )
        with self._h2_lock:
            self.h2_connections += 1
            self._live.add(connection)
        connection.start(self._connect_timeout)
        if connection.limit == 0:
            connection.close()
            return _Fallback("the edge allows no HTTP/2 stream", 0)
        return connection

    # ---- one exchange -------------------------------------------------------------
    def _exchange(
        self,
        connection: _Http2Connection,
        method: str,
        viewer_host: str,
        path: str,
        accept_encoding: str | None,
        keep_body: int,
    ) -> EdgeResponse:
        headers = [
            (b":method", method.encode()),
            (b":scheme", b"https"),
            (b":authority", viewer_host.encode()),
            (b":path", path.encode()),
            (b"user-agent", USER_AGENT.encode()),
        ]
        if accept_encoding is not None:  # none at all for CloudFront's identity key
            headers.append((b"accept-encoding", accept_encoding.encode()))
        started = time.perf_counter()
        stream = connection.open_stream(headers, self._read_timeout)
        where = f"{connection.address} (HTTP/2 stream {stream.stream_id})"
        ended = False
        bytes_read = 0
        kept = bytearray()  # at most keep_body bytes (0 for a warm: nothing is kept)
        try:
            event = self._next(stream, f"no response from {where}", 0)
            if event[0] == "gone" and event[2]:
                raise _Gone(f"{where}: {event[1]}")
            if event[0] != "headers":
                raise EdgeError(_ended_reason(event, where, None, None), True)
            status, response_headers = _status_and_headers(event[1], where)
            length = _content_length(response_headers.get("content-length"))
            while True:
                event = self._next(stream, f"body stalled after {{n}} bytes at {where}", bytes_read)
                if event[0] == "data":
                    bytes_read += len(event[1])
                    if len(kept) < keep_body:
                        kept += event[1][: keep_body - len(kept)]
                    connection.acknowledge(stream, event[2])
                elif event[0] == "end":
                    ended = True
                    break
                elif event[0] != "headers":  # trailers are ignored
                    reason = _ended_reason(event, where, bytes_read, length)
                    raise EdgeError(reason, True, bytes_read)
        finally:
            connection.release(stream, ended)
        return EdgeResponse(
            status=status,
            headers={
                name: response_headers[name.lower()]
                for name in KEPT_HEADERS
                if name.lower() in response_headers
            }
            if method == "GET"
            else _titled(response_headers),
            bytes_read=bytes_read,
            content_length=length,
            seconds=time.perf_counter() - started,
            body=bytes(kept),
            protocol=H2,
            stream_limit=connection.limit,
        )

    def _next(self, stream: _Stream, stalled: str, bytes_read: int) -> tuple[Any, ...]:
        """The stream's next event; a stream silent for ``read_timeout`` fails alone."""
        try:
            return stream.events.get(timeout=self._read_timeout)
        except queue.Empty:
            reason = stalled.format(n=bytes_read) + f": nothing for {self._read_timeout:g}s"
            raise EdgeError(reason, True, bytes_read) from None


def _status_and_headers(raw: list[tuple[bytes, bytes]], where: str) -> tuple[int, dict[str, str]]:
    headers: dict[str, str] = {}
    for name, value in raw:
        key = name.decode("ascii", "replace").lower()
        text = value.decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    status = headers.pop(":status", "")
    if len(status) != 3 or not status.isdigit():
        raise EdgeError(f"no usable response from {where}: status {status[:20]!r}", True)
    return int(status), headers


def _titled(headers: dict[str, str]) -> dict[str, str]:
    """Every response header under its usual capitalisation (what ``head`` callers read)."""
    return {
        "-".join(part.capitalize() for part in name.split("-")): v for name, v in headers.items()
    }


def _ended_reason(
    event: tuple[Any, ...], where: str, bytes_read: int | None, length: int | None
) -> str:
    if event[0] == "reset":
        what = f"reset the stream ({event[1]})"
        if event[1] == "REFUSED_STREAM":
            what = "refused the stream (REFUSED_STREAM): not processed"
        cause = f"{where}: the edge {what}"
    elif event[0] == "gone":
        cause = f"{where}: {event[1]}"
    else:
        cause = f"{where}: the stream ended before any response"
    if bytes_read is None:
        return f"no response from {cause}"
    if length is not None:
        return f"body ended after {bytes_read} of {length} bytes: {cause}"
    return f"body broke off after {bytes_read} bytes: {cause}"


def _code_name(code: Any) -> str:
    return getattr(code, "name", None) or str(code)


def edge_client_for(config: PrewarmConfig) -> EdgeClient:
    """The edge client a warm under ``config`` uses: ``Http2EdgeClient`` unless
    ``EDGEFILL_WARM_HTTP=1.1`` or plain ``http`` asks for HTTP/1.1 only."""
    common: dict[str, Any] = {
        "protocol": config.protocol,
        "port": config.port,
        "maxsize": config.concurrency,
        "read_timeout": config.request_timeout,
    }
    if not config.http2:
        return EdgeClient(**common)
    return Http2EdgeClient(**common, streams_per_edge=config.warm_streams_per_edge)


def send_all(sock: socket.socket, data: bytes, timeout: float, stalled: str) -> None:
    """Write all of ``data`` to a non-blocking (TLS) socket, waiting for room at most
    ``timeout`` seconds in all; ``TimeoutError(stalled)`` when the peer takes no more in
    time (an HTTP/2 peer whose flow control or socket never drains). Both ends of the
    lab's HTTP/2 use it: this client and ``edgefill/lab/h2_server.py``."""
    view = memoryview(data)
    until = time.monotonic() + timeout
    while view:
        try:
            view = view[sock.send(view) :]
        except (ssl.SSLWantWriteError, ssl.SSLWantReadError, BlockingIOError):
            left = until - time.monotonic()
            if left <= 0:
                raise TimeoutError(stalled) from None
            select.select([], [sock], [], left)
