"""The lab refuses as the stack does: a permanent refusal reaches the DLQ the template
wires to its queue, with its reason, on the first receive (issue 19)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from edgefill.lab.lab import Lab
from shared.dead_letters import MESSAGE_ID_ATTRIBUTE, refusal_reason
from tests.e2e.test_pipeline import unique, wait_for


def take_from(sqs: Any, dlq_url: str, body: str) -> dict[str, Any] | None:
    """The DLQ message holding ``body``, deleted; None while it is not there."""
    got = sqs.receive_message(
        QueueUrl=dlq_url, MaxNumberOfMessages=10, WaitTimeSeconds=1, MessageAttributeNames=["All"]
    ).get("Messages", [])
    found = None
    for message in got:
        if message["Body"] == body:
            found = message
            sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"])
        else:  # another test's: back at once
            sqs.change_message_visibility(
                QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
            )
    return found


@pytest.mark.parametrize(
    ("role", "body", "reason"),
    [
        (
            "prewarm",
            json.dumps({"v": 1, "type": "prewarm", "paths": ["/a"], "host": "victim.example"}),
            "host_not_allowed",
        ),
        (
            "backfill",
            json.dumps({"v": 1, "type": "backfill", "uri": "/a%2Fb.jpg"}),
            "non_canonical",
        ),
        ("backfill", "{" + unique("not json"), "bad_message"),
    ],
)
def test_a_refusal_reaches_the_labs_dlq_with_its_reason_on_the_first_receive(
    lab: Lab, role: str, body: str, reason: str
) -> None:
    assert lab.aws is not None
    sqs = lab.aws.client("sqs")
    queue_id = {"backfill": "BackfillQueue", "prewarm": "PrewarmQueue"}[role]
    queue = lab.aws.queue(queue_id)
    dlq = lab.aws.queue(lab.aws.spec.queues[queue_id].dead_letter_target or "")
    # Given a message the worker must refuse for good, on its queue
    sent = sqs.send_message(QueueUrl=queue.url, MessageBody=body)["MessageId"]
    # When the lab's event source feeds it to the worker
    message: dict[str, Any] = {}

    def arrived() -> bool:
        message.update(take_from(sqs, dlq.url, body) or {})
        return bool(message)

    wait_for(arrived, timeout=30, what=f"the refused {role} message in the DLQ")
    # Then it is in the DLQ, unchanged, with its reason, after a single receive
    assert refusal_reason(message) == reason
    assert message["MessageAttributes"][MESSAGE_ID_ATTRIBUTE]["StringValue"] == sent
    assert lab.pollers[role].stats.receive_counts[sent] == 1
