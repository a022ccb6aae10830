"""Re-enqueued prewarm messages cover exactly the failed tuples; backoff and give-up rules."""

from __future__ import annotations

import json
import time
from itertools import product
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prewarm_worker.engine import (
    TaskResult,
    WarmPlan,
    WarmReport,
    WarmSettings,
    WarmTask,
    _TaskBoard,
    _TaskRunner,
    _worth_another_try,
)
from prewarm_worker.worker import (
    NotProcessed,
    Outcome,
    PrewarmRuntime,
    _requeue,
    deadline_for,
    prewarm_record,
    retry_messages,
)
from shared.config import PrewarmConfig
from shared.edge_http import EdgeClient
from shared.edns import EdgeResolver
from shared.messages import PrewarmMessage, parse_prewarm, to_json
from tests.budget import examples

PATHS = ("/a", "/b", "/c", "/d")
TARGETS = ("us-east-1", "eu-west-1", "NRT20-P2")
ENCODINGS = ("br+gzip", "gzip", "br", "identity")
ALL = list(product(PATHS, TARGETS, ENCODINGS))


def failed(tuples: list[tuple[str, str, str]]) -> list[TaskResult]:
    return [TaskResult(WarmTask(*t), ok=False, retryable=True) for t in tuples]


def covered(messages: list[PrewarmMessage]) -> list[tuple[str, str, str]]:
    return [t for m in messages for t in product(m.paths, m.targets or (), m.encodings or ())]


@settings(max_examples=examples(200), deadline=None)
@given(st.lists(st.sampled_from(ALL), unique=True, min_size=1))
def test_any_set_of_failures_is_covered_exactly_once(tuples: list[tuple[str, str, str]]) -> None:
    original = PrewarmMessage(paths=PATHS, targets=TARGETS, encodings=ENCODINGS, source="x")
    messages = retry_messages(failed(tuples), original, "cdn.example.com", 1)
    assert sorted(covered(messages)) == sorted(tuples)
    for message in messages:
        assert parse_prewarm(to_json(message)) == message  # valid v1 messages
        assert message.attempt == 1 and message.host == "cdn.example.com"


def test_a_whole_target_down_is_one_message() -> None:
    tuples = [t for t in ALL if t[1] == "NRT20-P2"]
    original = PrewarmMessage(paths=PATHS, targets=TARGETS, encodings=ENCODINGS)
    (message,) = retry_messages(failed(tuples[::-1]), original, "h.example", 2)
    assert message.paths == PATHS and message.targets == ("NRT20-P2",)
    assert set(message.encodings or ()) == set(ENCODINGS)


