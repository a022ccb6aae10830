"""CLI start-up: how long ``edgefill --help`` and ``edgefill COMMAND --help`` take.

    .venv/bin/python bench/bench_cli_start.py [--runs 21]

Each run is a fresh interpreter (``.venv/bin/edgefill``, the console script operators
type), timed from spawn to exit with ``time.perf_counter``; the median and the fastest of
``--runs`` are printed, as one JSON line per command line. The machine is shared, so the
median is the figure to compare, and only within one run of this script.

Shell completion (``argcomplete``) is measured too: ``_ARGCOMPLETE=1`` with a partial
command line, as the shell's completion hook runs it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EDGEFILL = ROOT / ".venv" / "bin" / "edgefill"
COMMAND_LINES = (["--help"], ["warm", "--help"], ["prewarm", "--help"])


def timed(argv: list[str], env: dict[str, str], runs: int) -> dict[str, object]:
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(
            [str(EDGEFILL), *argv],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
        )
        seconds.append(time.perf_counter() - started)
    return {
        "argv": " ".join(argv),
        "runs": runs,
        "median_ms": round(statistics.median(seconds) * 1000),
        "fastest_ms": round(min(seconds) * 1000),
    }


def completion(runs: int) -> dict[str, object] | None:
    """One completion request (``edgefill pre<TAB>``), if argcomplete is installed."""
    env = dict(os.environ)
    line = "edgefill pre"
    env.update(
        _ARGCOMPLETE="1",
        _ARGCOMPLETE_IFS="\013",
        COMP_LINE=line,
        COMP_POINT=str(len(line)),
        _ARGCOMPLETE_STDOUT_FILENAME=os.devnull,
    )
    result = timed([], env, runs)
    result["argv"] = "completion: edgefill pre<TAB>"
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, allow_abbrev=False)
    parser.add_argument("--runs", type=int, default=21)
    args = parser.parse_args()
    if not EDGEFILL.exists():
        print(f"{EDGEFILL} not found: run make venv first", file=sys.stderr)
        return 2
    env = {k: v for k, v in os.environ.items() if not k.startswith("_ARGCOMPLETE")}
    timed(["--help"], env, 2)  # warm the page cache and .pyc files
    for argv in COMMAND_LINES:
        print(json.dumps(timed(argv, env, args.runs)))
    result = completion(args.runs)
    if result is not None:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
