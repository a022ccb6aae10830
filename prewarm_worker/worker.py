"""One prewarm message, start to end: parse, warm, re-enqueue what failed, report.

The handler calls ``prewarm_record`` for each SQS record. A body that breaks the contract
or a bound (host, task cap) is **refused**: it can never be processed, so it is sent at
once to the worker's DLQ with its reason (``EDGEFILL_PREWARM_DLQ_URL``,
``shared/dead_letters.py``) and the record succeeds. A record raises (and so becomes a
batch item failure, retried by SQS and finally moved to the DLQ) when it could not be
processed at all: a refusal the DLQ did not take (or with no DLQ configured), a
configuration error, no targets at all, an invalidation whose status cannot be read yet
(throttling, 5xx), a resolver that answered nothing for any target, or SQS refusing a
re-enqueue or a follow-up message. Everything else — a bad target, a dead edge, a short
body — is a recorded failure inside a processed message.
"""

from __future__ import annotations

import os
import random
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final, Protocol

from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from prewarm_worker.allowed_hosts import allowed_hosts, check_host
from prewarm_worker.byte_cap import log_capped
from prewarm_worker.engine import TaskResult, WarmContext, WarmPlan, WarmReport
from prewarm_worker.expand import expansion_summary, send_follow_ups, warm_message
from prewarm_worker.invalidation_wait import WaitFailed, wait_for_invalidation
from prewarm_worker.metric_targets import metric_target
from prewarm_worker.task_cap import check_message_room, check_task_cap
from shared import aws
from shared.backoff import backoff_with_jitter
from shared.config import ConfigError, PrewarmConfig
from shared.dead_letters import DeadLetterNotSent, DeadLetters, dead_letters_for
from shared.edge_http import EdgeClient
from shared.edge_http2 import edge_client_for
from shared.edns import EdgeResolver, region_subnets
from shared.messages import (
    MessageError,
    PrewarmMessage,
    parse_prewarm,
    prewarm_messages,
    to_json,
)
from shared.observability import NAMESPACE, Log
from shared.queues import region_from_queue_url, send_and_log

SQS_MAX_DELAY: Final = 900
# The reasons a prewarm message is refused for good (the ``edgefill-refusal`` attribute).
BAD_MESSAGE: Final = "bad_message"  # breaks the v1 contract (the field is named)
HOST_NOT_ALLOWED: Final = "host_not_allowed"  # not a host of this distribution
TASK_CAP: Final = "task_cap"  # paths × targets × encodings over MAX_TASKS_PER_MESSAGE


class NotProcessed(Exception):
    """The message could not be processed at all; SQS should deliver it again."""


@dataclass(frozen=True)
class PrewarmRuntime:
    """What a container builds once: configuration and the adapters it needs."""

    config: PrewarmConfig
    resolver: EdgeResolver
    client: EdgeClient
    sqs: Any | None
    cloudfront: Any | None = None  # GetInvalidation, when EDGEFILL_DISTRIBUTION_ID is set
    dead_letters: DeadLetters | None = None  # refusals, when EDGEFILL_PREWARM_DLQ_URL is set


def build_runtime(config: PrewarmConfig) -> PrewarmRuntime:
    """Adapters for ``config``: a resolver, keep-alive edge pools and (if a queue is
    configured) the SQS client for re-enqueueing."""
    sqs = None
    if config.prewarm_queue_url:
        sqs = aws.client("sqs", region_from_queue_url(config.prewarm_queue_url))
    return PrewarmRuntime(
        config=config,
        resolver=EdgeResolver(config.resolver_host, config.resolver_port),
        client=edge_client_for(config),
        sqs=sqs,
        # CloudFront's API lives in us-east-1 whatever the worker's region.
        cloudfront=aws.client("cloudfront", "us-east-1") if config.distribution_id else None,
        dead_letters=dead_letters_for(config.dlq_url),
    )


def default_targets(config: PrewarmConfig) -> tuple[str, ...]:
    """EDGEFILL_TARGETS, else the worker's own region (issue 20: a fill in R warms R's
    edges, where R's viewers are) when a client subnet is known for it, else none."""
    if config.targets:
        return config.targets
    region = config.worker_region
    return (region,) if region is not None and region in region_subnets(config) else ()


@lru_cache(maxsize=1)
def runtime() -> PrewarmRuntime:
    """The container's runtime, from the environment on first use (never at import)."""
    return build_runtime(PrewarmConfig.from_env(os.environ))


@dataclass(frozen=True)
class Outcome:
    """What happened to one message, beyond the warm report itself."""

    report: WarmReport
    requeued_tasks: int = 0
    requeued_messages: int = 0
    delay_seconds: int = 0
    given_up: int = 0
    refused: str | None = None  # the reason, when the message went to the DLQ unprocessed