class FakeSQS:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def send_message_batch(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        return {"Successful": [{"Id": e["Id"]} for e in kwargs["Entries"]], "Failed": []}


def requeue(attempt: int, jitter: float, **env: str) -> tuple[Outcome, FakeSQS]:
    config = PrewarmConfig.from_env(
        {
            "EDGEFILL_DISTRIBUTION_DOMAIN": "d111abc.cloudfront.net",
            "EDGEFILL_PREWARM_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/1/q",
            **env,
        }
    )
    sqs = FakeSQS()
    runtime = PrewarmRuntime(config, EdgeResolver("127.0.0.1"), EdgeClient(), sqs)
    report = WarmReport(tasks=2)
    for result in failed([("/a", "us-east-1", "gzip")]) + [
        TaskResult(WarmTask("/b", "ZZZ9-Z9", "gzip"), ok=False, retryable=False)  # NXDOMAIN
    ]:
        report.record(result)
    message = PrewarmMessage(paths=("/a", "/b"), attempt=attempt)
    plan = WarmPlan(message.paths, ("us-east-1",), ("gzip",), "cdn.example.com")

    class Silent:
        def info(self, *a: Any, **k: Any) -> None: ...
        def warning(self, *a: Any, **k: Any) -> None: ...
        def error(self, *a: Any, **k: Any) -> None: ...

    return _requeue(message, plan, report, runtime, Silent(), "m", lambda: jitter), sqs


def test_the_delay_grows_with_the_attempt_and_stays_within_sqs_limits() -> None:
    first, sqs = requeue(0, 1.0, EDGEFILL_RETRY_DELAY="30")
    assert first.delay_seconds == 30 and first.requeued_tasks == 1 and first.given_up == 1
    (entry,) = sqs.calls[0]["Entries"]
    assert entry["DelaySeconds"] == 30
    body = json.loads(entry["MessageBody"])
    assert body["paths"] == ["/a"] and body["attempt"] == 1
    third, _ = requeue(2, 0.0, EDGEFILL_RETRY_DELAY="30")
    assert third.delay_seconds == 60  # half of 30 × 2², the jittered floor
    late, _ = requeue(4, 1.0, EDGEFILL_RETRY_DELAY="900", EDGEFILL_MAX_ATTEMPTS="10")
    assert late.delay_seconds == 900


def test_past_the_maximum_attempt_nothing_is_sent() -> None:
    outcome, sqs = requeue(4, 0.5, EDGEFILL_MAX_ATTEMPTS="5")
    assert sqs.calls == [] and outcome.given_up == 2 and outcome.requeued_tasks == 0


def test_retry_now_only_on_broken_transfers_and_5xx() -> None:
    task = WarmTask("/a", "us-east-1", "gzip")
    assert _worth_another_try(TaskResult(task, ok=False, retryable=True))  # reset, timeout
    assert _worth_another_try(TaskResult(task, ok=False, status=503, retryable=True))
    assert _worth_another_try(TaskResult(task, ok=False, status=200, retryable=True))  # short
    assert not _worth_another_try(TaskResult(task, ok=False, status=404, retryable=True))
    assert not _worth_another_try(TaskResult(task, ok=False, retryable=False))  # bad cert


def test_backoff_is_exponential_with_equal_jitter_and_capped() -> None:
    runner = _TaskRunner(
        "h",
        EdgeClient(),
        WarmSettings(backoff_base=0.2, backoff_cap=1.0),
        lambda _: None,
        lambda: 1.0,
    )
    assert [runner._backoff(n) for n in (1, 2, 3, 4, 5)] == [0.2, 0.4, 0.8, 1.0, 1.0]
    runner.jitter = lambda: 0.0
    assert runner._backoff(2) == 0.2


def board_with(**sizes: int) -> _TaskBoard:
    board = _TaskBoard()
    for edge, size in sizes.items():
        for index in range(size):
            board.add(edge, WarmTask(f"/{edge}{index}", f"t-{edge}", "gzip"))
    return board


def test_the_board_keeps_a_worker_on_its_edge_and_spreads_workers_by_work_left() -> None:
    board = board_with(A=20, B=8)
    picks = [board.take(None) for _ in range(3)]
    # A: 20 for 1 worker, then 19 for 2; B's 8 for 1 beats A's 18 for 3.
    assert [pick[0] for pick in picks if pick] == ["A", "A", "B"]
    assert [board.take("B") for _ in range(7)] == [
        ("B", WarmTask(f"/B{index}", "t-B", "gzip")) for index in range(1, 8)
    ]
    moved = board.take("B")  # B is dry; A's 17 tasks need its 2 workers long: help
    assert moved is not None and moved[0] == "A"
    while board.take("A") is not None:
        pass
    assert len(board) == 0


def test_a_dry_worker_stops_rather_than_open_a_connection_for_the_last_few_tasks() -> None:
    board = board_with(A=4, B=1)
    assert [pick[0] for pick in (board.take(None) for _ in range(3)) if pick] == ["A", "A", "B"]
    # A has 2 tasks left for its 2 workers: a new connection there would finish later.
    assert board.take("B") is None
    assert len(board) == 2


class RecordingLog:
    def __init__(self) -> None:
        self.lines: list[tuple[str, dict[str, Any]]] = []

    def info(self, msg: str, *args: Any, **kwargs: Any) -> None:
        self.lines.append((msg, kwargs.get("extra", {})))

    warning = error = info


def no_dead_letter_queue() -> PrewarmRuntime:
    """A worker without EDGEFILL_PREWARM_DLQ_URL (refusals go to the DLQ: see
    tests/integration/test_refusals_to_the_dlq.py)."""
    config = PrewarmConfig(
        distribution_domain="d111.cloudfront.net", viewer_host="d111.cloudfront.net"
    )
    return PrewarmRuntime(config, EdgeResolver("127.0.0.1"), EdgeClient(), None)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"v": 1, "type": "prewarm", "paths": [f"/p{i}" for i in range(1001)]}, "paths"),
        ({"v": 1, "type": "prewarm", "paths": []}, "paths"),
        ({"v": 1, "type": "prewarm", "paths": [""]}, "paths[0]"),
        ({"v": 1, "type": "prewarm", "paths": ["/a", "b"]}, "paths[1]"),
        ({"v": 1, "type": "prewarm", "paths": ["/a"], "encodings": ["deflate"]}, "encodings[0]"),
        ({"v": 1, "type": "prewarm", "paths": ["/a"], "targets": ["nrt20"]}, "targets[0]"),
        ({"v": 1, "type": "backfill", "uri": "/a"}, "type"),
        ({"v": 2, "type": "prewarm", "paths": ["/a"]}, "v"),
    ],
)
def test_a_message_breaking_the_contract_is_rejected_naming_the_field(
    body: dict[str, Any], field: str
) -> None:
    log = RecordingLog()
    # Without a DLQ, a refused message is left for SQS to deliver again (as before)
    with pytest.raises(NotProcessed):
        prewarm_record(json.dumps(body), no_dead_letter_queue, log, message_id="m-1")
    ((message, extra),) = log.lines
    assert message == "prewarm message rejected" and extra["messageId"] == "m-1"
    assert extra["error"].startswith(f"{field}: ")


