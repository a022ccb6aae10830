"""Lambda's SQS event source, emulated: long-poll a queue, batch, invoke, delete.

What Lambda does and the lab does too: up to ``batch_size`` records per invocation,
gathered for at most ``batching_window`` seconds; records in Lambda's SQS event shape
(``messageId``, ``receiptHandle``, ``attributes.ApproximateReceiveCount``...); after the
handler returns, every record not named in ``batchItemFailures`` is deleted; failed
records, and all records of an invocation that raised or answered malformed
``batchItemFailures``, are left alone so the queue's visibility timeout makes them
visible again, and the queue's RedrivePolicy moves them to the DLQ after
``maxReceiveCount`` receives (moto applies it on receive, as SQS does).

What differs: the handler runs in a thread of this process, not a container, and is not
killed at its timeout (an overrun is counted); concurrency is a fixed number of pollers.
Like Lambda's, the pollers scale with the queue: while it is empty one of them long-polls
and the others stand by; the first receive that returns records wakes them all, and each
stands by again after an empty receive while another is polling. So while some invoke,
another polls (up to the concurrency), and an idle lab sends one receive a second per
queue instead of one per poller (at five pollers a queue, those receives were most of an
idle lab's CPU: docs/BENCHMARKS.md).
The lab's queues have short visibility timeouts (seconds, so that a failed record comes
back within a demo), where the templates make each queue's timeout six times its
function's: a record is never visible again while its invocation runs. The lab keeps that
promise by extending the visibility of the records in flight (``ChangeMessageVisibility``,
every half timeout) until the handler returns or its deadline passes, whichever is first;
without it, every invocation longer than the lab's timeout ran again, concurrently, on the
same records.
Time can be scaled: with ``deadline_scale`` the context's deadline is the function
timeout times that factor (a 900 s function gets 9 s at 0.01), so that what a worker does
near its deadline (the backfill's handover to a continuation) happens within a demo.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from botocore.exceptions import BotoCoreError, ClientError

Handler = Callable[[dict[str, Any], Any], Any]

# The lab long-polls for one second at a time (Lambda uses 20) so stop() returns quickly.
LAB_WAIT_SECONDS: Final = 1
_log = logging.getLogger("edgefill.lab.pollers")


class LambdaContext:
    """The attributes of Lambda's context object that handlers and Powertools read."""

    def __init__(
        self,
        function_name: str = "edgefill",
        region: str = "us-east-1",
        account: str = "123456789012",
        timeout: float = 300.0,
    ) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:{region}:{account}:function:{function_name}"
        self.memory_limit_in_mb = 1024
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = time.strftime("%Y/%m/%d/[$LATEST]") + uuid.uuid4().hex
        self._deadline = time.monotonic() + timeout

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@dataclass
class PollerStats:
    """What a poller did; read by the demo, the tests and ``edgefill lab up``."""

    invocations: int = 0
    records: int = 0
    deleted: int = 0
    failed: int = 0  # records left for the visibility timeout
    handler_errors: int = 0  # invocations that raised or answered malformed failures
    overruns: int = 0  # invocations longer than the function timeout
    extensions: int = 0  # visibility extensions of records still in flight
    receive_counts: dict[str, int] = field(default_factory=dict)  # messageId → receives seen


