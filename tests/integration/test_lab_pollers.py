"""The lab's event sources behave as Lambda's SQS event source does (moto over HTTP)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from edgefill.lab.aws import LabAws
from edgefill.lab.pollers import QueuePoller
from edgefill.lab.template_spec import TemplateError, TemplateSpec

TEMPLATE = """
Parameters:
  WorkerConcurrency:
    Type: Number
    Default: 2
Globals:
  Function:
    Timeout: 30
Resources:
  BackfillDLQ:
    Type: AWS::SQS::Queue
    Properties:
      MessageRetentionPeriod: 1209600
  BackfillQueue:
    Type: AWS::SQS::Queue
    Properties:
      VisibilityTimeout: 180
      RedrivePolicy:
        deadLetterTargetArn: !GetAtt BackfillDLQ.Arn
        maxReceiveCount: 3
  PrewarmDLQ:
    Type: AWS::SQS::Queue
  PrewarmQueue:
    Type: AWS::SQS::Queue
    Properties:
      VisibilityTimeout: !Ref WorkerConcurrency
      RedrivePolicy:
        deadLetterTargetArn: !GetAtt PrewarmDLQ.Arn
        maxReceiveCount: 5
  Distribution:
    Type: AWS::CloudFront::Distribution
    Properties:
      DistributionConfig:
        OriginGroups:
          Quantity: 1
          Items:
            - Id: group
              FailoverCriteria:
                StatusCodes:
                  Quantity: 2
                  Items: [403, 404]
  BackfillWorkerFunction:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Backfill:
          Type: SQS
          Properties:
            Queue: !GetAtt BackfillQueue.Arn
            BatchSize: 5
            MaximumBatchingWindowInSeconds: 1
            FunctionResponseTypes: [ReportBatchItemFailures]
            ScalingConfig:
              MaximumConcurrency: !Ref WorkerConcurrency
