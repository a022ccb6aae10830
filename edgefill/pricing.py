"""The public prices ``edgefill estimate`` and the send caps use, with their date and source.

Built-in figures are AWS's published on-demand list prices (USD, before free tiers and
volume discounts, so an estimate is an upper bound for most accounts):

- CloudFront, https://aws.amazon.com/cloudfront/pricing/ : regional data transfer out to
  the internet per GB, first-10-TB tier, by edge geography; HTTPS requests per 10 000.
- Lambda, https://aws.amazon.com/lambda/pricing/ : x86 duration per GB-second and
  requests per million, for the prewarm worker; Lambda@Edge likewise, for the
  origin-request function that runs on every cache miss a warm causes.
- SQS, https://aws.amazon.com/sqs/pricing/ : standard-queue requests per million, each
  64 KiB of a payload billed as one request.

``--prices FILE`` (JSON, the shape of ``PriceTable.as_json``) replaces any of these; the
file must state its own ``asOf`` and ``source``, which the estimate then reports.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

from edgefill.operations import OperatorError

# CloudFront's price geographies (the columns of its pricing table).
GEOGRAPHIES: Final = {
    "us": "United States, Mexico and Canada",
    "eu": "Europe, Israel and Türkiye",
    "za-me": "South Africa, Kenya, Nigeria and the Middle East",
    "sa": "South America",
    "jp": "Japan",
    "au": "Australia and New Zealand",
    "ap": "Hong Kong, Indonesia, Philippines, Singapore, South Korea, Taiwan, Thailand, "
    "Malaysia and Vietnam",
    "in": "India",
}
# AWS bills data transfer in GB of 2^30 bytes.
BYTES_PER_GB: Final = 1024**3


@dataclass(frozen=True, slots=True)
class PriceTable:
    as_of: str
    source: str
    transfer_per_gb: Mapping[str, float]  # geography → USD per GB out to the internet
    https_per_10k: Mapping[str, float]  # geography → USD per 10 000 HTTPS requests
    lambda_per_gb_second: float
    lambda_per_million: float
    edge_per_gb_second: float
    edge_per_million: float
    sqs_per_million: float
    # How the workers spend Lambda time (assumptions, overridable like the prices):
    # the prewarm worker's memory (template: 512 MB), its download rate, its overhead per
    # warm; the edge function's memory (128 MB) and run time on a pass-through.
    assumptions: Mapping[str, float] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "asOf": self.as_of,
            "source": self.source,
            "cloudfront": {
                "dataTransferOutPerGB": dict(self.transfer_per_gb),
                "httpsRequestsPer10k": dict(self.https_per_10k),
            },
            "lambda": {
                "perGBSecond": self.lambda_per_gb_second,
                "requestsPerMillion": self.lambda_per_million,
            },
            "lambdaEdge": {
                "perGBSecond": self.edge_per_gb_second,
                "requestsPerMillion": self.edge_per_million,
            },
            "sqs": {"requestsPerMillion": self.sqs_per_million},
            "assumptions": dict(self.assumptions),
        }


BUILT_IN: Final = PriceTable(
    as_of="2026-11-30",
    source=(
        "AWS list prices: https://aws.amazon.com/cloudfront/pricing/ (data transfer out, "
        "first 10 TB; HTTPS requests), https://aws.amazon.com/lambda/pricing/ (x86 and "
        "Lambda@Edge), https://aws.amazon.com/sqs/pricing/ (standard queue)"
    ),
    transfer_per_gb={
        "us": 0.085,
        "eu": 0.085,
        "za-me": 0.110,
        "sa": 0.110,
        "jp": 0.114,
        "au": 0.114,
        "ap": 0.120,
        "in": 0.109,
    },
    https_per_10k={
        "us": 0.0100,
        "eu": 0.0120,
        "za-me": 0.0220,
        "sa": 0.0220,
        "jp": 0.0120,
        "au": 0.0125,
        "ap": 0.0120,
        "in": 0.0120,
    },
    lambda_per_gb_second=0.0000166667,
    lambda_per_million=0.20,
    edge_per_gb_second=0.00005001,
    edge_per_million=0.60,
    sqs_per_million=0.40,
    assumptions={
        "workerMemoryMB": 512,
        "workerBytesPerSecond": 50 * 1024**2,
        "workerSecondsPerWarm": 0.05,
        "edgeMemoryMB": 128,
        "edgeSecondsPerInvocation": 0.01,
    },
)

_SECTIONS: Final = {
    "lambda": ("perGBSecond", "requestsPerMillion"),
    "lambdaEdge": ("perGBSecond", "requestsPerMillion"),
    "sqs": ("requestsPerMillion",),
}


def load_prices(path: str | None) -> PriceTable:
    """The built-in table, or it with the figures ``path`` gives replaced."""
    if path is None:
        return BUILT_IN
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise OperatorError(f"--prices {path}: {error.strerror or error}") from None
    except ValueError as error:
        raise OperatorError(f"--prices {path}: not JSON ({error})") from None
    return merge_prices(BUILT_IN, document, where=f"--prices {path}")


def merge_prices(base: PriceTable, document: Any, where: str = "prices") -> PriceTable:
    """``base`` with the figures of ``document`` (the ``as_json`` shape) replaced; every
    unknown key and every value that is not a finite number ≥ 0 is an error naming it."""
    if not isinstance(document, dict):
        raise OperatorError(f"{where}: must be a JSON object")
    known = {"asOf", "source", "cloudfront", *_SECTIONS, "assumptions"}
    for key in document:
        if key not in known:
            raise OperatorError(f"{where}: unknown key {key!r} (expected {', '.join(known)})")
    for key in ("asOf", "source"):
        if not isinstance(document.get(key), str) or not document[key].strip():
            raise OperatorError(f"{where}: {key!r} must say where and when the prices are from")
    table = replace(base, as_of=document["asOf"].strip(), source=document["source"].strip())
    cloudfront = _object(document.get("cloudfront", {}), f"{where}: cloudfront")
    for key in cloudfront:
        if key not in ("dataTransferOutPerGB", "httpsRequestsPer10k"):
            raise OperatorError(f"{where}: unknown key cloudfront.{key}")
    table = replace(
        table,
        transfer_per_gb=_by_geography(
            base.transfer_per_gb, cloudfront.get("dataTransferOutPerGB", {}), where
        ),
        https_per_10k=_by_geography(
            base.https_per_10k, cloudfront.get("httpsRequestsPer10k", {}), where
        ),
    )
    table = replace(table, **_service_prices(document, where))
    assumptions = dict(base.assumptions)
    for key, value in _object(document.get("assumptions", {}), f"{where}: assumptions").items():
        if key not in assumptions:
            raise OperatorError(f"{where}: unknown key assumptions.{key}")
        assumptions[key] = _price(value, f"assumptions.{key}", where)
    return replace(table, assumptions=assumptions)


# (section, key) of the JSON shape → the PriceTable field it sets.
_SERVICE_FIELDS: Final = {
    ("lambda", "perGBSecond"): "lambda_per_gb_second",
    ("lambda", "requestsPerMillion"): "lambda_per_million",
    ("lambdaEdge", "perGBSecond"): "edge_per_gb_second",
    ("lambdaEdge", "requestsPerMillion"): "edge_per_million",
    ("sqs", "requestsPerMillion"): "sqs_per_million",
}


def _service_prices(document: dict[str, Any], where: str) -> dict[str, Any]:
    """The Lambda, Lambda@Edge and SQS figures ``document`` gives, as PriceTable fields."""
    given: dict[str, Any] = {}
    for section, keys in _SECTIONS.items():
        values = _object(document.get(section, {}), f"{where}: {section}")
        for key, value in values.items():
            if key not in keys:
                raise OperatorError(f"{where}: unknown key {section}.{key}")
            given[_SERVICE_FIELDS[section, key]] = _price(value, f"{section}.{key}", where)
    return given


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise OperatorError(f"{where} must be an object")
    return value


def _by_geography(base: Mapping[str, float], given: Any, where: str) -> dict[str, float]:
    merged = dict(base)
    for geography, value in _object(given, f"{where}: cloudfront").items():
        if geography not in GEOGRAPHIES:
            raise OperatorError(
                f"{where}: unknown geography {geography!r} (expected {', '.join(GEOGRAPHIES)})"
            )
        merged[geography] = _price(value, f"cloudfront.{geography}", where)
    return merged


def _price(value: Any, name: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise OperatorError(f"{where}: {name} must be a number, got {value!r}")
    if value < 0:
        raise OperatorError(f"{where}: {name} must not be negative, got {value}")
    return float(value)
