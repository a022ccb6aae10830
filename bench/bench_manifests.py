"""Benchmark of the manifest parser (issue 14): is the ``m3u8`` package fast enough?

    .venv/bin/python bench/bench_manifests.py

Measures the time ``shared.manifests.parse_manifest`` takes (best of 7 rounds; each round
runs every workload once, in turn, so that a busy shared machine slows all of them alike
and the ratios stay comparable) for:
- an HLS VOD media playlist of 20,000 segments (``m3u8`` parsing plus our URI rules),
  next to ``m3u8.loads`` alone and a bare line scan of the same text (the floor of any
  parser of our own);
- a DASH MPD whose SegmentTimeline expands to 20,000 segments;
- a hostile MPD (``r=10**12``), which must stop at the cap at once;
- an MPD of 20,000 Representations in one AdaptationSet sharing its SegmentTemplate
  (before 2026-12-08 the parser looked through the AdaptationSet's children once per
  Representation: 3.5 s for 2,000, quadratic);
- the same HLS playlist with a malformed ``EXTINF`` every 1,000 segments (20 tags ``m3u8``
  cannot parse: the parse resumes after each) and with a distinct ``EXT-X-KEY`` before every
  segment (``m3u8`` alone de-duplicates keys in quadratic time: 18 s for these).
Target: each full parse <= 2 s (a fraction of a worker's budget), and the HLS parse within
3 x ``m3u8.loads`` measured in the same run (issue 21). Exits 1 when either is missed.
"""

from __future__ import annotations

import re
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
MAX_HLS_RATIO = 3.0
ROUNDS = 7


def best_of_interleaved(rounds: int, work: dict[str, Callable[[], object]]) -> dict[str, float]:
    """The best time of each workload over ``rounds`` rounds of all of them in turn."""
    best = dict.fromkeys(work, float("inf"))
    for _ in range(rounds):
        for name, run in work.items():
            started = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - started)
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
    ladder = (
        '<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" mediaPresentationDuration="PT2S">'
        '<Period><AdaptationSet><SegmentTemplate duration="2" media="same.m4s"/>'
        + "".join(f'<Representation id="r{index}"/>' for index in range(SEGMENTS))
        + "</AdaptationSet></Period></MPD>"
    ).encode()
    malformed = re.sub(r"#EXTINF:2\.000,\n(seg-\d{3}000)", r"#EXTINF:two,\n\1", text).encode()
    keyed = "".join(
        f'#EXT-X-KEY:METHOD=AES-128,URI="k{n}.key"\n{line}\n'
        if line.startswith("#EXTINF")
        else f"{line}\n"
        for n, line in enumerate(text.splitlines())
    ).encode()
    host = "cdn.example.com"
    figures = best_of_interleaved(
        ROUNDS,
        {
            "hls parse_manifest (20,000 segments)": lambda: parse_manifest(
                "/v/index.m3u8", body, None, host
            ),
            "hls m3u8.loads alone": lambda: m3u8.loads(text),
            "hls bare line scan": lambda: [
                line for line in text.splitlines() if line and not line.startswith("#")
            ],
            "hls, 20 malformed EXTINF (resumed)": lambda: parse_manifest(
                "/v/index.m3u8", malformed, None, host
            ),
            "hls, 20,000 distinct EXT-X-KEY": lambda: parse_manifest(
                "/v/index.m3u8", keyed, None, host
            ),
            "dash parse_manifest (timeline, 20,000)": lambda: parse_manifest(
                "/v/m.mpd", mpd, None, host
            ),
            "dash hostile r=10**12 (cap 20,000)": lambda: parse_manifest(
                "/v/m.mpd", hostile, None, host
            ),
            "dash parse_manifest (20,000 Representations)": lambda: parse_manifest(
                "/v/m.mpd", ladder, None, host
            ),
        },
    )
    print(f"playlist: {len(body):,} bytes")
    # Ratios to the baseline measured in this run: the m3u8 parse alone.
    baseline = figures["hls m3u8.loads alone"]
    for name, seconds in figures.items():
        print(f"{name:42s} {seconds * 1000:8.1f} ms  {seconds / baseline:5.2f} x m3u8.loads")
    slow = [name for name, s in figures.items() if "parse_manifest" in name and s > TARGET_SECONDS]
    if figures["dash hostile r=10**12 (cap 20,000)"] > TARGET_SECONDS:
        slow.append("hostile")
    ratio = figures["hls parse_manifest (20,000 segments)"] / baseline
    if ratio > MAX_HLS_RATIO:
        slow.append(f"hls parse is {ratio:.2f} x m3u8.loads (at most {MAX_HLS_RATIO})")
    if slow:
        print("MISSED:", ", ".join(slow))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
