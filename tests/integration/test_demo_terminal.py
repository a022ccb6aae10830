"""``make demo`` in a real terminal shows only the story (issue 22): the handlers' JSON log
lines and EMF metric lines go to the log file, also while a progress bar is on screen.

``edgefill demo`` runs under a pseudo-terminal of 80 columns (``pty.fork``), as in tmux;
rich then sees a terminal and draws its live displays, the case a pipe never shows.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import struct
import sys
import termios
import time
from pathlib import Path

ROOT = Path(__file__).parents[2]
COLUMNS, ROWS = 80, 40
_ESCAPE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[()][0-9A-B]|\r")


def run_in_terminal(argv: list[str], timeout: float) -> tuple[int, str]:
    """Run ``argv`` with stdin, stdout and stderr on a new pseudo-terminal; (status, what
    the terminal received, control sequences removed)."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: its controlling terminal is the pty
        os.chdir(ROOT)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "EDGEFILL_"))}
        env.update(TERM="xterm-256color", COLUMNS=str(COLUMNS), LINES=str(ROWS))
        os.execve(argv[0], argv, env)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
    received = bytearray()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 1.0)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        received += chunk
    else:
        os.kill(pid, 9)
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), _ESCAPE.sub("", received.decode("utf-8", "replace"))


def test_the_demo_in_an_80_column_terminal_shows_only_the_story() -> None:
    # When `edgefill demo` runs in a terminal of 80 columns, through scene 3: the edge, the
    # backfill and the prewarm handlers have all logged and sent metrics by then (the whole
    # demo, 60-80 s of two cores, runs in CI as `make demo`; every scene has its e2e test)
    argv = [sys.executable, "-m", "edgefill.cli", "demo", "--through", "3"]
    code, screen = run_in_terminal(argv, timeout=300)
    lines = [line.strip() for line in screen.splitlines() if line.strip()]
    # Then it tells the story and every expectation holds
    assert code == 0, screen[-3000:]
    assert any("every expectation met" in line for line in lines)
    assert any(line.startswith("handler logs") or "handler logs" in line for line in lines)
    # And no handler log line or EMF metric line reached the screen
    logs = [line for line in lines if '"_aws"' in line or _is_json_log(line)]
    assert logs == [], logs[:5]
    # And they are in the log file instead
    log_file = re.search(r"(/\S+edgefill-demo-\S+\.log)", screen.replace("\n", ""))
    assert log_file is not None
    text = Path(log_file.group(1)).read_text(encoding="utf-8")
    assert '"_aws"' in text and '"level"' in text


def _is_json_log(line: str) -> bool:
    """A Powertools log line: one JSON object with a level and a message."""
    start = line.find("{")
    if start < 0:
        return False
    try:
        document = json.loads(line[start:])
    except ValueError:
        return '"level"' in line and '"message"' in line
    return isinstance(document, dict) and ("level" in document or "_aws" in document)
