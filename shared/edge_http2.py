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
  ``max_pools`` idle ones (idle: no stream for ``EVICTABLE_AFTER_IDLE_SECONDS``, so the
  gap between two flights does not close a connection), and one short-lived probe per
  edge that turns out not to speak ``h2``. HTTP/1.1 fallback requests run in a pool of
  ``maxsize`` threads inside the client, so however many HTTP/2 streams a caller runs,
  the fallback never opens more sockets than today.

Requests without a thread each: ``submit`` starts a request and returns at once; the
connection's I/O thread completes the stream (counts and drops the body, judges nothing)
and calls ``done`` once with the ``EdgeResponse`` or the ``EdgeError``. ``get``/``head`` are
``submit`` and a wait, for callers that have a thread per request anyway.

Bounds on one connection: streams in flight ≤ min(``streams_per_edge``, the edge's
``SETTINGS_MAX_CONCURRENT_STREAMS``); the requests beyond wait in the connection's own
queue (FIFO), which holds no more than the caller submitted. Memory: each DATA frame is
counted and dropped as it is read and its window given back at once, so nothing is held
beyond one read (``READ_BYTES``) and the edge can never send more than the windows allow
(``CONNECTION_WINDOW``, each stream ``STREAM_WINDOW``).

Failures stay with their streams: a stream that gets no frame for ``read_timeout`` (a
flow-control stall, a silent edge) is reset alone (``RST_STREAM CANCEL``) by a deadline the
I/O thread checks (the earliest one bounds its wait); a request that waited as long for a
free stream while none ended fails alone too. ``RST_STREAM`` and ``REFUSED_STREAM`` fail
only that stream. A GOAWAY, a broken socket or a protocol error ends the connection and the
next request opens a new one. A stream the GOAWAY says was never processed, and a request
still waiting for a stream, is sent once more on the new connection (RFC 9113 6.8: safe);
the others still unfinished fail, retryable (h2 closes its state machine on GOAWAY, so
streams the edge would still have finished are cut too, and the engine retries them).

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
connection must not be used by two threads at once) and completes its streams; a caller's
``submit`` changes the h2 state under the connection's lock and wakes the I/O thread to
send what it produced (``flush=False`` and ``flush()`` let a burst go out in one write).
Opening a connection (TCP, TLS, the edge's SETTINGS) runs in a short thread of its own,
once per edge at a time; requests for that edge wait for it in a list, not in threads.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import re
import select
import socket
import ssl
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
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
from shared.hpack_static import StaticTableEncoder

H2: Final = "h2"
HTTP11: Final = "http/1.1"
# Streams in flight on one edge's connection unless the edge allows fewer (the rest wait
# in the connection's queue). CloudFront announces 128; 100 leaves room while a stream's
# slot is being released.
DEFAULT_STREAMS_PER_EDGE: Final = 100
# Per-stream and per-connection receive windows: what the edge may send ahead of the
# I/O thread's reads. 256 KiB per stream keeps a 30 ms edge at ~8 MB/s per object; 8 MiB
# per connection is the most the edge may have in flight to us, whatever its streams.
STREAM_WINDOW: Final = 256 * 1024
CONNECTION_WINDOW: Final = 8 * 1024 * 1024
READ_BYTES: Final = 256 * 1024  # one read takes what a burst of responses brought
MAX_HEADER_LIST_BYTES: Final = 64 * 1024  # a hostile edge's headers cost at most this
# Edges remembered as HTTP/1.1 (ALPN without h2, or no streams allowed): a few bytes each.
MAX_FALLBACKS: Final = 1024
# How long a connection must have had no stream before it counts as idle, one that may be
# closed to keep ``max_pools``: between two flights an edge's connection has no stream for
# the few milliseconds the caller takes to judge the answers and send the next requests,
# and closing it then costs the edge two round trips and a TLS handshake to reopen (seen
# in the bench's 20-edge warm with max_pools 16: 21-26 connections opened for 20 edges).
EVICTABLE_AFTER_IDLE_SECONDS: Final = 1.0
# How often an idle I/O thread wakes on its own (it is woken at once for any work, and
# the earliest read deadline of its streams bounds its wait too).
IDLE_POLL_SECONDS: Final = 1.0
_H2_DEFAULT_WINDOW: Final = 65_535
_NOT_IN_A_HEADER: Final = re.compile(r"[\x00-\x20\x7f]")
# ``close`` waits this long per connection for its I/O thread to send GOAWAY and close.
CLOSE_WAIT_SECONDS: Final = 1.0


Done = Callable[[EdgeResponse | EdgeError], None]


@dataclasses.dataclass(frozen=True, slots=True)
class _Fallback:
    """An edge served over HTTP/1.1, and why (``stream_limit`` 0: the edge allows no
    HTTP/2 stream; None: ALPN did not select h2)."""

    reason: str
    stream_limit: int | None = None


class _Request:
    """One submitted request, from ``submit`` until its ``done`` is called (once)."""

    __slots__ = (
        "accept_encoding",
        "address",
        "bytes_read",
        "done",
        "headers",
        "keep_body",
        "kept",
        "key",
        "last_frame",
        "length",
        "lost",
        "method",
        "path",
        "queued_at",
        "started",
        "status",
        "stream_id",
        "viewer_host",
    )

    def __init__(
        self,
        method: str,
        address: str,
        viewer_host: str,
        path: str,
        accept_encoding: str | None,
        keep_body: int,
        done: Done,
    ) -> None:
        self.method = method
        self.address = address
        self.viewer_host = viewer_host
        self.path = path
        self.accept_encoding = accept_encoding
        self.keep_body = keep_body
        self.done = done
        self.key = (address, viewer_host.lower())
        # Connections that ended before sending it, or whose GOAWAY said it was never
        # processed: the second such loss fails the request (RFC 9113 6.8 allows the resend).
        self.lost = 0
        self.started = time.perf_counter()
        self.stream_id = 0
        self.status: int | None = None  # until the response's HEADERS
        self.headers: dict[str, str] = {}
        self.length: int | None = None
        self.bytes_read = 0
        self.kept = b""  # at most keep_body bytes (0 for a warm: nothing is kept)
        self.last_frame = 0.0  # time.monotonic() of the stream's last frame
        self.queued_at = 0.0

    def encode_headers(self) -> list[tuple[bytes, bytes]]:
        headers = [
            (b":method", self.method.encode()),
            (b":scheme", b"https"),
            (b":authority", self.viewer_host.encode()),
            (b":path", self.path.encode()),
            (b"user-agent", _USER_AGENT),
        ]
        if self.accept_encoding is not None:  # none at all for CloudFront's identity key
            headers.append((b"accept-encoding", self.accept_encoding.encode()))
        return headers


_USER_AGENT: Final = USER_AGENT.encode()
# What the I/O thread hands back after a turn: outcomes to deliver, requests to route again.
_Finished = list[tuple[_Request, "EdgeResponse | EdgeError"]]
NO_STREAM_REASON: Final = "the edge allows no HTTP/2 stream"


class _Http2Connection:
    """One TLS connection speaking HTTP/2, its streams, and the I/O thread that runs them.

    The I/O thread completes every stream itself: it counts and drops each DATA frame as it
    is read and gives its window back at once, judges nothing (the caller does), and calls
    the request's ``done`` once, after the turn's output is sent and outside the lock.
    Requests beyond the stream limit wait in ``_waiting`` (FIFO), not in threads.
    """

    def __init__(
        self,
        sock: ssl.SSLSocket,
        client: Http2EdgeClient,
        address: str,
        streams_per_edge: int,
        write_timeout: float,
        read_timeout: float,
    ) -> None:
        self._sock = sock
        self._client = client
        self.address = address
        self._local_limit = streams_per_edge
        self._write_timeout = write_timeout
        self._read_timeout = read_timeout
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
        # The static table and plain literals: no dynamic-table search or insertion and no
        # Huffman coding per request (shared/hpack_static.py says why that is valid).
        self._h2.encoder = StaticTableEncoder()  # type: ignore[assignment]
        self._h2.initiate_connection()
        self._h2.increment_flow_control_window(CONNECTION_WINDOW - _H2_DEFAULT_WINDOW)
        self._cond = threading.Condition()
        self._streams: dict[int, _Request] = {}
        # Requests waiting for a free stream. Bounded by the caller: the engine has at most
        # ``settings.workers`` requests in flight, a blocking caller one per thread.
        self._waiting: deque[_Request] = deque()
        self._remote_limit: int | None = None  # until the edge's first SETTINGS
        self._progress_at = time.monotonic()  # when a stream last ended (a slot freed)
        self._next_check = math.inf  # the earliest read deadline of a stream or a waiter
        self.dead: str | None = None  # why no new stream may start
        self.no_streams = False  # dead because the edge allows no stream: use HTTP/1.1
        self._closing = False
        self._wake_pending = False  # a wake-up byte is on its way to the I/O thread
        self._unsent = False  # bytes produced with flush=False, no wake-up sent for them
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

    def evictable(self, now: float, after: float) -> bool:
        """No stream in flight or waiting, and none ended for at least ``after`` seconds
        (or since it opened): a connection that may be closed to keep ``max_pools``."""
        return not self._streams and not self._waiting and now - self._progress_at >= after

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

    # ---- requests (any thread) ----------------------------------------------------
    def submit(self, request: _Request, flush: bool = True) -> bool:
        """Queue ``request`` for a stream, sent at once while one is free; False when the
        connection takes no new stream (nothing was sent). ``flush=False`` leaves the
        bytes for ``flush`` (or the I/O thread's next turn), so a burst goes out in one
        write."""
        with self._cond:
            if not self.usable:
                return False
            now = time.monotonic()
            request.queued_at = now
            self._waiting.append(request)
            self._next_check = min(self._next_check, now + self._read_timeout)
            wake = self._open_waiting(now) and self._wake_for_output(flush)
        if wake:
            self._wake()
        return True

    def flush(self) -> None:
        """Wake the I/O thread if requests submitted with ``flush=False`` wait to be sent."""
        with self._cond:
            wake = self._unsent and self._wake_for_output(True)
        if wake:
            self._wake()

    def _open_waiting(self, now: float) -> bool:
        """Send HEADERS for waiting requests while streams are free (lock held); True
        when some were produced."""
        limit = self.limit
        streams = self._streams
        opened = False
        while self._waiting and len(streams) < limit and self.dead is None:
            request = self._waiting[0]
            try:
                stream_id = self._h2.get_next_available_stream_id()
                self._h2.send_headers(stream_id, request.encode_headers(), end_stream=True)
            except h2.exceptions.TooManyStreamsError:
                break  # h2 still counts a stream as open: the next turn tries again
            except h2.exceptions.NoAvailableStreamIDError:
                self.dead = "stream identifiers used up"  # the I/O thread ends it
                return True
            self._waiting.popleft()
            request.stream_id = stream_id
            request.last_frame = now
            streams[stream_id] = request
            opened = True
        return opened

    def _wake_for_output(self, flush: bool) -> bool:
        """Whether the caller, having produced bytes, must wake the I/O thread (lock held):
        not while a wake-up is on its way, nor when ``flush`` is False (then ``flush()``
        or the I/O thread's next turn sends them). Every syscall costs a thread a turn at
        the GIL, so wake-ups are coalesced."""
        if not flush:
            self._unsent = True
            return False
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
        finished: _Finished = []
        bounced: list[_Request] = []
        try:
            self._sock.setblocking(False)
            while True:
                with self._cond:
                    out = self._h2.data_to_send()
                    self._wake_pending = self._unsent = False
                    closing = self._closing
                    gone = self.dead
                if out:
                    self._send_all(out)
                if closing:
                    reason = "closed by the warmer"
                    break
                if gone is not None:
                    reason = gone
                    break
                data = self._receive()
                if data is not None and not data:
                    reason = "the edge closed the connection"
                    break
                gone = self._turn(data, finished, bounced)
                if gone is not None:
                    reason = gone
                    break
        except h2.exceptions.ProtocolError as error:
            reason = f"HTTP/2 protocol error from the edge: {error!r}"[:300]
        except OSError as error:
            reason = f"connection broke: {error!r}"[:300]
        finally:
            self._shut(reason, finished, bounced)

    def _receive(self) -> bytes | None:
        """Bytes from the edge (b"" when it hung up), or None when there are none yet: a
        thread woke us to send, a read deadline or the idle poll passed, or TLS wants more
        first. A read is tried before waiting: data TLS already holds shows no readiness,
        and one syscall fewer per turn matters with other threads waiting for the GIL."""
        data = self._read_available()
        if data is not None:
            return data
        wait = min(IDLE_POLL_SECONDS, max(0.0, self._next_check - time.monotonic()))
        readable, _, _ = select.select([self._sock, self._wake_r], [], [], wait)
        if self._wake_r in readable:
            with contextlib.suppress(BlockingIOError, OSError):
                self._wake_r.recv(4096)
        if self._sock not in readable:
            return None
        return self._read_available()

    def _read_available(self) -> bytes | None:
        """Everything that has arrived, up to ``READ_BYTES``; None when nothing has.

        One TLS read returns one record (16 KiB at most), about one response: answered
        one read at a time, a burst the edge sent together would reach the caller as a
        trickle, and the caller's next requests would go out as a trickle of small
        flights, each paying a round trip. Read together, a burst is judged together and
        the next one leaves together."""
        chunks: list[bytes] = []
        size = 0
        while size < READ_BYTES:
            try:
                chunk = self._sock.recv(READ_BYTES - size)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                break
            if not chunk:  # the edge hung up: what came before first, the end next turn
                if not chunks:
                    return b""
                break
            chunks.append(chunk)
            size += len(chunk)
        if not chunks:
            return None
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def _turn(self, data: bytes | None, finished: _Finished, bounced: list[_Request]) -> str | None:
        """Take in what one read brought (None: nothing), expire silent streams, start
        waiting ones, send, then deliver the outcomes. Returns why the connection must end
        (a GOAWAY, the stream limit dropped to 0), else None."""
        now = time.monotonic()
        if data is None and now < self._next_check:
            return None
        with self._cond:
            if data is not None:
                self._dispatch(self._h2.receive_data(data), now, finished, bounced)
            if now >= self._next_check:
                self._expire(now, finished)
            self._open_waiting(now)
            if self._waiting and not self._streams and self.limit == 0:
                self.dead, self.no_streams = NO_STREAM_REASON, True
            out = self._h2.data_to_send()
            self._unsent = False
            gone = self.dead
        if gone is not None:  # GOAWAY: h2 takes no more frames; nothing to wait for
            with contextlib.suppress(OSError, TimeoutError):
                self._send_all(out)
            return gone
        if out:
            self._send_all(out)  # new streams and window updates before the news
        self._deliver(finished)
        return None

    def _send_all(self, data: bytes) -> None:
        send_all(self._sock, data, self._write_timeout, "the edge took no bytes")

    def _deliver(self, finished: _Finished) -> None:
        """Call each finished request's ``done`` (outside the lock: it may submit again)."""
        for request, outcome in finished:
            _call_done(request, outcome)
        finished.clear()

    def _dispatch(
        self,
        events: list[h2.events.Event],
        now: float,
        finished: _Finished,
        bounced: list[_Request],
    ) -> None:
        # Called with the lock held, by the I/O thread; the common events first.
        streams = self._streams
        for event in events:
            if isinstance(event, h2.events.DataReceived):
                stream_id = event.stream_id
                if event.flow_controlled_length:
                    # Counted and dropped below: the edge may send the next window at once.
                    with contextlib.suppress(h2.exceptions.ProtocolError):
                        self._h2.acknowledge_received_data(event.flow_controlled_length, stream_id)
                request = streams.get(stream_id)
                if request is not None:
                    data = event.data
                    request.bytes_read += len(data)
                    request.last_frame = now
                    if len(request.kept) < request.keep_body:
                        request.kept += data[: request.keep_body - len(request.kept)]
            elif isinstance(event, h2.events.StreamEnded):
                request = streams.pop(event.stream_id, None)
                if request is not None:
                    self._progress_at = now
                    finished.append((request, self._response(request)))
            else:
                self._other_event(event, now, finished, bounced)

    def _other_event(
        self, event: h2.events.Event, now: float, finished: _Finished, bounced: list[_Request]
    ) -> None:
        # Trailers, 1xx, pings, window updates and acknowledgements need nothing.
        if isinstance(event, h2.events.ResponseReceived):
            request = self._streams.get(event.stream_id)
            if request is not None:
                self._headers(request, event.headers, now, finished)
        elif isinstance(event, h2.events.StreamReset):
            request = self._streams.pop(event.stream_id, None)
            if request is not None:
                self._progress_at = now
                code = ("reset", _code_name(event.error_code))
                finished.append((request, self._failure(request, code)))
        elif isinstance(event, h2.events.RemoteSettingsChanged):
            self._remote_limit = self._h2.remote_settings.max_concurrent_streams
            self._cond.notify_all()  # ``start`` waits for the first
        elif isinstance(event, h2.events.ConnectionTerminated):
            self._goaway(event, finished, bounced)

    def _headers(
        self, request: _Request, raw: list[tuple[bytes, bytes]], now: float, finished: _Finished
    ) -> None:
        request.last_frame = now
        try:
            status, headers = _status_and_headers(raw, self._where(request))
        except EdgeError as error:
            del self._streams[request.stream_id]
            self._progress_at = now
            with contextlib.suppress(h2.exceptions.ProtocolError):
                self._h2.reset_stream(request.stream_id, h2.errors.ErrorCodes.CANCEL)
            finished.append((request, error))
            return
        request.status = status
        request.headers = headers
        request.length = _content_length(headers.get("content-length"))

    def _where(self, request: _Request) -> str:
        return f"{self.address} (HTTP/2 stream {request.stream_id})"

    def _response(self, request: _Request) -> EdgeResponse | EdgeError:
        if request.status is None:
            return self._failure(request, ("end",))
        headers = request.headers
        return EdgeResponse(
            status=request.status,
            headers={name: headers[lower] for name, lower in _KEPT if lower in headers}
            if request.method == "GET"
            else _titled(headers),
            bytes_read=request.bytes_read,
            content_length=request.length,
            seconds=time.perf_counter() - request.started,
            body=bytes(request.kept),
            protocol=H2,
            stream_limit=self.limit,
        )

    def _failure(self, request: _Request, event: tuple[Any, ...]) -> EdgeError:
        where = self._where(request)
        if request.status is None:
            return EdgeError(_ended_reason(event, where, None, None), True)
        reason = _ended_reason(event, where, request.bytes_read, request.length)
        return EdgeError(reason, True, request.bytes_read)

    def _expire(self, now: float, finished: _Finished) -> None:
        """Fail alone each stream silent for ``read_timeout`` (``RST_STREAM CANCEL``) and
        each waiter that saw no stream end for as long; note the next deadline (lock held).
        Deadlines only move later, so the noted one is never late, at worst early."""
        timeout = self._read_timeout
        next_check = math.inf
        for stream_id, request in list(self._streams.items()):
            due = request.last_frame + timeout
            if due > now:
                next_check = min(next_check, due)
                continue
            del self._streams[stream_id]
            self._progress_at = now
            with contextlib.suppress(h2.exceptions.ProtocolError):
                self._h2.reset_stream(stream_id, h2.errors.ErrorCodes.CANCEL)
            where = self._where(request)
            if request.status is None:
                reason = f"no response from {where}: nothing for {timeout:g}s"
            else:
                reason = f"body stalled after {request.bytes_read} bytes at {where}"
                reason += f": nothing for {timeout:g}s"
            finished.append((request, EdgeError(reason, True, request.bytes_read)))
        while self._waiting:
            due = max(self._waiting[0].queued_at, self._progress_at) + timeout
            if due > now:
                next_check = min(next_check, due)
                break
            reason = (
                f"no HTTP/2 stream free at {self.address} within {timeout:g}s "
                f"(the edge allows {self.remote_limit} at once)"
            )
            finished.append((self._waiting.popleft(), EdgeError(reason, True)))
        self._next_check = next_check

    def _goaway(
        self, event: h2.events.ConnectionTerminated, finished: _Finished, bounced: list[_Request]
    ) -> None:
        last = event.last_stream_id if event.last_stream_id is not None else 0
        why = f"the edge sent GOAWAY ({_code_name(event.error_code)}, last stream {last})"
        self.dead = why
        for stream_id, request in self._streams.items():
            if stream_id <= last:
                gone = ("gone", f"{why}: the connection ended mid-response", False)
                finished.append((request, self._failure(request, gone)))
                continue
            where = self._where(request)
            request.lost += 1
            if request.lost < 2:
                _forget_response(request)
                bounced.append(request)
            else:
                reason = f"no response from {self.address}: {where}: {why}"
                finished.append(
                    (request, EdgeError(f"{reason}: it never processed this request", True))
                )
        self._streams.clear()

    def _shut(self, reason: str, finished: _Finished, bounced: list[_Request]) -> None:
        with self._cond:
            if self.dead is None:
                self.dead = reason
            for request in self._streams.values():
                finished.append((request, self._failure(request, ("gone", self.dead, False))))
            self._streams.clear()
            for request in self._waiting:  # never sent: another connection may take them
                request.lost += not self.no_streams
                if request.lost < 2:
                    bounced.append(request)
                else:
                    error = EdgeError(f"no response from {self.address}: {self.dead}", True)
                    finished.append((request, error))
            self._waiting.clear()
            self._closing = True
            self._cond.notify_all()
        with contextlib.suppress(OSError):
            self._sock.close()
        for end in (self._wake_r, self._wake_w):
            end.close()
        self._client._ended(self)
        self._deliver(finished)
        for request in bounced:
            self._client._route_request(request)


_KEPT: Final = tuple((name, name.lower()) for name in KEPT_HEADERS)


def _forget_response(request: _Request) -> None:
    request.status, request.headers, request.length = None, {}, None
    request.bytes_read, request.kept, request.stream_id = 0, b"", 0


def _call_done(request: _Request, outcome: EdgeResponse | EdgeError) -> None:
    try:
        request.done(outcome)
    except Exception:  # a caller's bug must not end the connection its neighbours use
        return


class _Connecting:
    """A connection being opened for a key, and the requests waiting for its outcome."""

    def __init__(self, first: _Request) -> None:
        self.requests = [first]


_Route = _Http2Connection | _Fallback


class Http2EdgeClient(EdgeClient):
    """``EdgeClient`` over HTTP/2: one connection per (edge address, viewer host), up to
    ``streams_per_edge`` streams on it; HTTP/1.1 keep-alive for an edge without ``h2``.

    Thread-safe, like the base class. ``submit`` starts a request and returns at once; its
    ``done`` gets the outcome. ``get`` and ``head`` are ``submit`` and a wait. Streams in
    flight are what the callers submitted, at most ``streams_per_edge`` per connection (the
    rest wait in the connection's queue); HTTP/1.1 requests run in a pool of ``maxsize``
    threads, so at most ``maxsize`` are in flight. ``EdgeResponse.protocol`` says which
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
        self._h2_lock = threading.Lock()
        self._h2_context: ssl.SSLContext | None = None
        # Least recently used first; idle connections beyond ``max_pools`` close.
        self._routes: OrderedDict[tuple[str, str], _Http2Connection] = OrderedDict()
        self._fallbacks: OrderedDict[tuple[str, str], _Fallback] = OrderedDict()
        self._connecting: dict[tuple[str, str], _Connecting] = {}
        # HTTP/1.1 requests run here, ``maxsize`` at once: the base class's pools stay
        # within ``maxsize`` connections however many HTTP/2 streams the caller runs.
        self._http1_pool: ThreadPoolExecutor | None = None
        self._unflushed: set[_Http2Connection] = set()
        self._shut_down = False
        self.h2_connections = 0  # HTTP/2 connections opened
        # Seconds without a stream before a connection counts as idle (for ``max_pools``).
        self.evictable_after = EVICTABLE_AFTER_IDLE_SECONDS
        self._live: set[_Http2Connection] = set()  # whose socket is open (at most the above)

    # ---- public -------------------------------------------------------------------
    def submit(
        self,
        address: str,
        viewer_host: str,
        path: str,
        accept_encoding: str | None,
        done: Done,
        keep_body: int = 0,
        method: Literal["GET", "HEAD"] = "GET",
        flush: bool = True,
    ) -> None:
        """Start ``method path`` at ``address`` as ``viewer_host``; return at once.

        ``done`` is called exactly once with the ``EdgeResponse`` (the body read to its end
        and dropped, as ``get``) or the ``EdgeError`` ``get`` would raise. It runs on the
        connection's I/O thread (or an HTTP/1.1 pool thread, or, for a request refused
        before anything is sent, the caller's): it must only hand the outcome over, never
        block. ``flush=False`` lets a caller submit a burst and send it in one write with
        ``flush()``; until then the bytes go out with the I/O thread's next turn.
        """
        if not path.startswith("/") or _NOT_IN_A_HEADER.search(path + viewer_host):
            # h2 does not check our own headers (see the connection's configuration).
            refused = f"refused to send path {path[:80]!r} as {viewer_host[:80]!r}"
            _call_done_now(done, EdgeError(refused, False))
            return
        request = _Request(method, address, viewer_host, path, accept_encoding, keep_body, done)
        self._route_request(request, flush)

    def flush(self) -> None:
        """Send what ``submit(..., flush=False)`` left waiting, one write per connection."""
        with self._h2_lock:
            connections, self._unflushed = self._unflushed, set()
        for connection in connections:
            connection.flush()

    def get(
        self,
        address: str,
        viewer_host: str,
        path: str,
        accept_encoding: str | None,
        keep_body: int = 0,
    ) -> EdgeResponse:
        """As ``EdgeClient.get``, over HTTP/2 when the edge selects it."""
        return self._wait("GET", address, viewer_host, path, accept_encoding, keep_body)

    def head(
        self, address: str, viewer_host: str, path: str, accept_encoding: str | None
    ) -> EdgeResponse:
        """As ``EdgeClient.head``, over HTTP/2 when the edge selects it."""
        return self._wait("HEAD", address, viewer_host, path, accept_encoding, 0)

    def close(self) -> None:
        with self._h2_lock:
            self._shut_down = True  # requests submitted from now on fail
            connections = list(self._live)  # the routes' and those still winding down
            self._routes.clear()
            pool, self._http1_pool = self._http1_pool, None
        if pool is not None:
            pool.shutdown(wait=True)  # HTTP/1.1 requests in flight end (read timeout at most)
        for connection in connections:
            connection.close()
        for connection in connections:
            connection.join(CLOSE_WAIT_SECONDS)
        super().close()

    # ---- routing ------------------------------------------------------------------
    def _wait(
        self,
        method: Literal["GET", "HEAD"],
        address: str,
        viewer_host: str,
        path: str,
        accept_encoding: str | None,
        keep_body: int,
    ) -> EdgeResponse:
        outcome: list[EdgeResponse | EdgeError] = []
        finished = threading.Event()

        def done(result: EdgeResponse | EdgeError) -> None:
            outcome.append(result)
            finished.set()

        self.submit(address, viewer_host, path, accept_encoding, done, keep_body, method)
        # Every path to ``done`` is bounded: the connect and read timeouts, the edge's
        # answers, and the HTTP/1.1 pool's own timeouts.
        finished.wait()
        result = outcome[0]
        if isinstance(result, EdgeError):
            raise result
        return result

    def _route_request(self, request: _Request, flush: bool = True) -> None:
        """Hand ``request`` to its edge's live connection, to the connection being opened
        for it (one connect per edge, in its own short thread), or to HTTP/1.1."""
        if self.protocol != "https":
            self._http1_submit(request, _Fallback("plain http"))
            return
        while (route := self._pick(request, flush)) is not None:
            if isinstance(route, _Fallback):
                self._http1_submit(request, route)
                return
            if route.submit(request, flush):
                return
            self._forget(request.key, route)  # it ended between the look-up and now

    def _pick(self, request: _Request, flush: bool) -> _Route | None:
        """The route for ``request``, or None when it now waits for a connection being
        opened (or was failed: the client is closed)."""
        key = request.key
        with self._h2_lock:
            if not self._shut_down:
                fallback = self._fallbacks.get(key)
                if fallback is not None:
                    self._fallbacks.move_to_end(key)
                    return fallback
                connection = self._routes.get(key)
                if connection is not None and connection.usable:
                    self._routes.move_to_end(key)
                    if not flush:
                        self._unflushed.add(connection)
                    return connection
                pending = self._connecting.get(key)
                if pending is not None:
                    pending.requests.append(request)
                    return None
                self._connecting[key] = _Connecting(request)
                threading.Thread(
                    target=self._open, args=(key, request), name="h2-connect", daemon=True
                ).start()
                return None
        _call_done(request, EdgeError(f"no response from {request.address}: client closed", True))
        return None

    def _open(self, key: tuple[str, str], first: _Request) -> None:
        """Connect to ``first``'s edge (its own thread), then route what waited for it."""
        try:
            outcome: _Route | EdgeError = self._connect(first.address, first.viewer_host)
        except EdgeError as error:
            outcome = error
        except Exception as error:  # never leave the waiting requests without an answer
            outcome = EdgeError(f"no response from {first.address}: {error!r}", True)
        evicted: list[_Http2Connection] = []
        with self._h2_lock:
            waiting = self._connecting.pop(key).requests
            if isinstance(outcome, _Http2Connection) and self._shut_down:
                evicted.append(outcome)
            elif isinstance(outcome, _Http2Connection):
                self._routes.pop(key, None)
                self._routes[key] = outcome
                evicted = self._evict_idle(outcome)
            elif isinstance(outcome, _Fallback):
                self._remember_fallback(key, outcome)
        for connection in evicted:
            connection.close()
        if isinstance(outcome, EdgeError):
            for request in waiting:
                copy = EdgeError(outcome.reason, outcome.retryable, outcome.bytes_read)
                _call_done(request, copy)
            return
        for request in waiting:
            self._route_request(request)

    def _evict_idle(self, keep: _Http2Connection) -> list[_Http2Connection]:
        """Idle connections beyond ``max_pools``, least recently used first (lock held).
        One between two flights is in use, not idle (``evictable_after``): connections in
        use may outnumber ``max_pools``, one per edge being warmed."""
        evicted: list[_Http2Connection] = []
        excess = len(self._routes) - self.max_pools
        now = time.monotonic()
        for other_key, other in list(self._routes.items()):
            if excess <= 0:
                break
            if other is not keep and other.evictable(now, self.evictable_after):
                evicted.append(self._routes.pop(other_key))
                excess -= 1
        return evicted

    def _http1_submit(self, request: _Request, route: _Fallback) -> None:
        with self._h2_lock:
            if self._shut_down:
                pool = None
            elif self._http1_pool is None:
                pool = self._http1_pool = ThreadPoolExecutor(
                    max(1, self.maxsize), thread_name_prefix="http1-edge"
                )
            else:
                pool = self._http1_pool
        if pool is None:
            error = EdgeError(f"no response from {request.address}: client closed", True)
            _call_done(request, error)
            return
        pool.submit(self._run_http1, request, route)

    def _run_http1(self, request: _Request, route: _Fallback) -> None:
        outcome: EdgeResponse | EdgeError
        try:
            if request.method == "HEAD":
                response = super().head(
                    request.address, request.viewer_host, request.path, request.accept_encoding
                )
            else:
                response = super().get(
                    request.address,
                    request.viewer_host,
                    request.path,
                    request.accept_encoding,
                    request.keep_body,
                )
            if route.stream_limit is not None:
                response = dataclasses.replace(response, stream_limit=route.stream_limit)
            outcome = response
        except EdgeError as error:
            outcome = error
        except Exception as error:  # the caller waits for an answer, whatever happens
            outcome = EdgeError(f"no response from {request.address}: {error!r}", True)
        _call_done(request, outcome)

    def _remember_fallback(self, key: tuple[str, str], fallback: _Fallback) -> None:
        # Called with the lock held.
        self._fallbacks[key] = fallback
        while len(self._fallbacks) > MAX_FALLBACKS:
            self._fallbacks.popitem(last=False)

    def _ended(self, connection: _Http2Connection) -> None:
        """``connection``'s socket is closed (its I/O thread is ending)."""
        with self._h2_lock:
            self._live.discard(connection)
            self._unflushed.discard(connection)
            for key, route in list(self._routes.items()):
                if route is connection:
                    del self._routes[key]
                    if connection.no_streams:
                        self._remember_fallback(key, _Fallback(NO_STREAM_REASON, 0))
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
            raw = socket.create_connection((address, self.port), timeout=self.connect_timeout)
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
            sock,
            self,
            address,
            self.streams_per_edge,
            self.connect_timeout,
            self.read_timeout,
        )
        with self._h2_lock:
            self.h2_connections += 1
            self._live.add(connection)
        connection.start(self.connect_timeout)
        if connection.limit == 0:
            connection.close()
            return _Fallback(NO_STREAM_REASON, 0)
        return connection


def _call_done_now(done: Done, outcome: EdgeResponse | EdgeError) -> None:
    with contextlib.suppress(Exception):
        done(outcome)


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