def sqs_record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """One message of ReceiveMessage as Lambda hands it to a function."""
    attributes = message.get("Attributes", {})
    body = message["Body"]
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": attributes.get("ApproximateReceiveCount", "1"),
            "SentTimestamp": attributes.get("SentTimestamp", str(int(time.time() * 1000))),
            "SenderId": attributes.get("SenderId", "AIDAEDGEFILLLAB"),
            "ApproximateFirstReceiveTimestamp": attributes.get(
                "ApproximateFirstReceiveTimestamp", str(int(time.time() * 1000))
            ),
        },
        "messageAttributes": {
            name: {
                "stringValue": value.get("StringValue"),
                "binaryValue": value.get("BinaryValue"),
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": value.get("DataType", "String"),
            }
            for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message.get("MD5OfBody") or hashlib.md5(body.encode()).hexdigest(),  # noqa: S324
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


class QueuePoller:
    """``concurrency`` threads feeding ``queue_url`` to ``handler`` as Lambda would."""

    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        queue_arn: str,
        handler: Handler,
        function_name: str,
        batch_size: int = 10,
        batching_window: float = 0.0,
        concurrency: int = 2,
        function_timeout: float = 30.0,
        report_batch_item_failures: bool = True,
        deadline_scale: float = 1.0,
        visibility_timeout: int = 30,
    ) -> None:
        if not 1 <= batch_size <= 10_000:
            raise ValueError(f"batch_size must be 1 to 10000, got {batch_size}")
        if not 0 < deadline_scale <= 1:
            raise ValueError(f"deadline_scale must be in (0, 1], got {deadline_scale}")
        self._sqs = sqs
        self.queue_url = queue_url
        self.queue_arn = queue_arn
        self._handler = handler
        self.function_name = function_name
        self._batch_size = batch_size
        self._window = batching_window
        self._concurrency = concurrency
        # The deadline handlers see (and overruns are counted against).
        self._timeout = function_timeout * deadline_scale
        self._partial = report_batch_item_failures
        if visibility_timeout < 1:
            raise ValueError(f"visibility_timeout must be at least 1 s, got {visibility_timeout}")
        self._visibility = visibility_timeout
        arn_parts = queue_arn.split(":")
        self._region, self._account = arn_parts[3], arn_parts[4]
        self.stats = PollerStats()
        self._stats_lock = threading.Lock()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._busy = 0
        # Scaling (the module's docstring): how many threads are receiving, and whether the
        # last receive found records (then every poller is wanted).
        self._demand = threading.Condition()
        self._polling = 0
        self._wanted = False

    def start(self) -> None:
        for index in range(self._concurrency):
            thread = threading.Thread(
                target=self._run, name=f"poller-{self.function_name}-{index}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop polling; an invocation in progress finishes first (as in Lambda)."""
        self._stopping.set()
        with self._demand:
            self._demand.notify_all()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        alive = [thread.name for thread in self._threads if thread.is_alive()]
        self._threads = []
        if alive:
            raise RuntimeError(f"pollers still running after {timeout}s: {alive}")

    @property
    def deadline_seconds(self) -> float:
        """The deadline each invocation gets (the function timeout, scaled)."""
        return self._timeout

    @property
    def busy(self) -> bool:
        """True while some invocation is running."""
        return self._busy > 0

    def _run(self) -> None:
        while self._stand_by():
            try:
                batch = self._gather()
            except (BotoCoreError, ClientError) as error:
                if self._stopping.is_set():
                    return
                _log.warning("%s: receive failed: %s", self.function_name, error)
                self._stopping.wait(0.5)
                continue
            finally:
                self._stop_polling()
            if batch:
                self._invoke(batch)

    def _stand_by(self) -> bool:
        """Wait while another thread polls and no records are waiting; then count this one
        as polling. False once the poller stops."""
        with self._demand:
            while self._polling and not self._wanted and not self._stopping.is_set():
                self._demand.wait()
            if self._stopping.is_set():
                return False
            self._polling += 1
            return True

    def _stop_polling(self) -> None:
        with self._demand:
            self._polling -= 1
            # A thread leaving to invoke may leave nobody polling: a standby takes over.
            self._demand.notify_all()

    def _found_none(self) -> bool:
        """After an empty receive: no poller is wanted any more. True when another thread
        is polling, so this one may stand by."""
        with self._demand:
            self._wanted = False
            return self._polling > 1

    def _call_for_help(self) -> None:
        with self._demand:
            if not self._wanted:
                self._wanted = True
                self._demand.notify_all()

    def _gather(self) -> list[dict[str, Any]]:
        """Receive until the batch is full or the batching window closes."""
        batch: list[dict[str, Any]] = []
        window_ends: float | None = None
        while len(batch) < self._batch_size and not self._stopping.is_set():
            remaining_window = 0.0 if window_ends is None else window_ends - time.monotonic()
            if window_ends is not None and remaining_window <= 0:
                break
            wait = LAB_WAIT_SECONDS if not batch else min(LAB_WAIT_SECONDS, int(remaining_window))
            response = self._sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=min(10, self._batch_size - len(batch)),
                WaitTimeSeconds=wait,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            messages = response.get("Messages", [])
            if not messages and not batch:
                if self._found_none():
                    return batch  # this one stands by
                continue
            if messages:
                self._call_for_help()  # more may be waiting: every poller receives
            batch.extend(messages)
            if window_ends is None:
                window_ends = time.monotonic() + self._window
            if not messages:
                break
        return batch

    def _invoke(self, batch: list[dict[str, Any]]) -> None:
        records = [sqs_record(message, self.queue_arn, self._region) for message in batch]
        event = {"Records": records}
        context = LambdaContext(self.function_name, self._region, self._account, self._timeout)
        with self._stats_lock:
            self._busy += 1
            self.stats.invocations += 1
            self.stats.records += len(records)
            for record in records:
                self.stats.receive_counts[record["messageId"]] = int(
                    record["attributes"]["ApproximateReceiveCount"]
                )
        started = time.monotonic()
        returned = threading.Event()
        keeper = threading.Thread(
            target=self._keep_invisible,
            args=(records, returned, started + self._timeout),
            name=f"visibility-{self.function_name}",
            daemon=True,
        )
        keeper.start()
        try:
            failed_ids = self._failed_ids(event, context, records)
        finally:
            returned.set()
            keeper.join()
            with self._stats_lock:
                self._busy -= 1
                if time.monotonic() - started > self._timeout:
                    self.stats.overruns += 1
        done = [record for record in records if record["messageId"] not in failed_ids]
        self._delete(done)
        with self._stats_lock:
            self.stats.failed += len(records) - len(done)

    def _failed_ids(
        self, event: dict[str, Any], context: LambdaContext, records: list[dict[str, Any]]
    ) -> set[str]:
        """The messageIds to leave on the queue; every one when the invocation failed."""
        every_id = {record["messageId"] for record in records}
        try:
            response = self._handler(event, context)
        except Exception:
            _log.exception("%s: invocation raised; its batch will be retried", self.function_name)
            with self._stats_lock:
                self.stats.handler_errors += 1
            return every_id
        if not self._partial:
            return set()
        failures = response.get("batchItemFailures", []) if isinstance(response, dict) else []
        failed: set[str] = set()
        for failure in failures or []:
            identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
            if not isinstance(identifier, str) or identifier not in every_id:
                # Lambda treats an unknown, empty or null identifier as a failure of the
                # whole batch.
                _log.error("%s: malformed batchItemFailures %r", self.function_name, failures)
                with self._stats_lock:
                    self.stats.handler_errors += 1
                return every_id
            failed.add(identifier)
        return failed

    def _keep_invisible(
        self, records: list[dict[str, Any]], returned: threading.Event, deadline: float
    ) -> None:
        """Extend the records' visibility every half timeout until the handler returns or
        the invocation's deadline passes (Lambda would have stopped it by then)."""
        period = self._visibility / 2
        while not returned.wait(period) and time.monotonic() < deadline:
            for start in range(0, len(records), 10):
                entries = [
                    {
                        "Id": str(index),
                        "ReceiptHandle": record["receiptHandle"],
                        "VisibilityTimeout": self._visibility,
                    }
                    for index, record in enumerate(records[start : start + 10])
                ]
                try:
                    self._sqs.change_message_visibility_batch(
                        QueueUrl=self.queue_url, Entries=entries
                    )
                except (BotoCoreError, ClientError) as error:
                    _log.warning("%s: visibility not extended: %s", self.function_name, error)
            with self._stats_lock:
                self.stats.extensions += 1

    def _delete(self, records: list[dict[str, Any]]) -> None:
        for start in range(0, len(records), 10):
            chunk = records[start : start + 10]
            entries = [
                {"Id": str(index), "ReceiptHandle": record["receiptHandle"]}
                for index, record in enumerate(chunk)
            ]
            try:
                response = self._sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)
            except (BotoCoreError, ClientError) as error:
                _log.warning(
                    "%s: delete failed, records will reappear: %s", self.function_name, error
                )
                continue
            with self._stats_lock:
                self.stats.deleted += len(response.get("Successful", []))
