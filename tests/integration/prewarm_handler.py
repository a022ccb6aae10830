"""What the prewarm handler tests share: the prewarm queue, the handler's log stream, its
runtime wired to the lab edges, SQS events of given bodies, and draining the queue."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from edgefill.lab.pollers import LambdaContext
from prewarm_worker import app, worker
from shared import aws
from tests.integration.prewarm_edges import Lab
from tests.sample_events import load_event


def FakeContext(remaining_ms: int = 60_000) -> LambdaContext:  # noqa: N802
    """The lab's Lambda context for the prewarm function, ``remaining_ms`` from now."""
    return LambdaContext("edgefill-prewarm", timeout=remaining_ms / 1000)


@pytest.fixture
def queue_url(sqs: Any) -> str:
    return str(sqs.create_queue(QueueName="edgefill-prewarm")["QueueUrl"])


@pytest.fixture
def logs(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    """The handler's JSON log lines (its logger holds the stream it was built with)."""
    buffer = io.StringIO()
    monkeypatch.setattr(app.logger.registered_handler, "stream", buffer)
    return buffer


@contextmanager
def handler_runtime(lab: Lab, monkeypatch: pytest.MonkeyPatch, **env: str) -> Iterator[Lab]:
    """The handler's environment set to the lab's plus ``env``, its cached runtime and
    clients rebuilt from it, and cleared again afterwards."""
    for name, value in lab.env(**env).items():
        monkeypatch.setenv(name, value)
    worker.runtime.cache_clear()
    aws.client.cache_clear()
    yield lab
    worker.runtime.cache_clear()
    aws.client.cache_clear()


@pytest.fixture
def worker_env(lab: Lab, queue_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Lab]:
    with handler_runtime(
        lab,
        monkeypatch,
        EDGEFILL_PREWARM_QUEUE_URL=queue_url,
        EDGEFILL_TARGETS="us-east-1",
        EDGEFILL_RETRY_DELAY="1",
        EDGEFILL_MAX_ATTEMPTS="3",
    ) as ready:
        yield ready


def event_with(*bodies: dict[str, Any]) -> dict[str, Any]:
    """The sample SQS batch event, its records replaced by one per body (``m-0``, ...)."""
    event = load_event("prewarm_sqs_batch")
    template = event["Records"][0]
    event["Records"] = [
        {**template, "messageId": f"m-{index}", "body": json.dumps(body)}
        for index, body in enumerate(bodies)
    ]
    return event


def drain(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    """Every message on the queue, removed."""
    bodies: list[dict[str, Any]] = []
    while True:
        got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        if not got.get("Messages"):
            return bodies
        for item in got["Messages"]:
            bodies.append(json.loads(item["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=item["ReceiptHandle"])


def log_lines(*outs: str) -> list[dict[str, Any]]:
    """The JSON lines among ``outs`` (log stream, captured stdout with EMF), parsed."""
    return [json.loads(line) for out in outs for line in out.splitlines() if line.startswith("{")]
