"""SQS helpers: the region of a queue URL, and batched sends that lose nothing silently.

Batching is checked against moto in server mode over real HTTP (the ``sqs`` fixture);
per-entry failures, which moto cannot produce on demand, against a scripted client.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from shared.queues import (
    BATCH_RETRIES,
    MAX_BATCH,
    MAX_BATCH_BYTES,
    InvalidQueueUrl,
    SendReport,
    region_from_queue_url,
    send_messages,
)

# ---------------------------------------------------------------- region_from_queue_url


@pytest.mark.parametrize(
    ("url", "region"),
    [
        ("https://sqs.eu-west-3.amazonaws.com/123456789012/backfill", "eu-west-3"),
        ("https://sqs.ap-northeast-1.amazonaws.com/123456789012/q.fifo", "ap-northeast-1"),
        ("https://eu-west-1.queue.amazonaws.com/123456789012/legacy", "eu-west-1"),
        ("https://sqs.us-gov-west-1.amazonaws.com/123456789012/gov", "us-gov-west-1"),
        ("https://SQS.US-WEST-2.AMAZONAWS.COM/123456789012/upper", "us-west-2"),
    ],
)
def test_region_comes_from_the_queue_host(url: str, region: str) -> None:
    assert region_from_queue_url(url) == region


def test_other_hosts_fall_back_to_the_environment_region(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a queue URL on moto or LocalStack, which names no region
    monkeypatch.setenv("AWS_REGION", "eu-central-1")
    # Then the environment's region is used
    assert region_from_queue_url("http://127.0.0.1:5000/123456789012/backfill") == "eu-central-1"
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "sa-east-1")
    assert region_from_queue_url("http://localhost:4566/000000000000/q") == "sa-east-1"


def test_a_url_naming_no_region_without_an_environment_region_is_an_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    with pytest.raises(InvalidQueueUrl, match="set AWS_REGION"):
        region_from_queue_url("http://127.0.0.1:5000/123456789012/backfill")


@pytest.mark.parametrize(
    "url",
    [
        "sqs.us-east-1.amazonaws.com/123456789012/q",
        "ftp://sqs.us-east-1.amazonaws.com/123456789012/q",
        "https://sqs.us-east-1.amazonaws.com/",
        "https://sqs.us-east-1.amazonaws.com/123456789012",
        "https://sqs.us-east-1.amazonaws.com/123456789012/",
        "https://sqs.us-east-1.amazonaws.com/123456789012/q/extra",
        "https:///123456789012/q",
        None,
        42,
    ],
)
def test_malformed_queue_urls_are_rejected(url: object) -> None:
    with pytest.raises(InvalidQueueUrl, match="queue URL"):
        region_from_queue_url(url)  # type: ignore[arg-type]


# ---------------------------------------------------------------- send_messages on moto


class CountingSqs:
    """A real boto3 SQS client that also records each SendMessageBatch call."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.calls: list[list[dict[str, Any]]] = []

    def send_message_batch(self, **kwargs: Any) -> Any:
        self.calls.append(kwargs["Entries"])
        return self.client.send_message_batch(**kwargs)


def drain(sqs: Any, queue_url: str) -> list[str]:
    bodies: list[str] = []
    while True:
        response = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)
        messages = response.get("Messages", [])
        if not messages:
            return bodies
        bodies += [m["Body"] for m in messages]
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
            ],
        )


@pytest.fixture
def queue(sqs: Any) -> Iterator[str]:
    url: str = sqs.create_queue(QueueName="send-test")["QueueUrl"]
    yield url


def test_bodies_go_out_ten_per_call(sqs: Any, queue: str) -> None:
    # Given 25 bodies
    bodies = [f'{{"n": {i}}}' for i in range(25)]
    counting = CountingSqs(sqs)
    # When sent
    report = send_messages(counting, queue, bodies)
    # Then three calls of 10, 10 and 5 carried all of them, and every one arrived
    assert [len(call) for call in counting.calls] == [10, 10, 5]
    assert report == SendReport(sent=25, failed=[])
    assert report.ok
    assert sorted(drain(sqs, queue)) == sorted(bodies)