def test_the_deadline_keeps_a_reserve_for_requests_in_flight() -> None:
    config = PrewarmConfig.from_env({"EDGEFILL_DISTRIBUTION_DOMAIN": "d1.cloudfront.net"})
    assert deadline_for(None, config) is None
    now = time.monotonic()
    short = deadline_for(60_000, config)
    long = deadline_for(900_000, config)
    assert short is not None and long is not None
    assert 44 <= short - now <= 46  # a quarter kept back when time is short
    assert 859 <= long - now <= 861  # one request timeout + 10 s otherwise


def test_past_the_deadline_the_board_hands_out_nothing_and_drains() -> None:
    board = _TaskBoard(deadline=time.monotonic() - 1)
    board.add("A", WarmTask("/a", "t", "gzip"))
    assert board.take(None) is None
    assert board.drain() == [("A", WarmTask("/a", "t", "gzip"))]
    assert len(board) == 0


def test_while_targets_resolve_a_waiting_worker_gets_the_next_edge_and_shares_are_kept() -> None:
    import threading

    board = _TaskBoard(pending=2, concurrency=4, expected=8)
    got: list[object] = []
    waiter = threading.Thread(target=lambda: got.append(board.take(None)))
    waiter.start()
    board.publish("A", [WarmTask(f"/a{i}", "t-A", "gzip") for i in range(4)])
    waiter.join(timeout=2)
    assert got and got[0] is not None and got[0][0] == "A"  # type: ignore[index]
    board.settled()
    # A holds half the expected tasks: two of the four workers at most while B is coming.
    assert board.take(None) is not None
    late: list[object] = []
    third = threading.Thread(target=lambda: late.append(board.take(None)))
    third.start()
    third.join(timeout=0.2)
    assert third.is_alive()  # waits rather than pile onto A
    board.publish("B", [WarmTask(f"/b{i}", "t-B", "gzip") for i in range(4)])
    board.settled()
    third.join(timeout=2)
    assert late and late[0] is not None and late[0][0] == "B"  # type: ignore[index]


def test_retries_of_long_signed_uris_are_sized_by_bytes() -> None:
    # Given 1,000 failed paths of 7 KB each at one target: 7 MB in one cross product
    paths = tuple(f"/v/s{n:04d}.m4s?sig=" + "s" * 7000 for n in range(1000))
    original = PrewarmMessage(paths=paths, targets=("us-east-1",), encodings=("gzip",))
    failures = failed([(path, "us-east-1", "gzip") for path in paths])
    # When they are re-enqueued
    messages = retry_messages(failures, original, "cdn.example.com", 1)
    # Then every message fits SQS's 1 MiB and they still cover each tuple once
    assert len(messages) >= 7
    assert all(len(to_json(message).encode()) <= 1024 * 1024 for message in messages)
    assert sorted(covered(messages)) == sorted((p, "us-east-1", "gzip") for p in paths)
