"""The deadline that bounds every read from the origin, not only each socket wait.

A socket timeout bounds one wait for bytes. An origin that trickles (one byte every few
seconds) never trips it, yet a 1 MiB read then takes weeks: the worker would be killed by
Lambda's timeout with its upload open and its lease held. So a copy carries a
``ReadBudget``: a point in time after which none of its connections may deliver another
byte. When it passes, a timer shuts down every connection the copy has used (reads
blocked in ``recv`` return at once, in any thread), and the reader, seeing the budget
spent, reports a transient ``deadline`` failure rather than a short body.

Connections register themselves when they start waiting for a response: the requests
session mounts ``WatchedAdapter``, whose connections look up the budget armed in their
thread (``armed``) before reading the status line. The header phase is thus bounded too.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Final

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

# The shortest socket timeout handed to a read: a spent budget must still give a value
# that the socket accepts (0 would switch it to non-blocking mode).
_MIN_TIMEOUT: Final = 0.001


class ReadBudget:
    """Until when (``time.monotonic()``) reads from the origin may go on; None = no limit.

    Use it as a context manager: leaving it stops the timer. Thread-safe: the parallel
    ranged GETs of one copy share one budget."""

    def __init__(self, deadline: float | None, clock: Callable[[], float] = time.monotonic) -> None:
        self.deadline = deadline
        self._clock = clock
        self._lock = threading.Lock()
        # Connections by identity: a pooled connection serving many ranged GETs of one copy
        # is held once, so the set stays as small as the connection pool.
        self._watched: dict[int, Any] = {}
        self._spent = False
        self._timer: threading.Timer | None = None
        if deadline is not None:
            self._timer = threading.Timer(max(0.0, deadline - clock()), self.spend)
            self._timer.daemon = True
            self._timer.name = "origin-read-deadline"
            self._timer.start()

    def __enter__(self) -> ReadBudget:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def spent(self) -> bool:
        """True once the deadline passed (or ``spend`` was called)."""
        if not self._spent and self.deadline is not None and self._clock() >= self.deadline:
            self.spend()
        return self._spent

    def remaining(self) -> float | None:
        """Seconds left, never negative; None without a deadline."""
        if self.deadline is None:
            return None
        return max(0.0, self.deadline - self._clock())

    def timeout(self, limit: float) -> float:
        """``limit`` cut to the time left: the socket timeout for one wait."""
        left = self.remaining()
        return limit if left is None else max(_MIN_TIMEOUT, min(limit, left))

    def watch(self, connection: Any) -> None:
        """Shut ``connection`` down when the budget is spent (at once if it already is)."""
        with self._lock:
            if not self._spent:
                self._watched[id(connection)] = connection
                return
        _shut(connection)

    def spend(self) -> None:
        """End every read now: mark the budget spent, then shut its connections down."""
        with self._lock:
            self._spent = True  # set first: a reader woken by the shutdown must see it
            watched, self._watched = self._watched, {}
        for connection in watched.values():
            _shut(connection)

    def close(self) -> None:
        """Stop the timer and forget the connections (they go back to their pools)."""
        if self._timer is not None:
            self._timer.cancel()
        with self._lock:
            self._watched = {}


_armed = threading.local()


@contextlib.contextmanager
def armed(budget: ReadBudget | None) -> Iterator[None]:
    """Connections that start waiting for a response in this thread, inside the block,
    are watched by ``budget``."""
    previous = getattr(_armed, "budget", None)
    _armed.budget = budget
    try:
        yield
    finally:
        _armed.budget = previous


def _watch_current(connection: Any) -> None:
    budget: ReadBudget | None = getattr(_armed, "budget", None)
    if budget is not None:
        budget.watch(connection)


def _shut(connection: Any) -> None:
    sock = getattr(connection, "sock", None)
    if sock is None:
        return
    # The plain socket's shutdown, also under TLS: SSLSocket.shutdown would drop the TLS
    # state under a reader still using it; this only makes its next recv return.
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _WatchedHTTPConnection(HTTPConnection):
    def getresponse(self) -> Any:
        _watch_current(self)
        return super().getresponse()


class _WatchedHTTPSConnection(HTTPSConnection):
    def getresponse(self) -> Any:
        _watch_current(self)
        return super().getresponse()


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class WatchedAdapter(HTTPAdapter):
    """requests adapter whose connections register with the thread's armed budget."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _WatchedHTTPPool,
            "https": _WatchedHTTPSPool,
        }
