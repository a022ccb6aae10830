"""What warming paths × targets × encodings costs, from stored sizes and a price table.

Pure arithmetic: no I/O. Upper bounds by construction:

- ``bytes`` = Σ stored size × targets × encodings (a compressed variant is smaller);
- every warm is billed as an HTTPS request and as a cache miss running the origin-request
  function once (Lambda@Edge);
- data transfer at the first (dearest) volume tier, no free tier;
- through the queue (``edgefill prewarm``): one worker invocation per message, busy for
  its bytes at ``workerBytesPerSecond`` plus ``workerSecondsPerWarm`` a warm, with no
  credit for its parallel requests; three SQS requests (send, receive, delete) per
  message, one per 64 KiB of body each.

Paths whose size is unknown count in ``warms`` and in ``unknownSizes`` but add no bytes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from edgefill.pricing import BYTES_PER_GB, PriceTable
from edgefill.target_geography import geography_of

SQS_CHUNK_BYTES: Final = 64 * 1024
SQS_REQUESTS_PER_MESSAGE: Final = 3  # SendMessage, ReceiveMessage, DeleteMessage


@dataclass(frozen=True, slots=True)
class TargetEstimate:
    target: str
    geography: str
    geography_known: bool
    warms: int
    bytes: int
    usd: float

    def as_json(self) -> dict[str, Any]:
        return {
            "warms": self.warms,
            "bytes": self.bytes,
            "usd": round(self.usd, 6),
            "geography": self.geography,
            "geographyKnown": self.geography_known,
        }


@dataclass(frozen=True, slots=True)
class Estimate:
    paths: int
    warms: int
    bytes: int
    unknown_sizes: int
    usd: float
    by_target: dict[str, TargetEstimate]
    prices: PriceTable
    workers_usd: float = 0.0  # prewarm worker Lambda + SQS (through the queue only)
    parts: dict[str, float] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """The ``--json`` shape: paths, warms, bytes, unknownSizes, usd, byTarget, prices."""
        return {
            "paths": self.paths,
            "warms": self.warms,
            "bytes": self.bytes,
            "unknownSizes": self.unknown_sizes,
            "usd": round(self.usd, 6),
            "byTarget": {name: target.as_json() for name, target in self.by_target.items()},
            "prices": {"asOf": self.prices.as_of, "source": self.prices.source},
        }


def estimate(
    sizes: Sequence[int | None],
    targets: Sequence[str],
    encodings: Sequence[str],
    prices: PriceTable,
    message_bytes: Sequence[int] = (),
) -> Estimate:
    """The estimate for one path per entry of ``sizes`` (None: unknown), warmed at each
    distinct target for each distinct encoding. ``message_bytes`` (the prewarm message
    bodies' sizes) adds the queue's and the worker's costs; empty for a local warm."""
    targets = list(dict.fromkeys(targets))
    encodings = list(dict.fromkeys(encodings))
    known_bytes = sum(size for size in sizes if size is not None)
    unknown = sum(1 for size in sizes if size is None)
    per_target_warms = len(sizes) * len(encodings)
    per_target_bytes = known_bytes * len(encodings)
    a = prices.assumptions
    edge_per_warm = prices.edge_per_million / 1e6 + (
        prices.edge_per_gb_second * a["edgeMemoryMB"] / 1024 * a["edgeSecondsPerInvocation"]
    )
    by_target: dict[str, TargetEstimate] = {}
    parts = {"transfer": 0.0, "requests": 0.0, "lambdaEdge": 0.0}
    for target in targets:
        geo, known = geography_of(target, prices.transfer_per_gb)
        transfer = per_target_bytes / BYTES_PER_GB * prices.transfer_per_gb[geo]
        requests = per_target_warms / 10_000 * prices.https_per_10k[geo]
        edge = per_target_warms * edge_per_warm
        parts["transfer"] += transfer
        parts["requests"] += requests
        parts["lambdaEdge"] += edge
        by_target[target] = TargetEstimate(
            target, geo, known, per_target_warms, per_target_bytes, transfer + requests + edge
        )
    warms = per_target_warms * len(targets)
    total_bytes = per_target_bytes * len(targets)
    workers = _workers_usd(message_bytes, warms, total_bytes, prices, parts)
    return Estimate(
        paths=len(sizes),
        warms=warms,
        bytes=total_bytes,
        unknown_sizes=unknown,
        usd=sum(t.usd for t in by_target.values()) + workers,
        by_target=by_target,
        prices=prices,
        workers_usd=workers,
        parts=parts,
    )


def _workers_usd(
    message_bytes: Sequence[int],
    warms: int,
    total_bytes: int,
    prices: PriceTable,
    parts: dict[str, float],
) -> float:
    if not message_bytes:
        return 0.0
    a = prices.assumptions
    sqs_requests = sum(
        SQS_REQUESTS_PER_MESSAGE * max(1, math.ceil(size / SQS_CHUNK_BYTES))
        for size in message_bytes
    )
    seconds = total_bytes / a["workerBytesPerSecond"] + warms * a["workerSecondsPerWarm"]
    gb_seconds = a["workerMemoryMB"] / 1024 * seconds
    parts["sqs"] = sqs_requests / 1e6 * prices.sqs_per_million
    parts["lambda"] = (
        len(message_bytes) / 1e6 * prices.lambda_per_million
        + gb_seconds * prices.lambda_per_gb_second
    )
    return parts["sqs"] + parts["lambda"]
