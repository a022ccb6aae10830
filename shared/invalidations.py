"""CloudFront invalidations as edgefill creates them, from the backfill worker and from
``edgefill invalidate``: batches within CloudFront's limits, one CreateInvalidation, and
which refusals only mean "later".

CloudFront takes at most 3 000 paths in progress per distribution, and at most 15 of
them wildcards (a path ending in ``*``). A batch is therefore at most 3 000 paths with at
most 15 wildcards. A refusal because too many are in progress
(``TooManyInvalidationsInProgress``) or because the API is throttled passes once earlier
invalidations have completed; any other refusal (access denied, no such distribution, an
invalid path) would be the same next time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from botocore.exceptions import BotoCoreError, ClientError

MAX_PATHS: Final = 3000
MAX_WILDCARDS: Final = 15
# Refusals that pass with time: CloudFront's in-progress limits, throttling, its 5xx.
_BUSY: Final = frozenset(
    {
        "TooManyInvalidationsInProgress",
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
        "ServiceUnavailable",
        "InternalError",
        "InternalFailure",
    }
)


def batches(paths: Sequence[str]) -> list[list[str]]:
    """Paths grouped into CreateInvalidation calls within CloudFront's limits, in order."""
    groups: list[list[str]] = []
    current: list[str] = []
    wildcards = 0
    for path in paths:
        is_wildcard = path.endswith("*")
        if current and (len(current) == MAX_PATHS or (is_wildcard and wildcards == MAX_WILDCARDS)):
            groups.append(current)
            current, wildcards = [], 0
        current.append(path)
        wildcards += is_wildcard
    if current:
        groups.append(current)
    return groups


def create_invalidation(
    cloudfront: Any, distribution_id: str, paths: Sequence[str], caller_reference: str
) -> dict[str, Any]:
    """One CreateInvalidation of ``paths`` (a batch); CloudFront's ``Invalidation``.

    ``caller_reference`` makes a retry of the same batch idempotent: CloudFront answers
    the invalidation it already created instead of a second one."""
    response = cloudfront.create_invalidation(
        DistributionId=distribution_id,
        InvalidationBatch={
            "Paths": {"Quantity": len(paths), "Items": list(paths)},
            "CallerReference": caller_reference,
        },
    )
    invalidation: dict[str, Any] = response["Invalidation"]
    return invalidation


def is_busy(error: Exception) -> bool:
    """True when a failed CreateInvalidation may succeed later: too many in progress,
    throttling, CloudFront's own failures, the network."""
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        return str(details.get("Code", "")) in _BUSY or status >= 500
    return isinstance(error, BotoCoreError)


def error_text(error: Exception) -> str:
    """``Code: message`` of a CloudFront error, for logs and reports."""
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        return f"{details.get('Code', '?')}: {details.get('Message', error)}"
    return f"{type(error).__name__}: {error}"
