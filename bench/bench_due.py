"""Benchmark: from due to revalidated, in the lab, with and without the sweep's look-ahead.

A copy is revalidated when the origin receives its refresh's conditional GET; it is due
at the time its due entry names. The lab (moto, the lab origin, the real backfill
worker behind its poller, the real sweep on a schedule: ``edgefill/lab``) copies
``--copies`` objects whose lifetimes are spread over ``--spread`` seconds, then runs the
sweep every ``--period`` seconds and records, for each copy, revalidated − due.

- **look-ahead** (issue 18): the sweep queues the refreshes due by its next run, each with
  an SQS ``DelaySeconds`` bringing it to its due time (``EDGEFILL_SWEEP_LOOKAHEAD`` =
  the period);
- **no look-ahead** (the baseline, measured in the same run): the previous sweep, which
  sends what is due when it runs, so a copy waits for the next run: up to one period.

The lab's period stands for the template's 15 minutes: with the look-ahead the lateness
does not grow with the period (it is the queue's and the worker's), without it it is up
to one period (a quarter of an hour in production, an hour with the old default).

Targets (exit status 1 when one is missed): with the look-ahead, p100 lateness ≤ 60 s
(the issue's bound) and p50 ≤ 5 s; without, p100 lateness ≥ half the period (the
baseline really waits for the schedule).

Run: .venv/bin/python bench/bench_due.py [--copies 120] [--spread 40] [--period 10]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import statistics
import sys
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backfill_worker.freshness.due_index import DUE_PREFIX, due_of  # noqa: E402
from backfill_worker.runtime import backfiller  # noqa: E402
from edgefill.lab.lab import Lab, LabSettings  # noqa: E402
from edgefill.lab.origin import LabOrigin  # noqa: E402
from shared.messages import BackfillMessage, to_json  # noqa: E402

# Seconds from a copy's fill to its due time, at least: the fills of all copies end first.
LEAD_SECONDS = 20


def fill(lab: Lab, copies: int, spread: float) -> list[str]:
    """Copy ``copies`` objects whose lifetimes spread over ``spread`` seconds; their paths.
    The real worker copies them, called directly (8 at a time): the lab's poller, one
    record per invocation as the template says, would take longer than the lead."""
    paths = [f"/due/{n:04d}.css" for n in range(copies)]
    for n, path in enumerate(paths):
        lifetime = LEAD_SECONDS + int(spread * n / copies)
        headers = {"Cache-Control": f"max-age={lifetime}"}
        lab.origin.put(path, f"/* {n} */".encode(), headers=headers)
    worker = backfiller()
    bodies = [to_json(BackfillMessage(uri=LabOrigin.uri(path))) for path in paths]
    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(worker.backfill, bodies))
    took = time.monotonic() - started
    if took > LEAD_SECONDS / 2 or any(outcome.status != "copied" for outcome in outcomes):
        raise SystemExit(f"the fills took {took:.1f} s or failed")
    return paths


def due_entries(s3: Any, bucket: str) -> dict[str, float]:
    """Entry key → due time (epoch seconds), for every due entry in the bucket."""
    found: dict[str, float] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=DUE_PREFIX):
        for item in page.get("Contents", []):
            when = due_of(item["Key"])
            if when is not None:
                found[item["Key"]] = when.timestamp()
    return found


def revalidated_at(lab: Lab, path: str) -> float | None:
    """When the origin received the first conditional GET of ``path``, or None."""
    for request in lab.origin.counts(path).requests:
        if request.header("If-None-Match") or request.header("If-Modified-Since"):
            return request.at
    return None


def measure(copies: int, spread: float, period: float, lookahead: int) -> list[float]:
    """Lateness (revalidated − due, seconds) of each copy, in a lab of its own."""
    settings = LabSettings(
        extra_env={
            "EDGEFILL_SWEEP_LOOKAHEAD": str(lookahead),
            "EDGEFILL_PREWARM_QUEUE_URL": "",  # no edge warming: only revalidation counts
        }
    )
    with Lab(settings) as lab:
        assert lab.aws is not None
        paths = fill(lab, copies, spread)
        s3 = lab.aws.client("s3")
        # Each copy's due time, from its first entry (sha256 of its key names it).
        due_by_path: dict[str, float] = {}
        entries = due_entries(s3, lab.settings.bucket)
        for path in paths:
            digest = hashlib.sha256(path.lstrip("/").encode()).hexdigest()
            (when,) = [t for key, t in entries.items() if key.endswith(digest)]
            due_by_path[path] = when
        lab.start_sweep(period)
        deadline = max(due_by_path.values()) + 2 * period + 30
        seen: dict[str, float] = {}
        while len(seen) < len(paths) and time.time() < deadline:
            for path in paths:
                if path not in seen and (at := revalidated_at(lab, path)) is not None:
                    seen[path] = at
            time.sleep(0.1)
        lab.stop_sweep()
        missing = [path for path in paths if path not in seen]
        if missing:
            raise SystemExit(f"{len(missing)} copies never revalidated, e.g. {missing[:3]}")
        return [seen[path] - due_by_path[path] for path in paths]


def summary(lateness: list[float]) -> dict[str, float]:
    ordered = sorted(lateness)
    return {
        "min": ordered[0],
        "p50": statistics.median(ordered),
        "p90": ordered[int(0.9 * (len(ordered) - 1))],
        "p100": ordered[-1],
    }


def main() -> int:
    # The worker called directly flushes an empty metric set now and then: not news here.
    warnings.filterwarnings("ignore", message="No application metrics")
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--copies", type=int, default=120)
    parser.add_argument("--spread", type=float, default=40.0)
    parser.add_argument("--period", type=float, default=10.0)
    args = parser.parse_args()
    print(
        f"{args.copies} copies, due times spread over {args.spread:g} s, "
        f"sweep every {args.period:g} s; lateness = revalidated − due, seconds"
    )
    print(f"{'sweep':<22} {'min':>7} {'p50':>7} {'p90':>7} {'p100':>7}")
    results: dict[str, dict[str, float]] = {}
    for name, lookahead in (("look-ahead", int(args.period)), ("no look-ahead (before)", 0)):
        # The handlers' JSON logs and EMF lines go to stdout, as in Lambda: kept out of
        # the table.
        with contextlib.redirect_stdout(io.StringIO()):
            lateness = measure(args.copies, args.spread, args.period, lookahead)
        figures = summary(lateness)
        results[name] = figures
        print(
            f"{name:<22} " + " ".join(f"{figures[k]:>7.2f}" for k in ("min", "p50", "p90", "p100"))
        )
    ok = True
    ahead, before = results["look-ahead"], results["no look-ahead (before)"]
    if ahead["p100"] > 60 or ahead["p50"] > 5:
        print(f"MISSED: with the look-ahead p50 {ahead['p50']:.2f} s, p100 {ahead['p100']:.2f} s")
        ok = False
    if before["p100"] < args.period / 2:
        print(f"MISSED: the baseline's p100 {before['p100']:.2f} s is not a period's wait")
        ok = False
    print("every target met" if ok else "some target missed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
