"""ReadBudget: the deadline that ends every origin read, whatever the socket timeout."""

from __future__ import annotations

import socket
import threading
import time
from types import SimpleNamespace

from shared.read_deadline import ReadBudget


def _blocked_reader(sock: socket.socket, result: list[bytes]) -> threading.Thread:
    thread = threading.Thread(target=lambda: result.append(sock.recv(10)), daemon=True)
    thread.start()
    return thread


def test_a_read_blocked_in_recv_returns_when_the_budget_runs_out() -> None:
    # Given a connection whose peer sends nothing, watched by a budget of 0.2 s
    ours, theirs = socket.socketpair()
    ours.settimeout(30)  # far longer than the budget
    with ours, theirs, ReadBudget(time.monotonic() + 0.2) as budget:
        budget.watch(SimpleNamespace(sock=ours))
        result: list[bytes] = []
        started = time.monotonic()
        # When a thread waits for bytes
        reader = _blocked_reader(ours, result)
        reader.join(timeout=5)
        # Then its recv ended at the deadline, and the budget reads as spent
        assert result == [b""]
        assert time.monotonic() - started < 2
        assert budget.spent


def test_a_connection_watched_after_the_deadline_is_shut_at_once() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        budget = ReadBudget(time.monotonic() - 1)
        assert budget.spent
        budget.watch(SimpleNamespace(sock=ours))
        assert ours.recv(10) == b""


def test_socket_timeouts_are_cut_to_the_time_left() -> None:
    now = [100.0]
    budget = ReadBudget(105.0, clock=lambda: now[0])
    try:
        assert budget.timeout(30.0) == 5.0
        assert budget.timeout(2.0) == 2.0
        now[0] = 200.0
        assert 0 < budget.timeout(30.0) < 0.01  # never 0: that would make it non-blocking
        assert budget.remaining() == 0.0
    finally:
        budget.close()


def test_without_a_deadline_nothing_is_cut_and_nothing_is_shut() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs, ReadBudget(None) as budget:
        budget.watch(SimpleNamespace(sock=ours))
        theirs.sendall(b"x")
        assert budget.timeout(30.0) == 30.0 and budget.remaining() is None
        assert not budget.spent
        assert ours.recv(10) == b"x"


def test_closing_the_budget_stops_its_timer() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        budget = ReadBudget(time.monotonic() + 0.1)
        budget.watch(SimpleNamespace(sock=ours))
        budget.close()
        time.sleep(0.3)
        theirs.sendall(b"y")
        assert ours.recv(10) == b"y"  # the connection went back to its pool intact
