"""``edgefill demo`` under a pseudo-terminal of 80 columns (``pty.fork``), as in tmux: rich
then sees a terminal and draws its live displays, the case a pipe never shows. The
handlers' JSON log lines and EMF metric lines must go to the log file only (issue 22).

Used by tests/integration/test_demo_terminal.py (the first scenes) and by CI, which runs
the whole demo this way: ``python -m tests.demo_terminal`` (exit 1 with the reason when
the screen shows anything but the story or an expectation fails).
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

from tests.cli_process import with_moto_zygote

ROOT = Path(__file__).parents[1]
COLUMNS, ROWS = 80, 40
_ESCAPE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[()][0-9A-B]|\r")


def run_in_terminal(
    argv: list[str], timeout: float, temp_dir: str | None = None
) -> tuple[int, str]:
    """Run ``argv`` with stdin, stdout and stderr on a new pseudo-terminal; (status, what
    the terminal received, control sequences removed). ``temp_dir``: its TMPDIR (where the
    demo leaves its handler log), else the machine's."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: its controlling terminal is the pty
        os.chdir(ROOT)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "EDGEFILL_"))}
        env = with_moto_zygote(env)
        env.update(TERM="xterm-256color", COLUMNS=str(COLUMNS), LINES=str(ROWS))
        if temp_dir is not None:
            env["TMPDIR"] = temp_dir
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


def screen_problems(code: int, screen: str) -> list[str]:
    """What is wrong with a demo's run in the terminal: an empty list when it told the
    story, met every expectation, and kept every handler log and metric line off screen
    and in its log file."""
    lines = [line.strip() for line in screen.splitlines() if line.strip()]
    problems = []
    if code != 0 or not any("every expectation met" in line for line in lines):
        # The failed rows of the expectation table first: pytest cuts a long message.
        failed = [line for line in lines if "✗" in line]
        problems.append(f"the demo failed (exit {code}): {failed} {screen[-3000:]}")
    logs = [line for line in lines if '"_aws"' in line or _is_json_log(line)]
    if logs:
        problems.append(f"{len(logs)} handler log or metric lines on screen: {logs[:5]}")
    log_file = re.search(r"(/\S+edgefill-demo-\S+\.log)", screen.replace("\n", ""))
    if log_file is None:
        problems.append("no handler log file named at the end")
    else:
        text = Path(log_file.group(1)).read_text(encoding="utf-8")
        if '"_aws"' not in text or '"level"' not in text:
            problems.append(f"the log file {log_file.group(1)} lacks the logs or the metrics")
    return problems


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


def main() -> int:
    """The whole demo in an 80-column terminal (CI)."""
    code, screen = run_in_terminal([sys.executable, "-m", "edgefill.cli", "demo"], timeout=600)
    print(screen)
    problems = screen_problems(code, screen)
    for problem in problems:
        print(f"demo in a terminal: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
