"""Permanent refusals reach the worker's DLQ at once, with their reason (issue 19).

Through the real handlers, fed by the lab's SQS event source (``QueuePoller``) from moto
queues whose redrive policy is the template's (5 receives): a refused message is received
once, lands in the DLQ with the body unchanged and the ``edgefill-refusal`` attribute, and
the source queue is empty. An outcome (a filtered path) is not a refusal: it is deleted. A
refusal the DLQ does not take fails its record: never dropped."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from backfill_worker import app as backfill_app
from backfill_worker.runtime import backfiller
from edgefill.lab.origin import LabOrigin
from edgefill.lab.pollers import QueuePoller
from edgefill.operations import peek
from prewarm_worker import app as prewarm_app
from prewarm_worker import worker
from shared import aws
from shared.dead_letters import (
    DETAIL_ATTRIBUTE,
    MESSAGE_ID_ATTRIBUTE,
    REASON_ATTRIBUTE,
    refusal_reason,
)
from tests.integration.backfill_world import (
    BUCKET,
    FakeLambdaContext,
    assert_nothing_left_behind,
    backfill_env,
    keys,
    message,
)
from tests.integration.test_backfill_resume import paced_object, run_chain, worker_for
from tests.integration.test_lab_pollers import depth, wait_until
from tests.sample_events import load_event

MAX_RECEIVES = 5  # the template's maxReceiveCount


def queues(sqs: Any, name: str) -> tuple[str, str, str]:
    """(queue URL, its ARN, its DLQ URL): the template's pair, 5 receives to the DLQ."""
    dlq = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])
    redrive = {
        "deadLetterTargetArn": dlq_arn["Attributes"]["QueueArn"],
        "maxReceiveCount": str(MAX_RECEIVES),
    }
    url = sqs.create_queue(
        QueueName=name,
        Attributes={"VisibilityTimeout": "60", "RedrivePolicy": json.dumps(redrive)},
    )["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return url, arn["Attributes"]["QueueArn"], dlq


def dead_letters(sqs: Any, dlq: str, expected: int) -> list[dict[str, Any]]:
    """The DLQ's messages (``expected`` many) with their attributes, left in place."""
    return peek(sqs, dlq, expected)


def consume(
    sqs: Any,
    wired: tuple[str, str, str],
    handler: Callable[..., Any],
    dead: int,
    function_timeout: float,
) -> QueuePoller:
    """Feed the queue of ``wired`` (URL, ARN, DLQ URL) to ``handler`` as Lambda's event
    source does, until it is empty and its DLQ holds ``dead`` messages; the poller."""
    url, arn, dlq = wired
    poller = QueuePoller(
        sqs,
        url,
        arn,
        handler,
        "refusals",
        batch_size=10,
        concurrency=1,
        function_timeout=function_timeout,
    )
    poller.start()
    try:
        wait_until(lambda: depth(sqs, url) == 0 and depth(sqs, dlq) == dead)
    finally:
        poller.stop()
    return poller


# ---- backfill ------------------------------------------------------------------------
@pytest.fixture
def backfill_queues(
    s3: Any, sqs: Any, origin: LabOrigin, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, str, str]]:
    s3.create_bucket(Bucket=BUCKET)
    url, arn, dlq = queues(sqs, "edgefill-backfill")
    prewarm = sqs.create_queue(QueueName="edgefill-prewarm")["QueueUrl"]
    env = backfill_env(
        origin,
        EDGEFILL_PREWARM_QUEUE_URL=prewarm,
        EDGEFILL_BACKFILL_DLQ_URL=dlq,
        EDGEFILL_EXCLUDE="/private/*",
    )
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    backfiller.cache_clear()
    aws.client.cache_clear()
    yield url, arn, dlq
    backfiller.cache_clear()
    aws.client.cache_clear()