class MetricSink(Protocol):
    def add_metric(self, name: str, unit: MetricUnit, value: float) -> Any: ...


def deadline_for(remaining_ms: int | None, config: PrewarmConfig) -> float | None:
    """When to stop starting tasks, as a ``time.monotonic()`` value, given the time the
    invocation has left: late enough to use it, early enough that requests in flight
    (one request timeout at most) and the re-enqueue finish before Lambda stops us."""
    if remaining_ms is None:
        return None
    remaining = remaining_ms / 1000
    reserve = min(remaining / 4, config.request_timeout + 10)
    return time.monotonic() + remaining - reserve


def prewarm_record(
    body: str,
    rt: PrewarmRuntime | Callable[[], PrewarmRuntime],
    log: Log,
    metrics: MetricSink | None = None,
    message_id: str | None = None,
    jitter: Callable[[], float] = random.random,
    remaining_ms: int | None = None,
) -> Outcome:
    """Process one prewarm message body; raise ``NotProcessed`` when SQS should retry it.

    ``metrics`` (the handler's Powertools ``Metrics``) receives the message's totals;
    per-target metrics are published here as their own EMF blobs. ``remaining_ms`` (the
    invocation's remaining time) bounds the run: tasks not started in time are
    re-enqueued like failed ones rather than lost to a Lambda timeout.
    """
    try:
        return _process(body, rt, log, metrics, message_id, jitter, remaining_ms)
    except NotProcessed:
        if metrics is not None:
            metrics.add_metric("UnprocessedMessages", MetricUnit.Count, 1)
        raise


def _process(
    body: str,
    rt: PrewarmRuntime | Callable[[], PrewarmRuntime],
    log: Log,
    metrics: MetricSink | None,
    message_id: str | None,
    jitter: Callable[[], float],
    remaining_ms: int | None,
) -> Outcome:
    refusal = _Refusal(body, log, metrics, message_id)
    try:
        message = parse_prewarm(body)
    except ValueError as error:
        return refusal.refuse(BAD_MESSAGE, error, rt)
    rt = _built(rt, log)
    config = rt.config
    if message.after_invalidation is not None:
        waiting = _after_invalidation(message, rt, log)
        if waiting is not None:
            return waiting
    targets = message.targets or default_targets(config)
    if not targets:
        reason = (
            "no targets: the message names none, EDGEFILL_TARGETS is empty and the worker's"
            f" region ({config.worker_region or 'AWS_REGION unset'}) has no known client subnet"
        )
        log.error("prewarm message not processed", extra={"messageId": message_id, "error": reason})
        raise NotProcessed(reason)
    encodings = message.encodings or config.encodings
    # Refused as a whole, before any task object exists or any DNS query is sent.
    try:
        if message.host is not None:
            check_host(message.host, allowed_hosts(config))
    except MessageError as error:
        return refusal.refuse(HOST_NOT_ALLOWED, error, rt)
    try:
        check_task_cap(len(message.paths), len(targets), len(encodings))
        check_message_room(message, targets, encodings, message.host or config.viewer_host)
    except MessageError as error:
        return refusal.refuse(TASK_CAP, error, rt)
    plan = WarmPlan(
        paths=message.paths,
        targets=targets,
        encodings=encodings,
        host=message.host or config.viewer_host,
    )
    context = WarmContext.for_config(
        config, rt.resolver, rt.client, deadline=deadline_for(remaining_ms, config)
    )
    report, expansion = warm_message(message, plan, context, max_bytes=config.max_warm_bytes)
    if report.resolution is not None and report.resolution.unreachable:
        reasons = "; ".join(str(e) for e in report.resolution.errors.values())
        log.error("no target resolved", extra={"messageId": message_id, "errors": reasons})
        raise NotProcessed(f"no target could be resolved: {reasons}")
    log_capped(report, config.max_warm_bytes, log, message_id)
    outcome = _requeue(message, plan, report, rt, log, message_id, jitter)
    failure = send_follow_ups(expansion, rt.sqs, config.prewarm_queue_url, log, message_id)
    if failure is not None:  # video: the tree's rest did not reach the queue
        raise NotProcessed(failure)
    summary = _summary(message, plan, outcome, message_id) | expansion_summary(expansion)
    log.info("prewarm summary", extra=summary)
    publish_metrics(report, config)
    if metrics is not None:
        metrics.add_metric("PrewarmMessages", MetricUnit.Count, 1)
        metrics.add_metric("WarmOk", MetricUnit.Count, report.ok)
        metrics.add_metric("WarmFailed", MetricUnit.Count, report.failed)
        metrics.add_metric("RequeuedTasks", MetricUnit.Count, outcome.requeued_tasks)
        metrics.add_metric("GivenUpTasks", MetricUnit.Count, outcome.given_up)
        metrics.add_metric("WarmCapped", MetricUnit.Count, len(report.capped))
    return outcome