def test_large_bodies_are_split_to_stay_under_the_batch_byte_limit(sqs: Any, queue: str) -> None:
    # Given bodies of 400 KiB: three together exceed the 1 MiB a batch may carry
    bodies = [str(i) * 400 * 1024 for i in range(5)]
    counting = CountingSqs(sqs)
    # When sent
    report = send_messages(counting, queue, bodies)
    # Then each call stays under 1 MiB, and all arrive
    for call in counting.calls:
        assert sum(len(entry["MessageBody"]) for entry in call) <= MAX_BATCH_BYTES
    assert [len(call) for call in counting.calls] == [2, 2, 1]
    assert report.sent == 5 and report.ok
    assert sorted(drain(sqs, queue)) == sorted(bodies)


def test_a_body_over_the_limit_is_reported_and_the_others_still_go(sqs: Any, queue: str) -> None:
    # Given one body larger than SQS accepts between two good ones
    bodies = ["first", "x" * (MAX_BATCH_BYTES + 1), "third"]
    # When sent
    report = send_messages(sqs, queue, bodies)
    # Then the large one is reported by index, the others arrive
    assert report.sent == 2
    assert [(index, code) for index, code, _ in report.failed] == [(1, "MessageTooLong")]
    assert not report.ok
    assert sorted(drain(sqs, queue)) == ["first", "third"]


def test_delayed_messages_are_not_visible_at_once(sqs: Any, queue: str) -> None:
    report = send_messages(sqs, queue, ["later"], delay_seconds=60)
    assert report.sent == 1
    assert drain(sqs, queue) == []


def test_nothing_to_send_makes_no_call(sqs: Any, queue: str) -> None:
    counting = CountingSqs(sqs)
    assert send_messages(counting, queue, []) == SendReport()
    assert counting.calls == []


@pytest.mark.parametrize("delay", [-1, 901])
def test_delay_outside_what_sqs_allows_is_refused(delay: int) -> None:
    with pytest.raises(ValueError, match="delay_seconds"):
        send_messages(ScriptedSqs([]), "https://sqs.us-east-1.amazonaws.com/1/q", ["a"], delay)


# ---------------------------------------------------------------- per-entry failures


class ScriptedSqs:
    """Answers SendMessageBatch from a script: per call, the Ids to fail and how."""

    def __init__(self, script: list[dict[str, tuple[str, bool]]]) -> None:
        self.script = script
        self.calls: list[list[dict[str, Any]]] = []

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> Any:  # noqa: N803
        self.calls.append(Entries)
        failures = self.script.pop(0) if self.script else {}
        return {
            "Successful": [
                {"Id": e["Id"], "MessageId": f"m-{e['Id']}"}
                for e in Entries
                if e["Id"] not in failures
            ],
            "Failed": [
                {"Id": key, "Code": code, "SenderFault": sender, "Message": f"{code} for {key}"}
                for key, (code, sender) in failures.items()
                if any(e["Id"] == key for e in Entries)
            ],
        }


URL = "https://sqs.us-east-1.amazonaws.com/123456789012/q"


def test_entries_sqs_failed_on_its_side_are_resent() -> None:
    # Given SQS fails entry 3 with an internal error once
    sqs = ScriptedSqs([{"3": ("InternalError", False)}])
    sleeps: list[float] = []
    # When 10 bodies are sent
    report = send_messages(sqs, URL, [f"b{i}" for i in range(10)], sleep=sleeps.append)
    # Then only entry 3 is sent again, after a short pause, and nothing is lost
    assert [len(call) for call in sqs.calls] == [10, 1]
    assert sqs.calls[1] == [{"Id": "3", "MessageBody": "b3"}]
    assert report == SendReport(sent=10, failed=[])
    assert len(sleeps) == 1 and 0 < sleeps[0] <= 1


def test_sender_faults_are_reported_not_resent() -> None:
    # Given SQS rejects entry 12 as the sender's fault
    sqs = ScriptedSqs([{}, {"12": ("InvalidMessageContents", True)}])
    # When 15 bodies are sent
    report = send_messages(sqs, URL, [f"b{i}" for i in range(15)], sleep=lambda _: None)
    # Then it is reported by its index, with SQS's code and reason, and not retried
    assert len(sqs.calls) == 2
    assert report.sent == 14
    assert report.failed == [(12, "InvalidMessageContents", "InvalidMessageContents for 12")]


