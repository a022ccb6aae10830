"""CLI start-up: how long ``edgefill --help`` and ``edgefill COMMAND --help`` take, and
how that compares with an interpreter that does nothing.

    .venv/bin/python bench/bench_cli_start.py [--runs 21] [--compare DIR]

Each run is a fresh interpreter of this checkout's ``.venv`` running the CLI's entry point
(``python -c 'from edgefill.cli import main; main()'`` with the tree first on sys.path,
what the ``edgefill`` console script does), timed from spawn to exit with
``time.perf_counter``. The same loop times ``python -c pass`` (the same interpreter, its
``site`` and the editable install's finder included): every round runs the baseline and
every command line of every tree once, in turn, so that the load of a shared machine falls
on all of them alike. Each tree's bytecode is compiled first (``compileall``), as an
installed CLI's is. One JSON line per command line and tree: the median and the fastest
of ``--runs``, the median's ratio to the baseline's median, the median CPU time (user +
system, which waiting for a core on a loaded machine does not add to) and, for the command
lines of issue 23's target (``--help``, ``warm --help``), whether the median is within it
(0.15 s). ``--compare DIR`` times another tree of the project (say ``git archive main |
tar -x -C /tmp/edgefill-main``): compare medians within one run of this script only.

Shell completion (``argcomplete``) is measured too: ``_ARGCOMPLETE=1`` with a partial
command line, as the shell's completion hook runs it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
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
PACKAGES = ("edgefill", "shared", "prewarm_worker", "backfill_worker", "edge_origin_request")
BASELINE = "python -c pass"
# Issue 23: these start within 0.15 s on this machine's class of CPU (the median).
TARGET_SECONDS = 0.15
TARGET_LINES = ("--help", "warm --help")


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


def once(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds: user + system) of one run of ``command``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(
        command,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def compile_bytecode(tree: Path) -> None:
    """Write the tree's .pyc files first, so that every start reads bytecode as an installed
    CLI does: with PYTHONDONTWRITEBYTECODE set (as in some shells and CI), a start would
    otherwise compile each module it imports from source, every time."""
    packages = [str(tree / name) for name in PACKAGES if (tree / name).is_dir()]
    subprocess.run([str(PYTHON), "-m", "compileall", "-q", *packages], check=True)


def entry(tree: Path, argv: list[str]) -> list[str]:
    return [str(PYTHON), "-c", ENTRY, str(tree), *argv]


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
    lines = [(" ".join(argv), argv, plain) for argv in COMMAND_LINES]
    lines.append((f"completion: {COMPLETION_LINE}<TAB>", [], completion_env()))
    # (tree, label) → its command and environment; the baseline first, in every round.
    cases = {("", BASELINE): ([str(PYTHON), "-c", "pass"], plain)}
    for label, argv, env in lines:
        for name, tree in trees.items():
            cases[(name, label)] = (entry(tree, argv), env)
    for tree in trees.values():
        compile_bytecode(tree)
        once(entry(tree, ["--help"]), plain)  # warm the page cache
    seconds: dict[tuple[str, str], list[tuple[float, float]]] = {key: [] for key in cases}
    for _ in range(args.runs):
        for key, (command, env) in cases.items():
            seconds[key].append(once(command, env))
    baseline = statistics.median(wall for wall, _ in seconds[("", BASELINE)])
    for (name, label), runs in seconds.items():
        times = [wall for wall, _ in runs]
        median = statistics.median(times)
        result: dict[str, object] = {
            "tree": name or "-",
            "argv": label,
            "runs": args.runs,
            "median_ms": round(median * 1000),
            "fastest_ms": round(min(times) * 1000),
            "ratio_to_baseline": round(median / baseline, 1),
            # The CPU the run used, which a loaded machine's waits do not inflate.
            "cpu_median_ms": round(statistics.median(cpu for _, cpu in runs) * 1000),
        }
        if label in TARGET_LINES:
            result["target_ms"] = round(TARGET_SECONDS * 1000)
            result["within_target"] = median <= TARGET_SECONDS
        print(json.dumps(result))
    print(json.dumps({"load_average": os.getloadavg()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