def _after_invalidation(message: PrewarmMessage, rt: PrewarmRuntime, log: Log) -> Outcome | None:
    """None to warm now; an Outcome when the message was sent again to wait for its
    invalidation (prewarm_worker/invalidation_wait.py)."""
    config = rt.config
    try:
        decision = wait_for_invalidation(
            message,
            rt.cloudfront,
            config.distribution_id,
            rt.sqs,
            config.prewarm_queue_url,
            config.retry_delay,
            log,
        )
    except WaitFailed as error:
        log.error("prewarm message not processed", extra={"error": str(error)})
        raise NotProcessed(str(error)) from None
    if decision.action == "warm":
        return None
    return Outcome(WarmReport(), requeued_messages=1, delay_seconds=decision.delay)


def _built(rt: PrewarmRuntime | Callable[[], PrewarmRuntime], log: Log) -> PrewarmRuntime:
    """The runtime, built on first use; a configuration error leaves the record for retry."""
    if isinstance(rt, PrewarmRuntime):
        return rt
    try:
        return rt()
    except ConfigError as error:
        log.error(
            "prewarm configuration error", extra={"variable": error.variable, "error": str(error)}
        )
        raise NotProcessed(f"configuration error: {error}") from None


@dataclass(frozen=True)
class _Refusal:
    """How a message refused for good ends (``refuse``)."""

    body: str
    log: Log
    metrics: MetricSink | None
    message_id: str | None

    def refuse(
        self, reason: str, error: ValueError, rt: PrewarmRuntime | Callable[[], PrewarmRuntime]
    ) -> Outcome:
        """A message that breaks the contract or a bound: logged once, naming the field,
        then sent to the DLQ with ``reason``, and the record succeeds. Raises
        ``NotProcessed`` (SQS delivers it again, and its redrive policy moves it after
        ``maxReceiveCount`` receives) when the DLQ does not take it or none is configured."""
        extra = {"messageId": self.message_id, "reason": reason}
        self.log.error("prewarm message rejected", extra={**extra, "error": str(error)})
        if self.metrics is not None:
            self.metrics.add_metric("RejectedMessages", MetricUnit.Count, 1)
        dead_letters = _built(rt, self.log).dead_letters
        if dead_letters is None:
            raise NotProcessed(f"message rejected: {error}")
        try:
            dead_letters.send(self.body, reason, str(error), self.message_id)
        except DeadLetterNotSent as failure:
            self.log.error(
                "prewarm message not processed",
                extra={**extra, "error": f"the DLQ did not take the refused message: {failure}"},
            )
            raise NotProcessed(f"message rejected, not sent to the DLQ: {failure}") from None
        self.log.warning("prewarm message refused; sent to the DLQ", extra=extra)
        if self.metrics is not None:
            self.metrics.add_metric("RefusedMessages", MetricUnit.Count, 1)
        return Outcome(WarmReport(), refused=reason)


def retry_messages(
    failures: Iterable[TaskResult], message: PrewarmMessage, host: str, attempt: int
) -> list[PrewarmMessage]:
    """Prewarm messages covering exactly the failed (path, target, encoding) tuples.

    A v1 message means paths × targets × encodings, so failures are grouped until each
    group is a full cross product: first the paths that failed per (target, encoding),
    then the encodings sharing those paths per target, then the targets sharing both.
    """
    paths_by: dict[tuple[str, str], list[str]] = defaultdict(list)
    for failure in failures:
        task = failure.task
        if task.path not in paths_by[task.target, task.encoding]:
            paths_by[task.target, task.encoding].append(task.path)
    # Tasks finish in any order; the message's own order makes equal path sets equal keys.
    rank = {path: index for index, path in enumerate(message.paths)}
    encodings_by: dict[tuple[str, tuple[str, ...]], list[str]] = defaultdict(list)
    for (target, encoding), failed_paths in paths_by.items():
        ordered = tuple(sorted(failed_paths, key=lambda p: (rank.get(p, len(rank)), p)))
        encodings_by[target, ordered].append(encoding)
    targets_by: dict[tuple[tuple[str, ...], tuple[str, ...]], list[str]] = defaultdict(list)
    for (target, group_paths), encodings in encodings_by.items():
        targets_by[group_paths, tuple(encodings)].append(target)
    # Sized by bytes too: 1,000 long signed URIs are far more than SQS's 1 MiB.
    return [
        retry
        for (paths, encodings), targets in targets_by.items()
        for retry in prewarm_messages(
            paths,
            targets=tuple(targets),
            encodings=encodings,
            host=host,
            source=message.source,
            attempt=attempt,
        )
    ]