def test_entries_still_failing_after_the_retries_are_reported() -> None:
    # Given SQS keeps throttling entries 0 and 1
    persistent = {"0": ("ThrottlingException", False), "1": ("ThrottlingException", False)}
    sqs = ScriptedSqs([dict(persistent) for _ in range(BATCH_RETRIES + 1)])
    sleeps: list[float] = []
    # When three bodies are sent
    report = send_messages(sqs, URL, ["a", "b", "c"], sleep=sleeps.append)
    # Then they were tried 1 + BATCH_RETRIES times with growing pauses, then reported
    assert len(sqs.calls) == BATCH_RETRIES + 1
    assert sleeps == sorted(sleeps) and len(sleeps) == BATCH_RETRIES
    assert report.sent == 1
    assert [(i, code) for i, code, _ in report.failed] == [
        (0, "ThrottlingException"),
        (1, "ThrottlingException"),
    ]


def test_delay_is_set_on_every_entry() -> None:
    sqs = ScriptedSqs([])
    send_messages(sqs, URL, ["a"] * (MAX_BATCH + 1), delay_seconds=30)
    assert all(entry["DelaySeconds"] == 30 for call in sqs.calls for entry in call)
    assert [len(call) for call in sqs.calls] == [MAX_BATCH, 1]


def test_a_call_that_fails_as_a_whole_raises() -> None:
    # Given a client whose call fails outright (after botocore's own retries)
    class Broken:
        def send_message_batch(self, **_: Any) -> Any:
            raise ConnectionError("endpoint unreachable")

    # Then the caller sees it (its own message is retried), rather than a silent loss
    with pytest.raises(ConnectionError):
        send_messages(Broken(), URL, ["a"])


def test_a_call_that_fails_as_a_whole_is_reported_with_keep_going() -> None:
    # Given a client whose second call fails outright
    class BrokenSecond(ScriptedSqs):
        def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> Any:  # noqa: N803
            if len(self.calls) == 1:
                self.calls.append(Entries)
                raise ConnectionError("endpoint unreachable")
            return super().send_message_batch(QueueUrl, Entries)

    sqs = BrokenSecond([])
    # When 25 bodies are sent with keep_going
    report = send_messages(sqs, URL, [f"b{i}" for i in range(25)], keep_going=True)
    # Then the failed call's ten entries are reported by index, and the third call still went
    assert report.sent == 15 and report.calls == 3 and len(sqs.calls) == 3
    assert [index for index, _, _ in report.failed] == list(range(10, 20))
    assert {code for _, code, _ in report.failed} == {"ConnectionError"}
    assert report.call_errors == ["ConnectionError: endpoint unreachable"]


def test_the_report_counts_every_call_resends_included() -> None:
    sqs = ScriptedSqs([{}, {"13": ("InternalError", False)}])
    report = send_messages(sqs, URL, [f"b{i}" for i in range(15)], sleep=lambda _: None)
    assert report.calls == len(sqs.calls) == 3
    assert report == SendReport(sent=15, failed=[])  # the cost is not part of the outcome


def test_a_smaller_byte_bound_cuts_calls_sooner_but_a_large_body_still_goes_alone() -> None:
    # Given a 1 KiB bound, six 300-byte bodies and one of 2 KiB (under SQS's 1 MiB)
    bodies = ["a" * 300] * 3 + ["b" * 2048] + ["c" * 300] * 3
    sqs = ScriptedSqs([])
    # When sent
    report = send_messages(sqs, URL, bodies, max_batch_bytes=1024)
    # Then calls stay under the bound, except the large body alone, and all are sent
    assert [len(call) for call in sqs.calls] == [3, 1, 3]
    assert report.sent == 7 and report.ok and report.calls == 3


@pytest.mark.parametrize("bound", [0, MAX_BATCH_BYTES + 1])
def test_a_byte_bound_sqs_cannot_honour_is_refused(bound: int) -> None:
    with pytest.raises(ValueError, match="max_batch_bytes"):
        send_messages(ScriptedSqs([]), URL, ["a"], max_batch_bytes=bound)