def test_a_refused_backfill_reaches_the_dlq_with_its_reason_on_the_first_receive(
    backfill_queues: tuple[str, str, str], sqs: Any, s3: Any, origin: LabOrigin
) -> None:
    # Given a backfill queue holding a good miss, an excluded path (an outcome), and three
    # messages refused for good: not JSON, a traversal, a non-canonical spelling
    url, arn, dlq = backfill_queues
    origin.put("/img/a.jpg", b"jpeg", content_type="image/jpeg")
    refused = {
        "not json at all": "bad_message",
        json.dumps({"v": 1, "type": "backfill", "uri": "/img/../../etc/passwd"}): "bad_key",
        json.dumps({"v": 1, "type": "backfill", "uri": "/img/a+b.jpg"}): "non_canonical",
    }
    outcomes = [
        json.dumps({"v": 1, "type": "backfill", "uri": "/img/a.jpg"}),
        json.dumps({"v": 1, "type": "backfill", "uri": "/private/x.jpg"}),
    ]
    sent = {
        body: sqs.send_message(QueueUrl=url, MessageBody=body)["MessageId"]
        for body in [*refused, *outcomes]
    }
    # When the backfill worker consumes the queue as Lambda would
    poller = consume(sqs, backfill_queues, backfill_app.handler, 3, function_timeout=900)
    # Then each message was received once and none was left for a retry
    assert sorted(poller.stats.receive_counts.values()) == [1] * 5
    assert poller.stats.failed == 0 and poller.stats.deleted == 5
    # And exactly the refusals are in the DLQ, unchanged, with their reason and origin id
    moved = dead_letters(sqs, dlq, 3)
    assert {m["Body"]: refusal_reason(m) for m in moved} == refused
    for dead in moved:
        attributes = dead["MessageAttributes"]
        assert attributes[MESSAGE_ID_ATTRIBUTE]["StringValue"] == sent[dead["Body"]]
        assert attributes[DETAIL_ATTRIBUTE]["StringValue"]
    # And the outcomes are what they always were: a copy, and a logged skip
    assert keys(s3) == ["img/a.jpg"]


