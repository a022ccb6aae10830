"""The objects the lab's full origin serves: several content types, non-ASCII names,
sizes from a few bytes to hundreds of MiB (large ones generated on the fly, never held)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Final

from edgefill.lab import vod
from edgefill.lab.origin import LabOrigin

CLOUDFRONT_USER_AGENT: Final = "Amazon CloudFront"
_RANGE: Final = re.compile(r"bytes=(\d+)-(\d*)")


@dataclass(frozen=True, slots=True)
class CatalogObject:
    path: str  # decoded, as a person reads it
    content_type: str
    size: int

    @property
    def uri(self) -> str:
        """The percent-encoded URI viewers and messages use."""
        return LabOrigin.uri(self.path)


def seed(origin: LabOrigin, large_bytes: int = 0) -> list[CatalogObject]:
    """Put the catalog on ``origin``; ``large_bytes`` > 0 adds a generated video that big."""
    objects: list[CatalogObject] = []

    def put(path: str, data: bytes, content_type: str, **headers: str) -> None:
        origin.put(path, data, content_type=content_type, headers=headers or None)
        objects.append(CatalogObject(path, content_type, len(data)))

    def generated(path: str, size: int, content_type: str, seed_value: int) -> None:
        origin.put_generated(path, size, seed=seed_value, content_type=content_type)
        objects.append(CatalogObject(path, content_type, size))

    put("/robots.txt", b"User-agent: *\nAllow: /\n", "text/plain; charset=utf-8")
    put(
        "/api/catalog.json",
        json.dumps({"items": [{"id": i, "name": f"item {i}"} for i in range(200)]}).encode(),
        "application/json",
        **{"Cache-Control": "public, max-age=300"},
    )
    put("/css/site.css", b"body{font-family:sans-serif}\n" * 400, "text/css")
    put("/js/app.js", b"export const answer = 42;\n" * 800, "text/javascript")
    put(
        "/docs/café-menü.pdf",
        b"%PDF-1.7\n" + "Crêpes, Käse, 東京\n".encode() * 3000,
        "application/pdf",
    )
    generated("/img/東京 tower.jpg", 350_000, "image/jpeg", 7)
    generated("/img/hero banner.jpg", 1_200_000, "image/jpeg", 11)
    generated("/video/teaser.mp4", 12 * 1024 * 1024, "video/mp4", 13)
    if large_bytes:
        generated("/video/launch-trailer.mp4", large_bytes, "video/mp4", 17)
    # A VOD title in HLS and DASH (edgefill/lab/vod.py), for playlist expansion.
    objects += [CatalogObject(o.path, o.content_type, o.size) for o in vod.seed(origin).objects]
    return objects


def launch_paths(origin: LabOrigin, count: int = 12) -> list[str]:
    """A launch's worth of small pages put on ``origin``; returns their decoded paths."""
    paths = []
    for index in range(count):
        path = f"/launch/page-{index:02d}.html"
        body = f"<html><body><h1>Launch page {index}</h1>{'<p>·</p>' * 200}</body></html>"
        origin.put(path, body.encode(), content_type="text/html; charset=utf-8")
        paths.append(path)
    return paths


def worker_body_gets(origin: LabOrigin, path: str) -> int:
    """GETs of ``path`` that carried its bytes and did not come from a POP (the backfill)."""
    return len(_worker_gets(origin, path))


def worker_copies(origin: LabOrigin, path: str) -> tuple[int, int, bool]:
    """(whole GETs, ranged GETs, some byte asked twice) of the backfill's requests for
    ``path``. A copy made once asks for each byte at most once: one whole GET, or ranges
    that do not overlap (a whole GET read partly, then ranges for the rest, counts the
    whole GET's range as starting at 0)."""
    size = origin.size(path)
    spans: list[tuple[int, int]] = []
    whole = ranged = 0
    for seen in _worker_gets(origin, path):
        match = _RANGE.fullmatch(seen.header("Range") or "") if seen.status == 206 else None
        if match is None:
            whole += 1
            spans.append((0, -1))  # up to wherever the reader stopped: checked below
        else:
            ranged += 1
            first, last = int(match.group(1)), int(match.group(2) or size - 1)
            spans.append((first, min(last, size - 1)))
    ranges = sorted(span for span in spans if span[1] >= 0)
    overlap = whole > 1 or any(a[1] >= b[0] for a, b in zip(ranges, ranges[1:], strict=False))
    overlap = overlap or (whole == 1 and any(first == 0 for first, _ in ranges))
    return whole, ranged, overlap


def _worker_gets(origin: LabOrigin, path: str) -> list[Any]:
    return [
        seen
        for seen in origin.counts(path).requests
        if seen.method == "GET"
        and seen.status in (200, 206)
        and seen.header("User-Agent") != CLOUDFRONT_USER_AGENT
    ]


def pop_body_gets(origin: LabOrigin, path: str) -> int:
    """GETs of ``path`` that POPs made on failover."""
    return sum(
        1
        for seen in origin.counts(path).requests
        if seen.method == "GET" and seen.header("User-Agent") == CLOUDFRONT_USER_AGENT
    )
