"""Warm only after the invalidation a prewarm message names (``afterInvalidation``).

Warming an edge before CloudFront has dropped its old copy warms nothing: the edge
answers from the copy being invalidated. So a message carrying ``afterInvalidation``
first asks ``GetInvalidation``:

- ``Completed``: warm now;
- ``InProgress``: send the same message again with an SQS delay (a Lambda never sleeps
  waiting) of ``EDGEFILL_RETRY_DELAY`` seconds, as long as the invalidation is younger
  than ``WAIT_LIMIT_SECONDS``; past that, warm anyway and log it (a late warm still
  beats none, and an invalidation stuck for 20 minutes is an operator's problem);
- an invalidation that cannot be read for good (unknown ID, no permission, no
  ``EDGEFILL_DISTRIBUTION_ID``): warm now and log why; waiting could not change it;
- throttling, 5xx, network errors: ``WaitFailed``, so SQS delivers the message again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from botocore.exceptions import BotoCoreError, ClientError

from shared.messages import PrewarmMessage, to_json
from shared.observability import Log
from shared.queues import MAX_DELAY_SECONDS, send_failure

WAIT_LIMIT_SECONDS: Final = 20 * 60
_PERMANENT: Final = {
    "NoSuchInvalidation",
    "NoSuchDistribution",
    "AccessDenied",
    "AccessDeniedException",
    "InvalidArgument",
}


class WaitFailed(Exception):
    """The invalidation's status could not be read now; the message should be retried."""


@dataclass(frozen=True, slots=True)
class WaitDecision:
    """``warm`` now, or ``wait``: the message was sent again with ``delay`` seconds."""

    action: str  # "warm" | "wait"
    reason: str
    status: str | None = None
    delay: int = 0


def decide(
    cloudfront: Any,
    distribution_id: str | None,
    message: PrewarmMessage,
    now: datetime,
) -> tuple[str, str, str | None, float]:
    """(action, reason, status, age in seconds) for ``message``; sends nothing."""
    invalidation = message.after_invalidation
    if invalidation is None:
        return "warm", "no invalidation to wait for", None, 0.0
    if distribution_id is None or cloudfront is None:
        return "warm", "EDGEFILL_DISTRIBUTION_ID is not set: cannot wait", None, 0.0
    try:
        found = cloudfront.get_invalidation(DistributionId=distribution_id, Id=invalidation)
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", ""))
        if code in _PERMANENT:
            return "warm", f"GetInvalidation {invalidation}: {code}; warming anyway", None, 0.0
        raise WaitFailed(f"GetInvalidation {invalidation}: {code or error}") from error
    except BotoCoreError as error:
        raise WaitFailed(f"GetInvalidation {invalidation}: {error}") from error
    details = found.get("Invalidation", {})
    status = str(details.get("Status", ""))
    created = details.get("CreateTime")
    age = (now - created).total_seconds() if isinstance(created, datetime) else 0.0
    if status.lower() == "completed":
        return "warm", f"invalidation {invalidation} completed", status, age
    if age >= WAIT_LIMIT_SECONDS:
        return (
            "warm",
            f"invalidation {invalidation} still {status} after {age:.0f}s; warming anyway",
            status,
            age,
        )
    return "wait", f"invalidation {invalidation} is {status}", status, age


def wait_for_invalidation(
    message: PrewarmMessage,
    cloudfront: Any,
    distribution_id: str | None,
    sqs: Any | None,
    queue_url: str | None,
    recheck_seconds: int,
    log: Log,
    now: datetime | None = None,
) -> WaitDecision:
    """Decide whether to warm ``message`` now; when not, send it again with a delay.

    Raises ``WaitFailed`` when the status cannot be read now or the message cannot be
    sent again (SQS then delivers it again: nothing is lost)."""
    now = now or datetime.now(UTC)
    action, reason, status, age = decide(cloudfront, distribution_id, message, now)
    if action == "warm":
        if status is None or age >= WAIT_LIMIT_SECONDS:
            log.warning("warming without a completed invalidation", extra={"reason": reason})
        return WaitDecision("warm", reason, status)
    if sqs is None or queue_url is None:
        reason += "; EDGEFILL_PREWARM_QUEUE_URL is not set, so warming anyway"
        log.warning("warming without a completed invalidation", extra={"reason": reason})
        return WaitDecision("warm", reason, status)
    delay = int(max(1, min(recheck_seconds, WAIT_LIMIT_SECONDS - age, MAX_DELAY_SECONDS)))
    failure = send_failure(sqs, queue_url, [to_json(message)], delay_seconds=delay)
    if failure is not None:
        raise WaitFailed(f"could not send the waiting message again: {failure}")
    log.info(
        "prewarm waits for its invalidation",
        extra={"invalidation": message.after_invalidation, "status": status, "delay": delay},
    )
    return WaitDecision("wait", reason, status, delay)