"""


def wait_until(predicate: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


@pytest.fixture
def lab_aws(moto_server: str) -> Iterator[LabAws]:
    aws = LabAws(TemplateSpec.from_text(TEMPLATE), visibility_timeout=1, endpoint_url=moto_server)
    aws.start()
    yield aws
    aws.stop()


def depth(sqs: Any, url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def test_template_numbers_are_resolved_from_parameters_and_globals() -> None:
    # Given the template text / When it is read
    spec = TemplateSpec.from_text(TEMPLATE)
    # Then queue attributes, redrive and event source settings come from it
    assert spec.queues["BackfillQueue"].visibility_timeout == 180
    assert spec.queues["BackfillQueue"].dead_letter_target == "BackfillDLQ"
    assert spec.queues["BackfillQueue"].max_receive_count == 3
    assert spec.queues["PrewarmQueue"].visibility_timeout == 2  # !Ref to a parameter default
    source = spec.event_source_for("BackfillQueue")
    assert (source.batch_size, source.batching_window, source.maximum_concurrency) == (5, 1.0, 2)
    assert source.function_timeout == 30 and source.report_batch_item_failures
    with pytest.raises(TemplateError, match="PrewarmQueue"):
        spec.event_source_for("PrewarmQueue")
    assert spec.failover_statuses == {403, 404} and not spec.forwards_host


def test_the_project_template_is_understood() -> None:
    # Given the real template.yaml / When the lab reads it
    spec = TemplateSpec.load(Path(__file__).parents[2] / "template.yaml")
    # Then every queue the lab creates has the template's redrive and timeouts
    for queue_id in ("BackfillQueue", "PrewarmQueue"):
        queue = spec.queues[queue_id]
        assert queue.dead_letter_target == queue_id.replace("Queue", "DLQ")
        assert queue.max_receive_count and queue.max_receive_count >= 5
        source = spec.event_source_for(queue_id)
        assert queue.visibility_timeout >= 6 * source.function_timeout
        assert source.report_batch_item_failures
    assert {403, 404} <= spec.failover_statuses


def test_template_without_a_queue_is_a_clear_error() -> None:
    with pytest.raises(TemplateError, match="BackfillQueue"):
        TemplateSpec.from_text(TEMPLATE.replace("  BackfillQueue:\n", "  Other:\n", 1))


def test_queues_mirror_the_template_with_a_scaled_visibility_timeout(lab_aws: LabAws) -> None:
    # Given the lab's moto / When its queues are read back
    sqs = lab_aws.client("sqs")
    queue = lab_aws.queue("BackfillQueue")
    attributes = sqs.get_queue_attributes(QueueUrl=queue.url, AttributeNames=["All"])["Attributes"]
    # Then the redrive policy is the template's and the visibility timeout is the lab's
    redrive = json.loads(attributes["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"] == lab_aws.queue("BackfillDLQ").arn
    assert int(redrive["maxReceiveCount"]) == 3
    assert attributes["VisibilityTimeout"] == "1"
    assert lab_aws.client("s3").head_bucket(Bucket=lab_aws.bucket)


def test_poller_deletes_successes_retries_failures_and_redrives_to_the_dlq(
    lab_aws: LabAws,
) -> None:
    # Given a handler that fails every record whose body says "bad"
    sqs = lab_aws.client("sqs")
    queue, dlq = lab_aws.queue("BackfillQueue"), lab_aws.queue("BackfillDLQ")
    seen: list[dict[str, Any]] = []
    lock = threading.Lock()

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        assert context.get_remaining_time_in_millis() > 0
        with lock:
            seen.extend(event["Records"])
        return {
            "batchItemFailures": [
                {"itemIdentifier": r["messageId"]} for r in event["Records"] if r["body"] == "bad"
            ]
        }

    poller = QueuePoller(
        sqs,
        queue.url,
        queue.arn,
        handler,
        "backfill",
        batch_size=5,
        batching_window=0.2,
        concurrency=2,
        function_timeout=30,
    )
    for body in ("good-1", "good-2", "bad"):
        sqs.send_message(QueueUrl=queue.url, MessageBody=body)
    # When the poller runs
    run_until(poller, lambda: depth(sqs, dlq.url) == 1 and depth(sqs, queue.url) == 0)
    # Then the good records were delivered once and deleted, the bad one was received
    # maxReceiveCount times and then moved to the DLQ
    bodies = [record["body"] for record in seen]
    assert bodies.count("good-1") == 1 and bodies.count("good-2") == 1
    assert bodies.count("bad") == 3
    bad = [r for r in seen if r["body"] == "bad"]
    assert [r["attributes"]["ApproximateReceiveCount"] for r in bad] == ["1", "2", "3"]
    record = seen[0]
    assert record["eventSource"] == "aws:sqs" and record["eventSourceARN"] == queue.arn
    assert record["awsRegion"] == "us-east-1" and record["receiptHandle"]
    assert poller.stats.deleted == 2
    moved = sqs.receive_message(QueueUrl=dlq.url, WaitTimeSeconds=1)["Messages"]
    assert [m["Body"] for m in moved] == ["bad"]


def test_an_invocation_that_raises_or_answers_unknown_ids_retries_the_whole_batch(
    lab_aws: LabAws,
) -> None:
    # Given a handler that raises on its first call and names an unknown id on its second
    sqs = lab_aws.client("sqs")
    queue = lab_aws.queue("BackfillQueue")
    calls: list[list[str]] = []

    def handler(event: dict[str, Any], context: Any) -> Any:
        calls.append(sorted(r["body"] for r in event["Records"]))
        if len(calls) == 1:
            raise RuntimeError("boom")
        if len(calls) == 2:
            return {"batchItemFailures": [{"itemIdentifier": "not-in-batch"}]}
        return {"batchItemFailures": []}

    poller = QueuePoller(
        sqs,
        queue.url,
        queue.arn,
        handler,
        "backfill",
        batch_size=10,
        batching_window=0.5,
        concurrency=1,
    )
    sqs.send_message_batch(
        QueueUrl=queue.url,
        Entries=[{"Id": "a", "MessageBody": "a"}, {"Id": "b", "MessageBody": "b"}],
    )
    # When it runs
    run_until(poller, lambda: depth(sqs, queue.url) == 0 and len(calls) >= 3)
    # Then both records came back twice before the third invocation succeeded
    assert calls == [["a", "b"], ["a", "b"], ["a", "b"]]
    assert poller.stats.handler_errors == 2 and poller.stats.deleted == 2


def slow_poller(
    lab_aws: LabAws, function_timeout: float, until: Callable[[QueuePoller, list[str]], bool]
) -> tuple[QueuePoller, list[str]]:
    """Two pollers of the backfill queue (lab visibility 1 s) whose handler records each
    receive count, then runs until ``until(poller, receives)``."""
    queue = lab_aws.queue("BackfillQueue")
    receives: list[str] = []

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        receives.extend(r["attributes"]["ApproximateReceiveCount"] for r in event["Records"])
        wait_until(lambda: until(poller, receives))
        return {"batchItemFailures": []}

    poller = QueuePoller(
        lab_aws.client("sqs"),
        queue.url,
        queue.arn,
        handler,
        "backfill",
        concurrency=2,  # a second poller is there to take the record if it reappears
        function_timeout=function_timeout,
        visibility_timeout=queue.visibility_timeout,
    )
    return poller, receives


def run_until(poller: QueuePoller, predicate: Callable[[], bool]) -> None:
    poller.start()
    try:
        wait_until(predicate)
    finally:
        poller.stop()


def test_a_record_is_never_visible_again_while_its_invocation_runs(lab_aws: LabAws) -> None:
    # Given a queue whose lab visibility timeout is 1 s, and a handler that runs until the
    # poller has extended its record's visibility three times (well past 1 s)
    sqs = lab_aws.client("sqs")
    queue = lab_aws.queue("BackfillQueue")
    poller, receives = slow_poller(lab_aws, 30, lambda p, _: p.stats.extensions >= 3)
    sqs.send_message(QueueUrl=queue.url, MessageBody="long")
    # When it runs to the end
    run_until(poller, lambda: poller.stats.deleted == 1)
    # Then the record was received once (as with the template's 6 x timeout), and deleted
    assert queue.visibility_timeout == 1
    assert receives == ["1"]
    assert poller.stats.invocations == 1 and depth(sqs, queue.url) == 0


def test_an_invocation_past_its_deadline_lets_its_record_come_back(lab_aws: LabAws) -> None:
    # Given a handler that overruns its 1 s deadline (Lambda would have stopped it there):
    # its first call waits for the record's second delivery
    sqs = lab_aws.client("sqs")
    poller, receives = slow_poller(lab_aws, 1, lambda _, seen: len(seen) >= 2)
    sqs.send_message(QueueUrl=lab_aws.queue("BackfillQueue").url, MessageBody="overrun")
    # When it runs
    run_until(poller, lambda: len(receives) >= 2 and poller.stats.invocations == 2)
    # Then the record came back once the deadline had passed, and the overrun was counted
    assert receives == ["1", "2"]
    assert poller.stats.overruns >= 1


@pytest.mark.parametrize("seconds", [0, -5])
def test_a_visibility_timeout_under_one_second_is_refused(lab_aws: LabAws, seconds: int) -> None:
    queue = lab_aws.queue("BackfillQueue")
    with pytest.raises(ValueError, match="visibility_timeout must be at least 1 s"):
        QueuePoller(
            lab_aws.client("sqs"),
            queue.url,
            queue.arn,
            lambda e, c: {},
            "x",
            visibility_timeout=seconds,
        )


def test_stop_leaves_no_poller_thread(lab_aws: LabAws) -> None:
    queue = lab_aws.queue("PrewarmQueue")
    poller = QueuePoller(lab_aws.client("sqs"), queue.url, queue.arn, lambda e, c: {}, "prewarm")
    poller.start()
    started = time.monotonic()
    poller.stop()
    assert time.monotonic() - started < 3
    assert not [t for t in threading.enumerate() if t.name.startswith("poller-prewarm")]


def test_moto_runs_in_a_child_process_that_stop_ends() -> None:
    # Given the lab's default: moto in its own process
    aws = LabAws(TemplateSpec.from_text(TEMPLATE))
    aws.start()
    try:
        # Then it answers, with the template's queues, from another process
        assert aws.child_running
        assert aws.client("sqs").list_queues()["QueueUrls"]
    finally:
        aws.stop()
    # And after stop the child is gone
    assert not aws.child_running


class CountingSqs:
    """An SQS client that counts the receives it has in flight at once."""

    def __init__(self, sqs: Any) -> None:
        self._sqs = sqs
        self._lock = threading.Lock()
        self.receives = 0
        self.in_flight = 0
        self.most_in_flight = 0

    def receive_message(self, **kwargs: Any) -> Any:
        with self._lock:
            self.receives += 1
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            return self._sqs.receive_message(**kwargs)
        finally:
            with self._lock:
                self.in_flight -= 1

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sqs, name)


def test_an_idle_queue_has_one_receive_in_flight_and_records_wake_every_poller(
    lab_aws: LabAws,
) -> None:
    # Given four pollers of one record per invocation on an empty queue
    queue = lab_aws.queue("BackfillQueue")
    sqs = CountingSqs(lab_aws.client("sqs"))
    lock = threading.Lock()
    running: list[int] = [0, 0]  # [now, most at once]
    release = threading.Event()

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        with lock:
            running[0] += 1
            running[1] = max(running[1], running[0])
        release.wait(20)
        with lock:
            running[0] -= 1
        return {"batchItemFailures": []}

    poller = QueuePoller(
        sqs,
        queue.url,
        queue.arn,
        handler,
        "backfill",
        batch_size=1,
        concurrency=4,
        visibility_timeout=queue.visibility_timeout,
    )
    poller.start()
    try:
        # When two long polls have come back empty
        wait_until(lambda: sqs.receives >= 3)
        # Then one poller polled and the others stood by
        assert sqs.most_in_flight == 1
        # When four records arrive, then all four pollers run an invocation at once
        for index in range(4):
            sqs.send_message(QueueUrl=queue.url, MessageBody=f"record {index}")
        wait_until(lambda: running[1] == 4)
    finally:
        release.set()
        poller.stop()
    assert poller.stats.deleted == 4 and depth(sqs, queue.url) == 0
