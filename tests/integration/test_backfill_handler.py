"""The Lambda handler: a whole SQS batch through Powertools, partial failures, EMF metrics,
configuration from the environment."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from backfill_worker import app
from backfill_worker.runtime import backfiller
from edgefill.lab.origin import LabOrigin
from shared.aws import client
from shared.config import ConfigError
from tests.integration.backfill_world import (
    BUCKET,
    FakeLambdaContext,
    assert_nothing_left_behind,
    backfill_env,
    keys,
    stored,
)
from tests.sample_events import load_event


@pytest.fixture
def worker_env(
    s3: Any, sqs: Any, origin: LabOrigin, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """The handler's environment pointing at moto and the origin; caches rebuilt around."""
    s3.create_bucket(Bucket=BUCKET)
    queue = sqs.create_queue(QueueName="edgefill-prewarm")["QueueUrl"]
    for name, value in backfill_env(origin, EDGEFILL_PREWARM_QUEUE_URL=queue).items():
        monkeypatch.setenv(name, value)
    backfiller.cache_clear()
    client.cache_clear()  # boto3 clients bound to an earlier moto endpoint
    yield str(queue)
    backfiller.cache_clear()
    client.cache_clear()
    assert_nothing_left_behind(s3)


def test_batch_reports_only_the_transient_failure(
    worker_env: str, s3: Any, sqs: Any, origin: LabOrigin, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a batch: a good miss, a traversal attempt, a miss whose origin answers 503,
    # and a body that is not JSON
    origin.put("/img/café.jpg", b"jpeg", content_type="image/jpeg")
    origin.put("/video/intro.mp4", b"mp4")
    origin.fault("/video/intro.mp4", status=503)
    event = load_event("backfill_sqs_batch")
    # When the handler runs
    response = app.handler(event, FakeLambdaContext())
    # Then only the 503 record is retried; the good one is copied and announced
    assert response == {
        "batchItemFailures": [{"itemIdentifier": "0b9c2f0e-0000-4000-8000-000000000003"}]
    }
    assert keys(s3) == ["img/café.jpg"]
    assert stored(s3, "img/café.jpg") == b"jpeg"
    assert origin.counts("/video/intro.mp4").other == 1
    assert {r.path for r in origin.all_requests()} == {"/img/café.jpg", "/video/intro.mp4"}
    messages = sqs.receive_message(QueueUrl=worker_env, MaxNumberOfMessages=10)["Messages"]
    assert [json.loads(m["Body"])["paths"] for m in messages] == [["/img/caf%C3%A9.jpg"]]
    # And the logs name every reason while EMF carries the counts
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]
    reasons = {line.get("reason") for line in lines if "reason" in line}
    assert {"bad_key", "bad_message", "origin"} <= reasons
    emf = [line for line in lines if "_aws" in line]
    names = {
        m["Name"] for line in emf for d in line["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]
    }
    assert {"ObjectsCopied", "BytesCopied", "CopySeconds", "Skipped", "Failed"} <= names


@pytest.mark.filterwarnings("ignore:No application metrics")
def test_bad_configuration_fails_the_whole_batch(
    worker_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A misconfigured function must not eat messages: every record stays for retry
    monkeypatch.setenv("EDGEFILL_ORIGIN_URL", "ftp://origin.example.com")
    with pytest.raises(ConfigError, match="EDGEFILL_ORIGIN_URL"):
        app.handler(load_event("backfill_sqs_batch"), FakeLambdaContext())


def test_given_a_bucket_in_another_region_when_the_worker_starts_then_s3_is_asked_there(
    worker_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an existing bucket in eu-west-1 (EDGEFILL_BUCKET_REGION)
    monkeypatch.setenv("EDGEFILL_BUCKET_REGION", "eu-west-1")
    backfiller.cache_clear()
    # When the container builds its backfiller
    store = backfiller().store
    # Then its S3 client signs for the bucket's region, not the worker's
    assert store.s3.meta.region_name == "eu-west-1"
    backfiller.cache_clear()
