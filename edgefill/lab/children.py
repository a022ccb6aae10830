"""Ending a lab child process that runs until its stdin closes (moto, the region workers,
the test suite's moto zygote)."""

from __future__ import annotations

import contextlib
import subprocess
from typing import Any


def end_child(child: subprocess.Popen[Any], timeout: float) -> None:
    """Close ``child``'s stdin, its signal to stop, and wait ``timeout`` seconds for it to
    exit; kill it if it has not."""
    with contextlib.suppress(OSError):
        if child.stdin is not None:
            child.stdin.close()
    try:
        child.wait(timeout)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait(timeout)
