"""HTTP/2 for the lab's TLS servers: the POPs and the tests' edges answer ``h2`` by ALPN.

``serve_h2`` runs one HTTP/2 connection on a TLS socket whose ALPN selected ``h2``, in the
thread the server gave that connection, and answers each request on its own thread with
the server's ordinary ``BaseHTTPRequestHandler`` class (``do_GET``/``do_HEAD``): the same
code serves HTTP/1.1 and HTTP/2, so both protocols behave alike (cache, X-Cache,
X-Amz-Cf-Pop, origin fetch, viewer function). ``:authority`` is the handler's ``Host``.

Flow control is honoured: a handler writing a body waits while the viewer's window is
closed (``STALL_SECONDS`` at most, then the stream is reset). A handler that sets
``close_connection`` (a body it could not finish) resets its stream with INTERNAL_ERROR,
which is how HTTP/2 tells a viewer the body was cut. ``H2ServerConnection`` also gives the
tests' misbehaving edges their levers: a stream limit, ``goaway``, ``reset``.

One I/O thread (the connection's) does every socket read and write; stream threads change
the h2 state under the connection's lock and wake it.
"""

from __future__ import annotations

import contextlib
import email.message
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any, Final

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings

from shared.edge_http2 import send_all

H2_ALPN: Final = ("h2", "http/1.1")
DEFAULT_MAX_STREAMS: Final = 128  # what CloudFront announces
STALL_SECONDS: Final = 30.0
_READ_BYTES: Final = 64 * 1024
_HOP_BY_HOP: Final = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "upgrade", "proxy-connection"}
)


class StreamClosed(ConnectionError):
    """The viewer reset the stream, or the connection ended: nothing more can be sent."""


class H2ServerStream:
    """One request on an HTTP/2 connection and the means to answer it."""

    def __init__(self, connection: H2ServerConnection, stream_id: int, headers: dict[str, str]):
        self.connection = connection
        self.stream_id = stream_id
        self.headers = headers  # lower-case names; pseudo-headers included
        self.closed = False  # reset by the viewer (or by us), or the connection ended
        self.ended = False

    @property
    def method(self) -> str:
        return self.headers.get(":method", "GET")

    @property
    def path(self) -> str:
        return self.headers.get(":path", "/")

    def respond(self, status: int, headers: list[tuple[str, str]], end: bool = False) -> None:
        fields = [(":status", str(status)), *headers]
        self.connection.call(lambda h2c: h2c.send_headers(self.stream_id, fields, end_stream=end))
        self.ended = end

    def send(self, data: bytes) -> None:
        """Send ``data`` as DATA frames, waiting while the viewer's window is closed."""
        self.connection.send_data(self, data)

    def end(self) -> None:
        if not self.ended and not self.closed:
            self.ended = True
            self.connection.call(lambda h2c: h2c.end_stream(self.stream_id))

    def wait_closed(self, timeout: float) -> bool:
        """Wait until the viewer resets this stream or the connection ends."""
        return self.connection.wait_for(lambda: self.closed, timeout)

    def reset(self, code: h2.errors.ErrorCodes = h2.errors.ErrorCodes.INTERNAL_ERROR) -> None:
        if not self.closed:
            self.closed = True
            self.connection.call(lambda h2c: h2c.reset_stream(self.stream_id, code))


StreamHandler = Callable[[H2ServerStream], None]


