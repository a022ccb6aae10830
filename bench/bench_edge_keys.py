"""Benchmark of the edge's key check: ``ObjectKey.from_uri`` on every failover (issue 9).

    .venv/bin/python bench/bench_edge_keys.py

The edge runs the backfill worker's own key rules before it queues a message, so it
queues nothing the worker would refuse. Measured per URI, in one process (a warm
container), over URIs of the shapes failovers carry: short, percent-encoded non-ASCII,
long (near S3's 1 024-byte key limit) and refused ones (non-canonical, traversal).
Target: median <= 20 us per call for every shape (the same budget as the edge's
pass-through path). Exits 1 when a target is missed. The baseline, measured in the same
run, is ``urllib.parse.unquote`` of the same URI: the least any key mapping must do; the
ratio says what the rules (canonical form, traversal, reserved prefix, length) add.
"""

from __future__ import annotations

import contextlib
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from shared.keys import InvalidKey, ObjectKey  # noqa: E402

TARGET_MEDIAN_US = 20.0
ROUNDS = 20_000
SHAPES = {
    "short": "/img/a%20b.jpg",
    "non-ASCII": "/photos/%E6%97%A5%E6%9C%AC/caf%C3%A9%20cr%C3%A8me.jpg",
    "1000-byte": "/" + "/".join(["segment-%C3%A9" + "x" * 30] * 20),
    "refused: raw +": "/img/a+b.jpg",
    "refused: %2F": "/img/a%2Fb.jpg",
    "refused: traversal": "/a/%2e%2e/b",
}


def per_call_us(call: Callable[[str], object], uri: str) -> list[float]:
    samples = []
    for _ in range(ROUNDS):
        started = time.perf_counter_ns()
        with contextlib.suppress(InvalidKey):
            call(uri)
        samples.append((time.perf_counter_ns() - started) / 1000)
    return samples


def main() -> int:
    failed = False
    print(
        f"{'shape':<22} {'bytes':>6} {'median us':>10} {'p99 us':>8} "
        f"{'unquote us':>10} {'ratio':>6}  target"
    )
    for name, uri in SHAPES.items():
        baseline = statistics.median(per_call_us(unquote, uri))
        samples = sorted(per_call_us(ObjectKey.from_uri, uri))
        median = statistics.median(samples)
        p99 = samples[int(len(samples) * 0.99)]
        ok = median <= TARGET_MEDIAN_US
        failed |= not ok
        verdict = "ok" if ok else "MISSED"
        target = f"<= {TARGET_MEDIAN_US:g} {verdict}"
        print(
            f"{name:<22} {len(uri):>6} {median:>10.2f} {p99:>8.2f} "
            f"{baseline:>10.2f} {median / baseline:>6.1f}  {target}"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
