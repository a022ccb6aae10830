"""SQS helpers shared by the edge, the workers and the CLI.

Standard library only at import time: the edge function imports ``region_from_queue_url``;
the sending helpers take a boto3 SQS client as an argument. ``send_messages`` reports by
entry; ``send_failure`` and ``send_and_log`` serve callers that report a failed send
rather than retry their own message.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from shared.messages import REGION_PATTERN

if TYPE_CHECKING:  # Powertools stays out of the edge: only the type is needed here
    from shared.observability import Log

# SendMessageBatch takes at most 10 entries, and at most 1 MiB of bodies in all (the same
# as one message): ten large prewarm messages must be split over several calls.
MAX_BATCH: Final = 10
MAX_BATCH_BYTES: Final = 1024 * 1024
# SQS delays a message by at most 15 minutes.
MAX_DELAY_SECONDS: Final = 900
# Entries SQS rejected for a reason of its own (throttling, internal errors) are sent again
# this many times before they are reported as failed.
BATCH_RETRIES: Final = 3

_QUEUE_HOST = (
    re.compile(rf"sqs[.-](?P<region>{REGION_PATTERN})\.amazonaws\.com"),
    re.compile(rf"(?P<region>{REGION_PATTERN})\.queue\.amazonaws\.com"),
)


class InvalidQueueUrl(ValueError):
    """A queue URL that is not an http(s) URL with an account and a queue name."""


def region_in_queue_url(url: str) -> str | None:
    """The region an SQS queue URL names in its host (``sqs.<region>.amazonaws.com``,
    ``<region>.queue.amazonaws.com``), or None when the host names none (a local
    endpoint). Raises ``InvalidQueueUrl`` when ``url`` is not a queue URL at all."""
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        raise InvalidQueueUrl(f"queue URL must be http(s): {str(url)[:120]!r}")
    host = url.split("/", 3)[2].split(":")[0].lower()
    path = url.split("/", 3)[3] if url.count("/") >= 3 else ""
    if not host or path.count("/") != 1 or not all(path.split("/")):
        raise InvalidQueueUrl(f"queue URL must be https://host/<account>/<queue>: {url[:120]!r}")
    for pattern in _QUEUE_HOST:
        match = pattern.fullmatch(host)
        if match:
            return match.group("region")
    return None


def region_from_queue_url(url: str) -> str:
    """The region of an SQS queue URL (``sqs.<region>.amazonaws.com``,
    ``<region>.queue.amazonaws.com``), else ``AWS_REGION``/``AWS_DEFAULT_REGION``."""
    named = region_in_queue_url(url)
    if named is not None:
        return named
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if not region:
        raise InvalidQueueUrl(f"cannot tell the region of {url[:120]!r}; set AWS_REGION")
    return region


@dataclass
class SendReport:
    """What ``send_messages`` did: bodies sent, (index, code, reason) of those that failed,
    and what it cost: SendMessageBatch calls made (resends and failed calls included) and
    the calls that failed as a whole (``"<error class>: <message>"``, ``keep_going`` only).
    The cost is not part of the outcome: two reports compare equal on ``sent``/``failed``."""

    sent: int = 0
    failed: list[tuple[int, str, str]] = field(default_factory=list)
    calls: int = field(default=0, compare=False)
    call_errors: list[str] = field(default_factory=list, compare=False)

    @property
    def ok(self) -> bool:
        return not self.failed


def send_messages(
    sqs: Any,
    queue_url: str,
    bodies: Sequence[str],
    delay_seconds: int | Sequence[int] = 0,
    retries: int = BATCH_RETRIES,
    sleep: Any = time.sleep,
    max_batch_bytes: int = MAX_BATCH_BYTES,
    keep_going: bool = False,
) -> SendReport:
    """Send ``bodies`` with SendMessageBatch (at most 10 entries and ``max_batch_bytes`` a
    call; a single body up to SQS's 1 MiB still goes alone), resending entries that failed
    for SQS's own reasons; sender faults, bodies too large to send and what still fails
    after ``retries`` are reported by index. A call that fails as a whole (botocore has
    already retried it) raises: the caller's message is then retried. With ``keep_going``
    its entries are reported failed instead (code: the error's class) and the next calls
    are still made, for callers whose own message must not be retried. ``delay_seconds``
    delays every body, or each its own when it is a sequence as long as ``bodies``."""
    delays = _delays(delay_seconds, len(bodies))
    if not 0 < max_batch_bytes <= MAX_BATCH_BYTES:
        raise ValueError(f"max_batch_bytes must be 1 to {MAX_BATCH_BYTES}, got {max_batch_bytes}")
    report = SendReport()
    for batch in _batches(bodies, report, max_batch_bytes):
        pending = {str(i): bodies[i] for i in batch}
        for attempt in range(retries + 1):
            entries: list[dict[str, Any]] = [
                {"Id": key, "MessageBody": body} for key, body in pending.items()
            ]
            for entry in entries:
                if delays[int(entry["Id"])]:
                    entry["DelaySeconds"] = delays[int(entry["Id"])]
            report.calls += 1
            try:
                response = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
            except Exception as error:
                if not keep_going:
                    raise
                reason = f"{type(error).__name__}: {str(error)[:300]}"
                report.call_errors.append(reason)
                report.failed.extend((int(key), type(error).__name__, reason) for key in pending)
                break
            report.sent += len(response.get("Successful", []))
            retry: dict[str, str] = {}
            for failure in response.get("Failed", []):
                key = failure["Id"]
                if failure.get("SenderFault") or attempt == retries:
                    code = failure.get("Code", "Unknown")
                    report.failed.append((int(key), code, failure.get("Message", "")))
                else:
                    retry[key] = pending[key]
            if not retry:
                break
            pending = retry
            sleep(min(0.05 * 2**attempt, 1.0))
    report.failed.sort()
    return report


def _delays(delay_seconds: int | Sequence[int], count: int) -> list[int]:
    """One delay per body, each checked against SQS's limit."""
    delays = [delay_seconds] * count if isinstance(delay_seconds, int) else list(delay_seconds)
    if len(delays) != count:
        raise ValueError(f"{len(delays)} delays for {count} bodies")
    for delay in delays:
        if not 0 <= delay <= MAX_DELAY_SECONDS:
            raise ValueError(f"delay_seconds must be 0 to {MAX_DELAY_SECONDS}, got {delay}")
    return delays


def send_failure(
    sqs: Any, queue_url: str, bodies: Sequence[str], delay_seconds: int = 0
) -> str | None:
    """Send ``bodies`` (``send_messages``); None when every one went, else what did not,
    in one line: the entries SQS refused, or the call that failed as a whole
    (``"<error class>: <message>"``). Never raises."""
    try:
        report = send_messages(sqs, queue_url, bodies, delay_seconds)
    except Exception as error:  # noqa: BLE001 - any SQS failure is reported the same way
        return f"{type(error).__name__}: {error}"
    return None if report.ok else str(report.failed)


def send_and_log(
    sqs: Any,
    queue_url: str,
    bodies: Sequence[str],
    log: Log,
    event: str,
    *,
    extra: dict[str, Any] | None = None,
    field: str = "detail",
    prefix: str = "",
    delay_seconds: int = 0,
) -> str | None:
    """``send_failure``, and when something was not sent, one error line ``event`` with
    ``extra`` and what failed (after ``prefix``, at most 500 characters) under ``field``;
    returns that text, None when every body went."""
    failure = send_failure(sqs, queue_url, bodies, delay_seconds)
    if failure is None:
        return None
    failure = f"{prefix}{failure}"
    log.error(event, extra={**(extra or {}), field: failure[:500]})
    return failure


def _batches(bodies: Sequence[str], report: SendReport, max_bytes: int) -> list[list[int]]:
    """Indexes of ``bodies`` grouped into calls of at most MAX_BATCH entries and
    ``max_bytes`` (a larger body goes alone); a body larger than MAX_BATCH_BYTES is
    reported, never sent."""
    batches: list[list[int]] = []
    current: list[int] = []
    size = 0
    for index, body in enumerate(bodies):
        length = len(body.encode("utf-8", "surrogatepass"))
        if length > MAX_BATCH_BYTES:
            report.failed.append(
                (index, "MessageTooLong", f"{length} bytes; SQS takes at most {MAX_BATCH_BYTES}")
            )
            continue
        if current and (len(current) == MAX_BATCH or size + length > max_bytes):
            batches.append(current)
            current, size = [], 0
        current.append(index)
        size += length
    if current:
        batches.append(current)
    return batches