class H2ServerConnection:
    """The server side of one HTTP/2 connection; ``serve`` returns when it ends."""

    def __init__(
        self,
        sock: ssl.SSLSocket,
        handle: StreamHandler,
        max_concurrent_streams: int = DEFAULT_MAX_STREAMS,
        stall_seconds: float = STALL_SECONDS,
    ) -> None:
        self._sock = sock
        self._handle = handle
        self._stall = stall_seconds
        self._h2 = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
        )
        self._h2.local_settings = h2.settings.Settings(
            client=False,
            initial_values={
                h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: max_concurrent_streams
            },
        )
        self._cond = threading.Condition()
        self._streams: dict[int, H2ServerStream] = {}
        self._done = False
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self.streams_seen = 0

    def call(self, change: Callable[[h2.connection.H2Connection], Any]) -> None:
        """Apply ``change`` to the h2 state (under the lock) and have it sent."""
        with self._cond:
            if self._done:
                raise StreamClosed("the connection ended")
            try:
                change(self._h2)
            except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError) as error:
                raise StreamClosed(str(error)) from None
        self._wake()

    def open_streams(self) -> int:
        """The streams open on this connection as HTTP/2 counts them (what the viewer's
        SETTINGS_MAX_CONCURRENT_STREAMS bounds): a stream this side has ended is closed
        here before its handler thread returns."""
        with self._cond:
            return int(self._h2.open_inbound_streams)

    def wait_for(self, condition: Callable[[], bool], timeout: float) -> bool:
        """Wait until ``condition()`` (checked whenever frames arrive) or the end."""
        with self._cond:
            return self._cond.wait_for(lambda: condition() or self._done, timeout)

    def goaway(self, last_stream_id: int | None = None, code: int = 0) -> None:
        """Send GOAWAY naming ``last_stream_id`` as the last stream processed."""
        self.call(lambda h2c: h2c.close_connection(code, last_stream_id=last_stream_id))

    def send_data(self, stream: H2ServerStream, data: bytes) -> None:
        view = memoryview(data)
        while view:
            with self._cond:
                until = time.monotonic() + self._stall
                while True:
                    if stream.closed or self._done:
                        raise StreamClosed(f"stream {stream.stream_id} closed")
                    try:
                        room = min(
                            self._h2.local_flow_control_window(stream.stream_id),
                            self._h2.max_outbound_frame_size,
                        )
                    except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
                        raise StreamClosed(f"stream {stream.stream_id} closed") from None
                    if room > 0:
                        break
                    left = until - time.monotonic()
                    if left <= 0:
                        raise StreamClosed(f"the viewer's window stayed shut {self._stall:g}s")
                    self._cond.wait(left)
                chunk, view = view[:room], view[room:]
                try:
                    self._h2.send_data(stream.stream_id, bytes(chunk))
                except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError) as error:
                    raise StreamClosed(str(error)) from None
            self._wake()

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_w.send(b"\0")

    def serve(self) -> None:
        """Run the connection until either side ends it."""
        try:
            with self._cond:
                self._h2.initiate_connection()
            self._sock.setblocking(False)
            self._loop()
        except (OSError, h2.exceptions.ProtocolError):
            pass  # a viewer that breaks the protocol or hangs up ends only its connection
        finally:
            with self._cond:
                self._done = True
                for stream in self._streams.values():
                    stream.closed = True
                self._cond.notify_all()
            with contextlib.suppress(OSError):
                self._sock.close()
            self._wake_r.close()
            self._wake_w.close()

    def _loop(self) -> None:
        while True:
            with self._cond:
                out = self._h2.data_to_send()
                closed = self._h2.state_machine.state == h2.connection.ConnectionState.CLOSED
            if out:
                self._send_all(out)
            if closed:
                return
            if not self._sock.pending():
                readable, _, _ = select.select([self._sock, self._wake_r], [], [], 1.0)
                if self._wake_r in readable:
                    with contextlib.suppress(OSError):
                        self._wake_r.recv(4096)
                if self._sock not in readable:
                    continue
            try:
                data = self._sock.recv(_READ_BYTES)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                continue
            if not data:
                return
            with self._cond:
                events = self._h2.receive_data(data)
                started = self._on_events(events)
                self._cond.notify_all()
            for stream in started:
                threading.Thread(target=self._run, args=(stream,), daemon=True).start()

    def _on_events(self, events: list[h2.events.Event]) -> list[H2ServerStream]:
        started: list[H2ServerStream] = []
        for event in events:
            if isinstance(event, h2.events.RequestReceived):
                headers = {str(name): str(value) for name, value in event.headers or []}
                stream = H2ServerStream(self, event.stream_id, headers)
                self._streams[event.stream_id] = stream
                self.streams_seen += 1
                started.append(stream)
            elif isinstance(event, h2.events.DataReceived):
                # A GET has no body; give the window back for whatever came.
                self._h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamReset):
                gone = self._streams.get(event.stream_id)
                if gone is not None:
                    gone.closed = True
        return started

    def _run(self, stream: H2ServerStream) -> None:
        try:
            self._handle(stream)
        except StreamClosed:
            pass
        finally:
            with self._cond:
                self._streams.pop(stream.stream_id, None)

    def _send_all(self, data: bytes) -> None:
        send_all(self._sock, data, self._stall, "the viewer reads nothing")