def test_another_regions_backfill_is_refused_to_the_dlq_naming_both_regions(
    backfill_queues: tuple[str, str, str],
    sqs: Any,
    s3: Any,
    origin: LabOrigin,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given the worker of us-east-1's bucket (issue 20), and its queue holding a fill for
    # Frankfurt's bucket, one for its own region's and one naming no region
    monkeypatch.setenv("EDGEFILL_BUCKET_REGION", "us-east-1")
    backfiller.cache_clear()
    url, _, dlq = backfill_queues
    for name in ("a", "b", "c"):
        origin.put(f"/img/{name}.jpg", b"jpeg", content_type="image/jpeg")
    misrouted = json.dumps(
        {"v": 1, "type": "backfill", "uri": "/img/a.jpg", "region": "eu-central-1"}
    )
    for body in (
        misrouted,
        json.dumps({"v": 1, "type": "backfill", "uri": "/img/b.jpg", "region": "us-east-1"}),
        json.dumps({"v": 1, "type": "backfill", "uri": "/img/c.jpg"}),
    ):
        sqs.send_message(QueueUrl=url, MessageBody=body)
    # When the worker consumes its queue
    poller = consume(sqs, backfill_queues, backfill_app.handler, 1, function_timeout=900)
    # Then Frankfurt's fill is in the DLQ at once, its detail naming both regions, and
    # nothing of it was written here; the other two are copied
    assert poller.stats.failed == 0 and poller.stats.deleted == 3
    (moved,) = dead_letters(sqs, dlq, 1)
    assert moved["Body"] == misrouted
    assert refusal_reason(moved) == "wrong_region"
    detail = moved["MessageAttributes"][DETAIL_ATTRIBUTE]["StringValue"]
    assert "eu-central-1" in detail and "us-east-1" in detail
    assert keys(s3) == ["img/b.jpg", "img/c.jpg"]


@pytest.mark.parametrize(
    "region", ["", "EU-CENTRAL-1", "eu-central", 7, ["eu-central-1"], "eu-central-1\n"]
)
def test_a_backfill_whose_region_is_not_a_region_code_is_refused_naming_the_field(
    region: Any,
) -> None:
    from shared.messages import MessageError, parse_backfill

    body = json.dumps({"v": 1, "type": "backfill", "uri": "/a.jpg", "region": region})
    with pytest.raises(MessageError) as raised:
        parse_backfill(body)
    assert raised.value.field == "region"


def test_a_backfill_refusal_the_dlq_does_not_take_is_retried_not_dropped(
    backfill_queues: tuple[str, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a DLQ URL naming a queue that does not exist
    monkeypatch.setenv(
        "EDGEFILL_BACKFILL_DLQ_URL", backfill_queues[2].rsplit("/", 1)[0] + "/no-such-queue"
    )
    backfiller.cache_clear()
    event = load_event("backfill_sqs_batch")
    event["Records"] = [
        record for record in event["Records"] if record["body"] == "this is not a message"
    ]
    assert len(event["Records"]) == 1
    # When the worker refuses the malformed record
    response = backfill_app.handler(event, FakeLambdaContext())
    # Then the record fails: SQS delivers it again (and its redrive policy moves it)
    assert response == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}


def test_past_the_hop_limit_the_copy_is_refused_to_the_dlq(
    s3: Any, origin: LabOrigin, sqs: Any
) -> None:
    # Given a copy needing three invocations, at most one continuation, and a DLQ
    s3.create_bucket(Bucket=BUCKET)
    queue = sqs.create_queue(QueueName="edgefill-backfill")["QueueUrl"]
    dlq = sqs.create_queue(QueueName="edgefill-backfill-dlq")["QueueUrl"]
    paced_object(origin, "/slow.bin")
    worker = worker_for(
        s3, origin, sqs, queue, EDGEFILL_MAX_HOPS="1", EDGEFILL_BACKFILL_DLQ_URL=dlq
    )
    # When the copy runs out of hops
    outcomes, continuations = run_chain(worker, sqs, queue, message("/slow.bin"))
    # Then giving up is a refusal an operator sees: the continuation is in the DLQ as it was
    # received, with its reason; the rest is as without a DLQ (upload aborted, lease gone)
    assert [(o.status, o.reason) for o in outcomes] == [
        ("handed_over", "handed_over"),
        ("refused", "too_slow"),
    ]
    (moved,) = dead_letters(sqs, dlq, 1)
    assert refusal_reason(moved) == "too_slow"
    assert json.loads(moved["Body"]) == continuations[-1]
    assert keys(s3) == []
    assert_nothing_left_behind(s3)


# ---- prewarm -------------------------------------------------------------------------
@pytest.fixture
def prewarm_queues(
    sqs: Any, moto: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, str, str]]:
    url, arn, dlq = queues(sqs, "edgefill-prewarm")
    env = {
        "EDGEFILL_DISTRIBUTION_DOMAIN": "d111.cloudfront.net",
        "EDGEFILL_VIEWER_HOST": "cdn.example.com",
        "EDGEFILL_TARGETS": "us-east-1",
        "EDGEFILL_PREWARM_QUEUE_URL": url,
        "EDGEFILL_PREWARM_DLQ_URL": dlq,
        "EDGEFILL_RESOLVER": "127.0.0.1:9",  # never asked: every message here is refused
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    worker.runtime.cache_clear()
    aws.client.cache_clear()
    yield url, arn, dlq
    worker.runtime.cache_clear()
    aws.client.cache_clear()


def prewarm(**fields: Any) -> str:
    return json.dumps({"v": 1, "type": "prewarm", **fields})


def test_a_refused_prewarm_reaches_the_dlq_with_its_reason_on_the_first_receive(
    prewarm_queues: tuple[str, str, str], sqs: Any
) -> None:
    # Given a prewarm queue holding a malformed message, one naming another customer's
    # host, and one over the task cap (1 000 paths × 21 targets = 21 000 tasks)
    url, arn, dlq = prewarm_queues
    over_cap = prewarm(
        paths=[f"/p/{n}" for n in range(1000)],
        targets=[f"eu-west-{n}" for n in range(1, 22)],
        encodings=["gzip"],
    )
    refused = {
        prewarm(paths=["no-slash.jpg"]): "bad_message",
        prewarm(paths=["/a.jpg"], host="victim.example.net"): "host_not_allowed",
        over_cap: "task_cap",
    }
    for body in refused:
        sqs.send_message(QueueUrl=url, MessageBody=body)
    # When the prewarm worker consumes the queue as Lambda would
    poller = consume(sqs, prewarm_queues, prewarm_app.handler, 3, function_timeout=300)
    # Then each was received once (not five times) and reached the DLQ with its reason
    assert sorted(poller.stats.receive_counts.values()) == [1, 1, 1]
    assert poller.stats.failed == 0
    moved = dead_letters(sqs, dlq, 3)
    assert {m["Body"]: refusal_reason(m) for m in moved} == refused
    detail = {
        refusal_reason(m): m["MessageAttributes"][DETAIL_ATTRIBUTE]["StringValue"] for m in moved
    }
    assert detail["bad_message"].startswith("paths[0]: ")
    assert "victim.example.net" in detail["host_not_allowed"]
    assert "21000 tasks" in detail["task_cap"]


def test_a_prewarm_refusal_the_dlq_does_not_take_is_retried_not_dropped(
    prewarm_queues: tuple[str, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "EDGEFILL_PREWARM_DLQ_URL", prewarm_queues[2].rsplit("/", 1)[0] + "/no-such-queue"
    )
    worker.runtime.cache_clear()
    event = load_event("prewarm_sqs_batch")
    event["Records"] = [
        {**event["Records"][0], "messageId": "m-bad", "body": prewarm(paths=["nope"])}
    ]
    # When the worker refuses it, then the record is not processed: the only record of
    # its batch, it fails the invocation (Powertools), so SQS delivers it again
    with pytest.raises(BatchProcessingError, match="not sent to the DLQ: dead_letter"):
        prewarm_app.handler(event, FakeLambdaContext())


def test_the_reason_attribute_is_named_as_the_contract_says() -> None:
    assert REASON_ATTRIBUTE == "edgefill-refusal"
