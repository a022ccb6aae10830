"""Permanent refusals go to the worker's dead-letter queue at once, with their reason.

A message a worker refuses for good (it breaks the v1 contract, names a key that can
never be one, asks for more than a cap allows) cannot succeed however often SQS delivers
it. Retrying it only delays it (five receives before the redrive policy moves it) and
skipping it hides it from the operator who sent it. So the worker sends it to its own DLQ
in one ``SendMessage`` — the body exactly as it was received, the reason as a message
attribute — and reports the record processed. When that send fails the record fails
instead: SQS delivers it again and, at worst, its redrive policy moves it. A refusal is
never dropped.

Message attributes (all ``String``; ``edgefill redrive`` counts the first):

- ``edgefill-refusal``: the reason, a short stable word (``bad_message``, ``bad_key``,
  ``task_cap``...), the same word the worker's log line carries;
- ``edgefill-refusal-detail``: the sentence the worker logged, redacted (no query value,
  no userinfo: ``shared/redact.py``), printable characters only, at most 1 024 characters;
- ``edgefill-message-id``: the refused message's own id (the DLQ gives the copy a new
  one), to find the worker's log line.

The body keeps what it held, so a DLQ is as sensitive as its queue; the attributes add
nothing that was not in the worker's log.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from shared import aws
from shared.queues import region_from_queue_url
from shared.reasons import ReasonedError
from shared.redact import redact_text

REASON_ATTRIBUTE: Final = "edgefill-refusal"
DETAIL_ATTRIBUTE: Final = "edgefill-refusal-detail"
MESSAGE_ID_ATTRIBUTE: Final = "edgefill-message-id"
# Long enough for every refusal sentence the workers write; SQS counts attributes in the
# 1 MiB message size, so a body within a few KiB of it cannot be sent with them (the
# record then fails and the redrive policy moves it, without the attributes).
MAX_DETAIL_CHARS: Final = 1024
# What ``refusal_reasons`` counts a DLQ message without the attribute as: it got there by
# the redrive policy, after failing every receive (origin down, a bug, a refusal whose
# send to the DLQ failed).
NO_REASON: Final = "(failed every receive)"


class DeadLetterNotSent(ReasonedError):
    """The DLQ did not accept the refused message; the record must be retried."""


@dataclass(frozen=True, slots=True)
class DeadLetters:
    """A worker's DLQ (``EDGEFILL_BACKFILL_DLQ_URL`` / ``EDGEFILL_PREWARM_DLQ_URL``)."""

    sqs: Any
    queue_url: str

    def send(self, body: str, reason: str, detail: str, message_id: str | None = None) -> str:
        """Send ``body`` unchanged with the refusal attributes; the DLQ's message id.
        Raises ``DeadLetterNotSent`` on any failure (SQS refused, network, throttling)."""
        attributes = {REASON_ATTRIBUTE: _string(reason)}
        shown = _printable(redact_text(detail))[:MAX_DETAIL_CHARS]
        if shown:
            attributes[DETAIL_ATTRIBUTE] = _string(shown)
        if message_id:
            attributes[MESSAGE_ID_ATTRIBUTE] = _string(_printable(message_id)[:128])
        try:
            response = self.sqs.send_message(
                QueueUrl=self.queue_url, MessageBody=body, MessageAttributes=attributes
            )
        except Exception as error:  # noqa: BLE001 - every failure leaves the record for retry
            raise DeadLetterNotSent(
                "dead_letter", f"{type(error).__name__}: {str(error)[:300]}"
            ) from error
        return str(response.get("MessageId", ""))


def dead_letters_for(queue_url: str | None) -> DeadLetters | None:
    """A worker's DLQ with the container's SQS client for its region; None without one."""
    if queue_url is None:
        return None
    return DeadLetters(aws.client("sqs", region_from_queue_url(queue_url)), queue_url)


def refusal_reason(message: Mapping[str, Any]) -> str | None:
    """The ``edgefill-refusal`` attribute of a message as ReceiveMessage returns it."""
    attribute = (message.get("MessageAttributes") or {}).get(REASON_ATTRIBUTE) or {}
    value = attribute.get("StringValue")
    return value if isinstance(value, str) and value else None


def refusal_reasons(messages: Iterable[Mapping[str, Any]]) -> Counter[str]:
    """Messages per reason (``NO_REASON`` for those the redrive policy moved)."""
    return Counter(refusal_reason(message) or NO_REASON for message in messages)


def _string(value: str) -> dict[str, str]:
    return {"DataType": "String", "StringValue": value}


def _printable(text: str) -> str:
    # SQS refuses some characters in attribute values; a reason never needs any of them.
    return "".join(char if char.isprintable() else "?" for char in text)