# ---- BaseHTTPRequestHandler classes over HTTP/2 ------------------------------------------
class _StreamWriter:
    """``wfile`` of a handler answering on a stream."""

    def __init__(self, handler: _H2Handling) -> None:
        self._handler = handler

    def write(self, data: bytes) -> int:
        self._handler._h2_flush_head()
        self._handler._h2_stream.send(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass


class _NoSocket:
    """``connection`` of a handler on a stream: socket options are the connection's."""

    def setsockopt(self, *args: Any) -> None:
        pass


class _H2Handling:
    """Replaces the parts of ``BaseHTTPRequestHandler`` that touch the socket."""

    _h2_stream: H2ServerStream
    _h2_status: int
    _h2_fields: list[tuple[str, str]]
    _h2_head_sent: bool
    close_connection: bool

    def send_response(self, code: int, message: str | None = None) -> None:
        self._h2_status = code
        self._h2_fields = []

    def send_header(self, keyword: str, value: str) -> None:
        if keyword.lower() not in _HOP_BY_HOP:
            self._h2_fields.append((keyword.lower(), str(value)))

    def end_headers(self) -> None:
        self._h2_head_sent = False

    def _h2_flush_head(self) -> None:
        if not self._h2_head_sent:
            self._h2_head_sent = True
            self._h2_stream.respond(self._h2_status, self._h2_fields)

    def log_request(self, code: Any = "-", size: Any = "-") -> None:
        pass


_classes: dict[type[BaseHTTPRequestHandler], type[BaseHTTPRequestHandler]] = {}
_classes_lock = threading.Lock()


def _over_h2(handler_class: type[BaseHTTPRequestHandler]) -> type[BaseHTTPRequestHandler]:
    with _classes_lock:
        made = _classes.get(handler_class)
        if made is None:
            made = type(f"H2{handler_class.__name__}", (_H2Handling, handler_class), {})
            _classes[handler_class] = made
        return made


def answer_with(
    handler_class: type[BaseHTTPRequestHandler], server: Any, client_address: tuple[str, int]
) -> StreamHandler:
    """A stream handler that answers each request with ``handler_class``'s ``do_<METHOD>``."""
    cls = _over_h2(handler_class)

    def handle(stream: H2ServerStream) -> None:
        handler: Any = cls.__new__(cls)
        handler.server = server
        handler.client_address = client_address
        handler.request = None
        handler.connection = _NoSocket()
        handler.command = stream.method
        handler.path = stream.path
        handler.request_version = "HTTP/2.0"
        handler.requestline = f"{stream.method} {stream.path} HTTP/2.0"
        headers = email.message.Message()
        for name, value in stream.headers.items():
            if not name.startswith(":"):
                headers[name] = value
        if ":authority" in stream.headers and "host" not in stream.headers:
            headers["Host"] = stream.headers[":authority"]
        handler.headers = headers
        handler.close_connection = False
        handler._h2_stream = stream
        handler._h2_status = 500
        handler._h2_fields = []
        handler._h2_head_sent = True  # nothing to send until send_response/end_headers
        handler.wfile = _StreamWriter(handler)
        method = getattr(handler, f"do_{stream.method}", None)
        if method is None:
            stream.respond(501, [("content-length", "0")], end=True)
            return
        method()
        if handler.close_connection and not handler._h2_head_sent:
            handler._h2_flush_head()
        if handler.close_connection:
            stream.reset()  # a body cut short: HTTP/2 says so with RST_STREAM
            return
        handler._h2_flush_head()
        stream.end()

    return handle


def serve_h2(
    sock: ssl.SSLSocket,
    client_address: tuple[str, int],
    server: Any,
    handler_class: type[BaseHTTPRequestHandler],
    max_concurrent_streams: int = DEFAULT_MAX_STREAMS,
) -> None:
    """Serve an ``h2`` connection with ``handler_class`` until it ends."""
    H2ServerConnection(
        sock, answer_with(handler_class, server, client_address), max_concurrent_streams
    ).serve()
