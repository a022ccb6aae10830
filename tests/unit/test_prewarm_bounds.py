"""A prewarm message's work and hosts are bounded whatever the message says."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest

from edgefill.operations import OperatorError, prewarm_bodies
from prewarm_worker.allowed_hosts import allowed_hosts, check_host
from prewarm_worker.engine import TaskResult, WarmReport, WarmTask
from prewarm_worker.metric_targets import OTHER_TARGET, metric_target
from prewarm_worker.task_cap import MAX_TASKS_PER_MESSAGE, check_task_cap, paths_per_message
from prewarm_worker.worker import (
    NotProcessed,
    PrewarmRuntime,
    failures_by_target,
    prewarm_record,
    publish_metrics,
)
from shared.config import ConfigError, PrewarmConfig
from shared.edge_http import EdgeClient
from shared.edns import EdgeResolver, Question
from shared.messages import ENCODINGS, MAX_PATHS, MAX_TARGETS, MessageError

DOMAIN = "d111abc.cloudfront.net"


def config(**env: str) -> PrewarmConfig:
    return PrewarmConfig.from_env(
        {
            "EDGEFILL_DISTRIBUTION_DOMAIN": DOMAIN,
            "EDGEFILL_VIEWER_HOST": "cdn.example.com",
            "EDGEFILL_TARGETS": "us-east-1,NRT20-P2",
            **env,
        }
    )


class NoNetworkResolver(EdgeResolver):
    """Any DNS question is a test failure: refused messages must not reach the resolver."""

    def lookup(self, question: Question) -> Any:
        raise AssertionError(f"DNS query sent for {question.name}")


class NoEdgeClient(EdgeClient):
    def get(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("edge request sent")


class Log:
    def __init__(self) -> None:
        self.errors: list[dict[str, Any]] = []

    def info(self, *a: Any, **k: Any) -> None: ...
    def warning(self, *a: Any, **k: Any) -> None: ...

    def error(self, msg: str, *a: Any, extra: dict[str, Any] | None = None, **k: Any) -> None:
        self.errors.append({"msg": msg, **(extra or {})})


def runtime(**env: str) -> PrewarmRuntime:
    return PrewarmRuntime(config(**env), NoNetworkResolver("127.0.0.1"), NoEdgeClient(), None)


def body(**fields: Any) -> str:
    return json.dumps({"v": 1, "type": "prewarm", **fields})


# ---- the task cap --------------------------------------------------------------------
def test_given_the_largest_message_allowed_when_processed_then_it_is_refused_whole() -> None:
    # Given 1,000 paths × 200 targets × 4 encodings = 800,000 tasks
    paths = [f"/p/{index}" for index in range(MAX_PATHS)]
    targets = [f"{c}{d}-north-{n}" for c in "ab" for d in "cdefghijkl" for n in range(10)]
    assert len(targets) == MAX_TARGETS
    log = Log()
    # When it is processed
    with pytest.raises(NotProcessed) as refused:
        prewarm_record(
            body(paths=paths, targets=targets, encodings=list(ENCODINGS)), runtime(), log
        )
    # Then it is refused as a whole, naming the field, before any DNS query or request
    assert "paths: 1000 paths × 200 targets × 4 encodings = 800000 tasks" in str(refused.value)
    assert log.errors[0]["msg"] == "prewarm message rejected"


def test_given_a_message_just_at_the_cap_when_checked_then_it_passes() -> None:
    check_task_cap(MAX_TASKS_PER_MESSAGE // 8, 2, 4)  # exactly 20,000
    with pytest.raises(MessageError) as over:
        check_task_cap(MAX_TASKS_PER_MESSAGE // 8 + 1, 2, 4)
    assert over.value.field == "paths"


def test_given_one_path_with_duplicated_encodings_when_checked_then_encodings_is_named() -> None:
    # Duplicates count: the cap is on what the sender asked for, from the lengths alone.
    with pytest.raises(MessageError) as over:
        check_task_cap(1, 1, MAX_TASKS_PER_MESSAGE + 1)
    assert over.value.field == "encodings"
    with pytest.raises(MessageError) as over:
        check_task_cap(1, 200, 101)
    assert over.value.field == "targets"


def test_given_default_targets_when_the_message_is_too_big_then_the_defaults_count() -> None:
    # Given a worker whose EDGEFILL_TARGETS names 2 targets and 4 default encodings
    # When a message of 1,000 paths names none: 8,000 tasks, within the cap
    # Then it is not refused for its size (it reaches DNS, here a failure of the test fake)
    with pytest.raises(AssertionError, match="DNS query sent"):
        prewarm_record(body(paths=[f"/p/{i}" for i in range(1000)]), runtime(), Log())


def test_the_cli_splits_its_messages_under_the_cap() -> None:
    # Given 1,000 paths for 200 targets and 4 encodings
    paths = [(f"argument {i}", f"/p/{i}") for i in range(1000)]
    targets = [f"{c}{d}-north-{n}" for c in "ab" for d in "cdefghijkl" for n in range(10)]
    # When the CLI builds its messages
    bodies = prewarm_bodies(paths, targets, list(ENCODINGS), None, paths_per_message=1000)
    # Then each message asks for at most the cap, and together they cover every path
    sizes = [json.loads(b)["paths"] for b in bodies]
    assert all(len(p) * 200 * 4 <= MAX_TASKS_PER_MESSAGE for p in sizes)
    assert sum(len(p) for p in sizes) == 1000
    assert paths_per_message(200, 4) == 25


def test_the_cli_assumes_the_most_targets_when_it_does_not_know_the_workers() -> None:
    paths = [(f"argument {i}", f"/p/{i}") for i in range(100)]
    bodies = prewarm_bodies(paths, None, None, None)
    assert all(len(json.loads(b)["paths"]) <= paths_per_message(MAX_TARGETS, 4) for b in bodies)


def test_the_cli_refuses_what_even_one_path_cannot_fit() -> None:
    with pytest.raises(OperatorError, match="--encodings"):
        prewarm_bodies([("argument 1", "/a")], ["us-east-1"], ["gzip"] * 20_001, None)


# ---- errors once per target, bounded dimensions ---------------------------------------
def test_given_a_target_that_failed_for_every_task_when_summarised_then_it_is_one_entry() -> None:
    failures = [
        TaskResult(WarmTask(f"/p/{i}", "ZZZ9-Z9", e), ok=False, error=f"/p/{i}: NXDOMAIN")
        for i in range(500)
        for e in ENCODINGS
    ] + [TaskResult(WarmTask("/a", "us-east-1", "gzip"), ok=False, error="/a: status 503")]
    grouped = failures_by_target(failures)
    assert grouped == {
        "ZZZ9-Z9": {"failed": 2000, "error": "/p/0: NXDOMAIN"},
        "us-east-1": {"failed": 1, "error": "/a: status 503"},
    }


def test_a_made_up_target_never_becomes_a_metric_dimension(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given a report with a configured target, a built-in region and two made-up targets
    cfg = config(EDGEFILL_REGION_SUBNETS=json.dumps({"xx-lab-1": "192.0.2.0/24"}))
    report = WarmReport()
    for target in ("NRT20-P2", "eu-west-1", "xx-lab-1", "zz-fake-9", "ABC123-Z9"):
        report.record(TaskResult(WarmTask("/a", target, "gzip"), ok=True, bytes_read=10))
    # When the metrics are published
    publish_metrics(report, cfg)
    blobs = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]
    # Then the made-up targets are summed under "other"
    dimensions = {blob["target"]: blob["WarmOk"][0] for blob in blobs}
    assert dimensions == {"NRT20-P2": 1, "eu-west-1": 1, "xx-lab-1": 1, OTHER_TARGET: 2}
    assert metric_target("us-east-1", cfg) == "us-east-1"


# ---- only our own hosts ----------------------------------------------------------------
@pytest.mark.parametrize(
    "host",
    ["cdn.example.com", "CDN.Example.com", DOMAIN, "cdn.example.com:8443", "img.example.org"],
)
def test_our_own_hosts_are_allowed(host: str) -> None:
    check_host(host, allowed_hosts(config(EDGEFILL_ALLOWED_HOSTS="img.example.org")))


@pytest.mark.parametrize(
    "host",
    ["victim.example.net", "d999other.cloudfront.net", "cdn.example.com.evil.net", "example.com"],
)
def test_given_another_customers_host_when_processed_then_the_message_is_refused(
    host: str,
) -> None:
    log = Log()
    with pytest.raises(NotProcessed) as refused:
        prewarm_record(body(paths=["/a"], host=host), runtime(), log)
    assert "host:" in str(refused.value) and host in str(refused.value)
    assert log.errors[0]["msg"] == "prewarm message rejected"


def test_allowed_hosts_must_be_host_names() -> None:
    with pytest.raises(ConfigError) as bad:
        config(EDGEFILL_ALLOWED_HOSTS="ok.example.com,not a host")
    assert bad.value.variable == "EDGEFILL_ALLOWED_HOSTS"
    with pytest.raises(ConfigError) as bad:
        config(EDGEFILL_ALLOW_PRIVATE_EDGES="yes")
    assert bad.value.variable == "EDGEFILL_ALLOW_PRIVATE_EDGES"
    assert config(EDGEFILL_ALLOW_PRIVATE_EDGES="TRUE").allow_private_edges
    assert not config().allow_private_edges


# ---- the messages a message leads to must fit SQS (issue 19) ---------------------------
def test_a_message_whose_retries_could_not_fit_sqs_is_refused_before_any_work() -> None:
    # Given a message under 1 MiB whose 200 long targets leave no room for a retry of one
    # path with attempt, encodings and host added
    targets = [f"us-{'x' * 4900}-{n % 9 + 1}" for n in range(MAX_TARGETS)]
    message = body(paths=["/a"], targets=targets)
    assert len(message) < 1024 * 1024
    log = Log()
    # When it is processed (NoNetworkResolver: a DNS question fails the test)
    # (retried, or sent to the DLQ: either way, refused before any work)
    with contextlib.suppress(NotProcessed):
        prewarm_record(message, runtime(), log)
    # Then it is refused as a whole, the body named
    [error] = log.errors
    assert error["msg"] == "prewarm message rejected" and error["error"].startswith("body:")
