"""``edgefill`` in a process of its own, as an operator's shell starts it: for tests that
send it signals or read what it prints while it runs."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def edgefill_process(argv: Sequence[str], env: Mapping[str, str]) -> subprocess.Popen[str]:
    """``python -m edgefill.cli ARGV`` from the checkout, its output piped as text."""
    return subprocess.Popen(
        [sys.executable, "-m", "edgefill.cli", *argv],
        cwd=ROOT,
        env=dict(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
