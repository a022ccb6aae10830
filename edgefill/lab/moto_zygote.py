"""One process that has imported and tuned moto, and forks a moto server for whoever asks.

Each moto server the lab starts is a child process (``edgefill/lab/aws.py`` says why), and
starting one costs its interpreter about 2.3 s of CPU before it serves anything: moto's
server, its CloudFormation (nearly every moto service) and ``tune_moto()``'s model loads.
The test suite starts about fifteen (a session server per xdist worker, one per lab, the
labs of the CLI processes it runs). With ``EDGEFILL_LAB_MOTO_ZYGOTE`` naming this
process's socket, ``MotoProcess`` asks it instead: it forks a child that already holds all
of that, and the child serves on a free port of the host it was given.

The protocol, over a Unix stream socket: the client sends the host and a newline; the
child answers its port and a newline (or ``error: …``); the child serves until the client
closes its end (``stop()``, or the client dying), then stops the server, answers
``stopped`` and exits. The zygote itself exits when its stdin closes (the process that
started it stopped, or died). The socket appears at its path only once it listens (it is
bound under another name and renamed), so a client either finds it ready or not at all.

Nothing here is the lab's behaviour: a moto from the zygote answers as one from
``MotoProcess``'s own child does (the same code, tuned the same way). The lab uses it only
where the variable is set: the test suite sets it (``tests/conftest.py``).
"""

from __future__ import annotations

import contextlib
import gc
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import IO, Final

from edgefill.lab import moto_server
from edgefill.lab.children import end_child

ZYGOTE_VARIABLE: Final = "EDGEFILL_LAB_MOTO_ZYGOTE"
# How long a client waits for the child's first line: a fork and a server start.
ANSWER_SECONDS: Final = 60.0
STOP_SECONDS: Final = 10.0
_LINE_BYTES: Final = 4096


class MotoZygote:
    """Starts the zygote process (``start()`` returns its socket path) and stops it."""

    def __init__(self) -> None:
        self._folder = tempfile.TemporaryDirectory(prefix="edgefill-moto-zygote-")
        self.path = str(Path(self._folder.name) / "moto.sock")
        self.log = Path(self._folder.name) / "zygote.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> str:
        """Start the zygote without waiting for it: until its socket appears, a
        ``MotoProcess`` starts a child of its own."""
        self._log = self.log.open("wb")
        self._process = subprocess.Popen(
            [sys.executable, "-m", "edgefill.lab.moto_zygote", self.path],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=self._log,
            start_new_session=True,  # a Ctrl-C at the terminal is the suite's to handle
        )
        return self.path

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            end_child(process, STOP_SECONDS)
        if self._log is not None:
            self._log.close()
            self._log = None
        self._folder.cleanup()


def connect(path: str, host: str) -> tuple[socket.socket, int] | None:
    """Ask the zygote at ``path`` for a moto server on ``host``: the connection that keeps
    it alive and its port, or None when there is no zygote there (yet). Raises
    ``RuntimeError`` when the zygote's child could not start a server."""
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.settimeout(ANSWER_SECONDS)
        conn.connect(path)
        conn.sendall(host.encode() + b"\n")
        answer = _read_line(conn)
    except OSError:
        conn.close()
        return None
    if not answer.isdigit():
        conn.close()
        if not answer:  # the zygote went away between accept and fork
            return None
        raise RuntimeError(f"moto did not start: {answer.removeprefix('error: ')[:2000]}")
    return conn, int(answer)


def release(conn: socket.socket) -> None:
    """End the server ``connect`` gave: it stops, and says so, before this returns."""
    with contextlib.suppress(OSError):
        conn.shutdown(socket.SHUT_WR)
        conn.settimeout(STOP_SECONDS)
        while conn.recv(_LINE_BYTES):
            pass
    conn.close()


def alive(conn: socket.socket) -> bool:
    """Whether the child behind ``conn`` is still serving (it has not closed its end)."""
    try:
        readable, _, _ = select.select([conn], [], [], 0)
        if not readable:
            return True
        return bool(conn.recv(1, socket.MSG_PEEK))
    except OSError:
        return False


def _read_line(conn: socket.socket) -> str:
    data = b""
    while b"\n" not in data and len(data) < _LINE_BYTES:
        chunk = conn.recv(_LINE_BYTES)
        if not chunk:
            break
        data += chunk
    return data.partition(b"\n")[0].decode(errors="replace").strip()


# ---- the zygote process -----------------------------------------------------------


def main(path: str) -> int:
    import moto.cloudformation  # noqa: F401 - what the lab's stacks need, loaded once
    import moto.server  # noqa: F401

    moto_server.prepare()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path + ".binding")
    listener.listen(64)
    os.rename(path + ".binding", path)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps the children
    gc.freeze()  # what every child inherits stays out of its collections (and unshared pages)
    try:
        while True:
            readable, _, _ = select.select([listener, sys.stdin], [], [])
            if sys.stdin in readable and not os.read(sys.stdin.fileno(), _LINE_BYTES):
                return 0  # the process that started us is gone
            if listener in readable:
                conn, _ = listener.accept()
                if os.fork() == 0:
                    code = 1
                    try:
                        listener.close()
                        code = _serve(conn)
                    finally:
                        os._exit(code)  # never back into this loop, whatever happened
                conn.close()
    finally:
        listener.close()
        with contextlib.suppress(OSError):
            os.unlink(path)


def _serve(conn: socket.socket) -> int:
    """The forked child: one moto server, until the client closes its end."""
    import random

    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    random.seed()  # not the zygote's sequence: moto draws its identifiers from it
    try:
        conn.settimeout(ANSWER_SECONDS)
        server = moto_server.start(_read_line(conn))
        conn.sendall(f"{server.get_host_and_port()[1]}\n".encode())
    except Exception as error:  # noqa: BLE001 - the client is told, then the child ends
        with contextlib.suppress(OSError):
            conn.sendall(f"error: {error}\n".encode())
        return 1
    try:
        conn.settimeout(None)
        while conn.recv(_LINE_BYTES):
            pass
    except OSError:
        pass
    server.stop()
    with contextlib.suppress(OSError):
        conn.sendall(b"stopped\n")
    conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
