"""Backoff with jitter, for every retry that waits (the warmer's GETs, re-enqueued
prewarm tasks).

"Equal jitter": the wait is at least half the exponential step, so retries never bunch
up at zero, plus a random share of the other half, so workers that failed together do
not come back together.
"""

from __future__ import annotations


def backoff_with_jitter(base: float, exponent: int, cap: float, jitter: float) -> float:
    """Seconds to wait: half of ``min(cap, base × 2**exponent)`` plus ``jitter`` (a
    number in [0, 1), ``random.random()`` outside tests) times the other half."""
    step = min(cap, base * 2**exponent)
    return step / 2 + jitter * step / 2
