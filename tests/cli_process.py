"""``edgefill`` in a process of its own, as an operator's shell starts it: for tests that
send it signals or read what it prints while it runs."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from edgefill.lab.moto_zygote import ZYGOTE_VARIABLE

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


def with_moto_zygote(env: dict[str, str]) -> dict[str, str]:
    """``env`` (an operator's, without ``EDGEFILL_`` settings) plus the suite's moto zygote
    when one runs (tests/conftest.py), for a process that starts a lab: where its moto
    comes from is the suite's business, and what the operator sees is the same. Without
    it each such process would load moto itself (``edgefill/lab/moto_zygote.py``); that
    path has its own tests, and ``make demo`` and CI's terminal demo take it."""
    zygote = os.environ.get(ZYGOTE_VARIABLE)
    return {**env, ZYGOTE_VARIABLE: zygote} if zygote else env
