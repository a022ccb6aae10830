"""Benchmark of the manifest parser (issue 14): is the ``m3u8`` package fast enough?

    .venv/bin/python bench/bench_manifests.py

Measures, best of 5 runs each, the time ``shared.manifests.parse_manifest`` takes for:
- an HLS VOD media playlist of 20,000 segments (``m3u8`` parsing plus our URI rules),
  next to ``m3u8.loads`` alone and a bare line scan of the same text (the floor of any
  parser of our own);
- a DASH MPD whose SegmentTimeline expands to 20,000 segments;
- a hostile MPD (``r=10**12``), which must stop at the cap at once.
Target: each full parse <= 2 s (a fraction of a worker's budget). Exits 1 when missed.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import m3u8  # noqa: E402

from shared.manifests import parse_manifest  # noqa: E402

SEGMENTS = 20_000
TARGET_SECONDS = 2.0


def best_of(runs: int, work: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> int:
    lines = ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-TARGETDURATION:2", "#EXT-X-PLAYLIST-TYPE:VOD"]
    lines.append('#EXT-X-MAP:URI="init.mp4"')
    for index in range(SEGMENTS):
        lines += ["#EXTINF:2.000,", f"seg-{index:06d}.m4s"]
    lines.append("#EXT-X-ENDLIST")
    text = "\n".join(lines) + "\n"
    body = text.encode()
    mpd = (
        '<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static"><Period><AdaptationSet>'
        '<Representation id="v"><SegmentTemplate media="$RepresentationID$/$Time$.m4s">'
        f'<SegmentTimeline><S t="0" d="2" r="{SEGMENTS - 1}"/></SegmentTimeline>'
        "</SegmentTemplate></Representation></AdaptationSet></Period></MPD>"
    ).encode()
    hostile = mpd.replace(f'r="{SEGMENTS - 1}"'.encode(), b'r="1000000000000"')
    host = "cdn.example.com"
    figures = {
        "hls parse_manifest (20,000 segments)": best_of(
            5, lambda: parse_manifest("/v/index.m3u8", body, None, host)
        ),
        "hls m3u8.loads alone": best_of(5, lambda: m3u8.loads(text)),
        "hls bare line scan": best_of(
            5, lambda: [line for line in text.splitlines() if line and not line.startswith("#")]
        ),
        "dash parse_manifest (timeline, 20,000)": best_of(
            5, lambda: parse_manifest("/v/m.mpd", mpd, None, host)
        ),
        "dash hostile r=10**12 (cap 20,000)": best_of(
            5, lambda: parse_manifest("/v/m.mpd", hostile, None, host)
        ),
    }
    print(f"playlist: {len(body):,} bytes")
    # Ratios to the baseline measured in this run: the m3u8 parse alone.
    baseline = figures["hls m3u8.loads alone"]
    for name, seconds in figures.items():
        print(f"{name:42s} {seconds * 1000:8.1f} ms  {seconds / baseline:5.2f} x m3u8.loads")
    slow = [name for name, s in figures.items() if "parse_manifest" in name and s > TARGET_SECONDS]
    hostile_slow = figures["dash hostile r=10**12 (cap 20,000)"] > TARGET_SECONDS
    if slow or hostile_slow:
        print("MISSED:", ", ".join(slow) or "hostile")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
