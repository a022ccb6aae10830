"""CLI start-up: how long ``edgefill --help`` and ``edgefill COMMAND --help`` take.

    .venv/bin/python bench/bench_cli_start.py [--runs 21] [--compare DIR]

Each run is a fresh interpreter of this checkout's ``.venv`` running the CLI's entry point
(``python -c 'from edgefill.cli import main; main()'`` with the tree first on sys.path,
what the ``edgefill`` console script does), timed from spawn to exit with
``time.perf_counter``; the median and the fastest of ``--runs`` are printed, one JSON line
per command line and tree. ``--compare DIR`` times another tree of the project (say
``git archive main | tar -x -C /tmp/edgefill-main``) in the same loop, one run of each in
turn, so that the load of a shared machine falls on both alike: compare medians within one
run of this script only.

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
PYTHON = ROOT / ".venv" / "bin" / "python"
COMMAND_LINES = (["--help"], ["warm", "--help"], ["prewarm", "--help"])
ENTRY = "import sys; sys.path.insert(0, sys.argv.pop(1)); from edgefill.cli import main; main()"
COMPLETION_LINE = "edgefill pre"


def completion_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        _ARGCOMPLETE="1",
        _ARGCOMPLETE_IFS="\013",
        COMP_LINE=COMPLETION_LINE,
        COMP_POINT=str(len(COMPLETION_LINE)),
        _ARGCOMPLETE_STDOUT_FILENAME=os.devnull,
    )
    return env


def once(tree: Path, argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(
        [str(PYTHON), "-c", ENTRY, str(tree), *argv],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, allow_abbrev=False)
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--compare", type=Path, help="another tree of the project to time")
    args = parser.parse_args()
    if not PYTHON.exists():
        print(f"{PYTHON} not found: run make venv first", file=sys.stderr)
        return 2
    trees = {"this tree": ROOT} | ({str(args.compare): args.compare} if args.compare else {})
    plain = {k: v for k, v in os.environ.items() if not k.startswith("_ARGCOMPLETE")}
    cases = [(" ".join(argv), argv, plain) for argv in COMMAND_LINES]
    cases.append((f"completion: {COMPLETION_LINE}<TAB>", [], completion_env()))
    for tree in trees.values():
        once(tree, ["--help"], plain)  # warm the page cache and the .pyc files
    for label, argv, env in cases:
        seconds: dict[str, list[float]] = {name: [] for name in trees}
        for _ in range(args.runs):
            for name, tree in trees.items():
                seconds[name].append(once(tree, argv, env))
        for name, times in seconds.items():
            result = {
                "tree": name,
                "argv": label,
                "runs": args.runs,
                "median_ms": round(statistics.median(times) * 1000),
                "fastest_ms": round(min(times) * 1000),
            }
            print(json.dumps(result))
    print(json.dumps({"load_average": os.getloadavg()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