def _requeue(
    message: PrewarmMessage,
    plan: WarmPlan,
    report: WarmReport,
    rt: PrewarmRuntime,
    log: Log,
    message_id: str | None,
    jitter: Callable[[], float],
) -> Outcome:
    retryable = [f for f in report.failures if f.retryable]
    permanent = len(report.failures) - len(retryable)
    if not retryable:
        return Outcome(report, given_up=permanent)
    attempt = message.attempt + 1
    config = rt.config
    queue_url = config.prewarm_queue_url
    why_not = None
    if attempt >= config.max_attempts:
        why_not = f"attempt {attempt} would reach EDGEFILL_MAX_ATTEMPTS={config.max_attempts}"
    elif not queue_url or rt.sqs is None:
        why_not = "EDGEFILL_PREWARM_QUEUE_URL is not set"
    if why_not is not None or queue_url is None:
        log.warning(
            "prewarm tasks given up",
            extra={
                "messageId": message_id,
                "reason": why_not,
                "tasks": len(retryable),
                "failures": failures_by_target(retryable),
            },
        )
        return Outcome(report, given_up=len(report.failures))
    retries = retry_messages(retryable, message, plan.host, attempt)
    # Exponential in the attempt, with jitter so a burst of failures does not come back
    # as one burst; SQS delays at most 15 minutes.
    wait = backoff_with_jitter(config.retry_delay, message.attempt, SQS_MAX_DELAY, jitter())
    delay = min(SQS_MAX_DELAY, int(wait))
    failure = send_and_log(
        rt.sqs,
        queue_url,
        [to_json(m) for m in retries],
        log,
        "prewarm message not processed",
        extra={"messageId": message_id},
        field="error",
        prefix="re-enqueueing failed tasks failed: ",
        delay_seconds=delay,
    )
    if failure is not None:
        raise NotProcessed(failure)
    return Outcome(report, len(retryable), len(retries), delay, given_up=permanent)


def _summary(
    message: PrewarmMessage, plan: WarmPlan, outcome: Outcome, message_id: str | None
) -> dict[str, Any]:
    report = outcome.report
    summary = report.summary()
    summary.update(
        {
            "messageId": message_id,
            "attempt": message.attempt,
            "source": message.source,
            "host": plan.host,
            "requeuedTasks": outcome.requeued_tasks,
            "requeuedMessages": outcome.requeued_messages,
            "delaySeconds": outcome.delay_seconds,
            "givenUp": outcome.given_up,
            "failures": failures_by_target(report.failures),
        }
    )
    return summary


def failures_by_target(failures: Iterable[TaskResult]) -> dict[str, dict[str, Any]]:
    """Failed tasks by target: how many, and the first error quoted once, so a target
    that did not resolve is one line, not one line per path and encoding. Bounded by the
    targets of a message (200 at most)."""
    out: dict[str, dict[str, Any]] = {}
    for failure in failures:
        entry = out.setdefault(failure.task.target, {"failed": 0, "error": failure.error})
        entry["failed"] += 1
    return out


def publish_metrics(report: WarmReport, config: PrewarmConfig) -> None:
    """EMF metrics per target (ok, failed, bytes, hits, misses), one blob per dimension
    value. Only targets the configuration knows become a dimension; every other target a
    message names is counted under ``other`` (``metric_target``), so a sender cannot
    create CloudWatch metrics at will."""
    totals_by: dict[str, list[Any]] = {}
    for target, totals in report.targets.items():
        sums = totals_by.setdefault(metric_target(target, config), [0, 0, 0, 0, 0, 0])
        for index, value in enumerate(
            (
                totals.ok,
                totals.failed,
                totals.bytes,
                totals.hits,
                totals.misses,
                totals.pop_mismatches,
            )
        ):
            sums[index] += value
    for dimension, (ok, failed, size, hits, misses, mismatches) in totals_by.items():
        metrics = EphemeralMetrics(namespace=NAMESPACE)
        metrics.add_dimension("service", "prewarm")
        metrics.add_dimension("target", dimension)
        metrics.add_metric("WarmOk", MetricUnit.Count, ok)
        metrics.add_metric("WarmFailed", MetricUnit.Count, failed)
        metrics.add_metric("WarmBytes", MetricUnit.Bytes, size)
        metrics.add_metric("EdgeHits", MetricUnit.Count, hits)
        metrics.add_metric("EdgeMisses", MetricUnit.Count, misses)
        metrics.add_metric("PopMismatches", MetricUnit.Count, mismatches)
        metrics.flush_metrics()
