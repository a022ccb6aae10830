"""Round trips emulated on loopback: a TCP proxy that is a delay line in each direction.

``RTTProxy(target, rtt)`` listens on a loopback address and forwards every connection to
``target``. Every byte, each way, reaches the other side ``rtt / 2`` after the proxy read
it, so what a real link of that round-trip time charges falls out of the protocol itself,
with nothing guessed per call:

- a new connection: the client's first bytes leave one ``rtt`` after ``connect`` (SYN,
  SYN-ACK), as a client cannot send before its handshake completes;
- a TLS 1.3 handshake: ClientHello → ServerHello…Finished is one more round trip;
- each HTTP request/response exchange (each S3 call, each ranged GET, each warm): one
  round trip, plus the time its bytes take; over HTTP/2 a burst of requests sent together
  on one connection (one flight) costs one round trip, however many streams it holds;
- a stream (a part's body) is shifted by ``rtt / 2``, not slowed per byte.

Not emulated, so a far placement measured here is a lower bound of the real one: TCP's
window (bytes in flight per round trip), slow start, loss. The delay line's buffer is
unbounded: the benches push tens of MiB, not more.

Threads, not an event loop: ``time.sleep`` keeps a 0.5 ms half round trip within a few
tens of microseconds, where a selector's millisecond timeouts would round it up. Run many
proxies in a process of their own (``ProxyHost``) so their timing does not share a GIL
with the code measured.

Counts per proxy: ``connections`` accepted and ``exchanges`` (each time the client
speaks after the server did, or first: one request/response round trip each).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import queue
import socket
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

Address = tuple[str, int]
_CHUNK = 256 * 1024


@dataclass
class ProxyCounts:
    connections: int = 0
    exchanges: int = 0  # client → server turns: request/response round trips


class RTTProxy:
    """A loopback TCP proxy to ``target`` with ``rtt`` seconds of round trip."""

    def __init__(self, target: Address, rtt: float, listen: Address = ("127.0.0.1", 0)) -> None:
        if not 0 <= rtt < 10:
            raise ValueError(f"rtt: {rtt!r} s is not in [0, 10)")
        self.target = target
        self.rtt = rtt
        self.counts = ProxyCounts()
        self._lock = threading.Lock()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(listen)
        self._listener.listen(512)
        self.address: Address = self._listener.getsockname()
        self._closed = False
        self._sockets: set[socket.socket] = set()

    def start(self) -> RTTProxy:
        threading.Thread(target=self._accept, daemon=True, name=f"rtt-{self.address}").start()
        return self

    def __enter__(self) -> RTTProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        with self._lock:
            sockets, self._sockets = list(self._sockets), set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.close()

    def reset_counts(self) -> None:
        with self._lock:
            self.counts = ProxyCounts()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            accepted = time.perf_counter()
            threading.Thread(target=self._connect, args=(client, accepted), daemon=True).start()

    def _connect(self, client: socket.socket, accepted: float) -> None:
        try:
            upstream = socket.create_connection(self.target, timeout=10)
        except OSError:
            client.close()  # the far side refused: the client sees the connection end
            return
        upstream.settimeout(None)
        for sock in (client, upstream):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._lock:
            self.counts.connections += 1
            self._sockets.update((client, upstream))
        turn = _Turn()
        ends = [threading.Event(), threading.Event()]
        # Client → server: nothing leaves before the emulated TCP handshake is over.
        _Direction(self, client, upstream, accepted + self.rtt, turn, True, ends[0]).start()
        _Direction(self, upstream, client, 0.0, turn, False, ends[1]).start()
        threading.Thread(
            target=self._close_after, args=(ends, client, upstream), daemon=True
        ).start()

    def _close_after(self, ends: list[threading.Event], *sockets: socket.socket) -> None:
        for end in ends:
            end.wait()
        with self._lock:
            self._sockets.difference_update(sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.close()

    def _exchange(self) -> None:
        with self._lock:
            self.counts.exchanges += 1


class _Turn:
    """Which side of one connection spoke last."""

    def __init__(self) -> None:
        self.client_last = False


class _Direction:
    """One way of one connection: a reader stamps each chunk, a writer releases it rtt/2 later."""

    def __init__(
        self,
        proxy: RTTProxy,
        source: socket.socket,
        sink: socket.socket,
        not_before: float,
        turn: _Turn,
        from_client: bool,
        ended: threading.Event,
    ) -> None:
        self.proxy = proxy
        self.source, self.sink = source, sink
        self.not_before = not_before
        self.turn, self.from_client = turn, from_client
        self.ended = ended
        self.line: queue.SimpleQueue[tuple[float, bytes]] = queue.SimpleQueue()

    def start(self) -> None:
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._write, daemon=True).start()

    def _read(self) -> None:
        half = self.proxy.rtt / 2
        while True:
            try:
                data = self.source.recv(_CHUNK)
            except OSError:
                data = b""
            if data and self.from_client and not self.turn.client_last:
                self.proxy._exchange()
            if data:
                self.turn.client_last = self.from_client
            self.line.put((max(time.perf_counter(), self.not_before) + half, data))
            if not data:
                return

    def _write(self) -> None:
        try:
            while True:
                deadline, data = self.line.get()
                wait = deadline - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
                if not data:
                    with contextlib.suppress(OSError):
                        self.sink.shutdown(socket.SHUT_WR)
                    return
                self.sink.sendall(data)
        except OSError:
            # The other side went away: end both ways, as a reset would.
            for sock in (self.source, self.sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        finally:
            self.ended.set()


# ---- many proxies in a process of their own -------------------------------------------


def _serve(conn: Connection) -> None:
    proxies: dict[str, RTTProxy] = {}
    while True:
        command, *args = conn.recv()
        try:
            if command == "add":
                name, target, rtt, listen = args
                proxy = RTTProxy(tuple(target), rtt, tuple(listen)).start()
                proxies[name] = proxy
                conn.send(("ok", proxy.address))
            elif command == "counts":
                conn.send(("ok", {n: vars(p.counts).copy() for n, p in proxies.items()}))
            elif command == "reset":
                for proxy in proxies.values():
                    proxy.reset_counts()
                conn.send(("ok", None))
            elif command == "remove":
                for name in args[0]:
                    proxies.pop(name).stop()
                conn.send(("ok", None))
            elif command == "stop":
                for proxy in proxies.values():
                    proxy.stop()
                conn.send(("ok", None))
                return
            else:
                conn.send(("error", f"unknown command {command!r}"))
        except (OSError, ValueError, KeyError) as error:
            conn.send(("error", f"{command}: {error}"))


class ProxyHost:
    """RTT proxies in a forked child process. Start it before the parent starts threads."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("fork")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(child,), daemon=True)
        self._process.start()

    def _call(self, *message: Any) -> Any:
        self._conn.send(message)
        status, value = self._conn.recv()
        if status != "ok":
            raise RuntimeError(f"proxy host: {value}")
        return value

    def add(
        self, name: str, target: Address, rtt: float, listen: Address = ("127.0.0.1", 0)
    ) -> Address:
        """A proxy named ``name`` to ``target``; returns the address it listens on."""
        host, port = self._call("add", name, target, rtt, listen)
        return str(host), int(port)

    def counts(self) -> dict[str, dict[str, int]]:
        result: dict[str, dict[str, int]] = self._call("counts")
        return result

    def reset(self) -> None:
        self._call("reset")

    def remove(self, *names: str) -> None:
        self._call("remove", names)

    def stop(self) -> None:
        self._call("stop")
        self._process.join(timeout=10)
