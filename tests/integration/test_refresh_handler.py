"""The refresh outcomes through the real handler (``backfill_worker/app.py``) against moto:
one SQS batch of the sweep's refreshes where the origin took one page down (withdrawn),
gave another a new Cache-Control (updated, by a 304) and failed the third (kept in
revalidation). Configuration comes from the environment, as in Lambda."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from backfill_worker import app
from backfill_worker.freshness.due_index import DUE_PREFIX, DueIndex
from backfill_worker.freshness.invalidation_journal import WINDOWS_PREFIX
from backfill_worker.freshness.sweep import RefreshQueue, sweep
from backfill_worker.runtime import backfiller
from edgefill.lab.origin import LabOrigin
from edgefill.lab.pollers import sqs_record
from shared.aws import client
from shared.messages import InvalidationsDue, to_json
from shared.object_store import ObjectStore
from tests.integration.backfill_world import (
    BUCKET,
    FakeLambdaContext,
    assert_nothing_left_behind,
    backfill_env,
    message,
    stored,
)
from tests.integration.test_refresh import create_distribution

PAGES = {"takedown": "/news/takedown.html", "retuned": "/news/retuned.html", "down": "/down.html"}


class Log:
    def info(self, msg: str, extra: Any = None) -> None: ...

    warning = error = info


@pytest.fixture
def stack(
    moto: str, s3: Any, sqs: Any, origin: LabOrigin, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, Any]]:
    """The worker's environment: moto's S3, SQS and CloudFront, and the lab origin."""
    s3.create_bucket(Bucket=BUCKET)
    cloudfront = boto3.client("cloudfront", region_name="us-east-1", endpoint_url=moto)
    distribution = create_distribution(cloudfront)
    prewarm = sqs.create_queue(QueueName="edgefill-prewarm")["QueueUrl"]
    queue = sqs.create_queue(QueueName="edgefill-backfill")["QueueUrl"]
    env = backfill_env(
        origin,
        EDGEFILL_PREWARM_QUEUE_URL=prewarm,
        EDGEFILL_BACKFILL_QUEUE_URL=queue,
        EDGEFILL_DISTRIBUTION_ID=distribution,
        EDGEFILL_MIN_REVALIDATE="1",
    )
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    backfiller.cache_clear()
    client.cache_clear()
    yield {
        "cloudfront": cloudfront,
        "distribution": distribution,
        "prewarm": prewarm,
        "queue": queue,
        "reminders": sqs.create_queue(QueueName="reminders")["QueueUrl"],
    }
    backfiller.cache_clear()
    client.cache_clear()
    assert_nothing_left_behind(s3)


def batch(sqs: Any, queue: str, bodies: list[str]) -> dict[str, Any]:
    """The SQS event Lambda would hand the function for ``bodies`` sent to ``queue``."""
    for body in bodies:
        sqs.send_message(QueueUrl=queue, MessageBody=body)
    records = []
    while len(records) < len(bodies):
        got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, AttributeNames=["All"])
        records += [
            sqs_record(m, "arn:aws:sqs:us-east-1:123456789012:q", "us-east-1")
            for m in got["Messages"]
        ]
    return {"Records": records}


def drain(sqs: Any, queue: str) -> list[dict[str, Any]]:
    out = []
    while got := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages"):
        for item in got:
            out.append(json.loads(item["Body"]))
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=item["ReceiptHandle"])
    return out


def test_withdrawn_updated_and_kept_through_the_handler(
    stack: dict[str, Any],
    s3: Any,
    sqs: Any,
    origin: LabOrigin,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given three pages copied by the handler, each fresh for a minute
    for path in PAGES.values():
        origin.put(
            path,
            f"<p>{path}</p>".encode(),
            content_type="text/html",
            headers={"Cache-Control": "max-age=60"},
        )
    fills = [message(LabOrigin.uri(path)) for path in PAGES.values()]
    assert app.handler(batch(sqs, stack["queue"], fills), FakeLambdaContext()) == {
        "batchItemFailures": []
    }
    drain(sqs, stack["prewarm"])
    # And, once they are due, the sweep's refreshes
    index = DueIndex(ObjectStore(s3, BUCKET))
    later = datetime.now(UTC) + timedelta(seconds=61)
    report = sweep(index, RefreshQueue(sqs, stack["queue"], ""), later, lambda: 900.0, Log())
    assert report.sent == 3
    refreshes = []
    while len(refreshes) < 3:
        got = sqs.receive_message(
            QueueUrl=stack["queue"], MaxNumberOfMessages=10, AttributeNames=["All"]
        )
        refreshes += [
            sqs_record(m, "arn:aws:sqs:us-east-1:123456789012:q", "us-east-1")
            for m in got["Messages"]
        ]
    # When the origin takes one down (403), gives one a day (a 304 with a new
    # Cache-Control) and fails the third (503), and the handler runs the batch
    origin.fault(PAGES["takedown"], status=403)
    retuned = PAGES["retuned"]
    origin.put(
        retuned,
        f"<p>{retuned}</p>".encode(),
        content_type="text/html",
        headers={"Cache-Control": "max-age=86400"},
    )
    origin.fault(PAGES["down"], status=503)
    capsys.readouterr()
    response = app.handler({"Records": refreshes}, FakeLambdaContext())
    # Then no record is retried: each ended in its outcome
    assert response == {"batchItemFailures": []}
    lines = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")
    ]
    refreshed_lines = [r for r in caplog.records if r.getMessage() == "refresh"]
    outcomes = {r.key: r.outcome for r in refreshed_lines}  # type: ignore[attr-defined]
    assert outcomes == {
        "news/takedown.html": "withdrawn",
        "news/retuned.html": "updated",
        "down.html": "kept",
    }
    # And the window's reminder (the one invalidation of the batch, issue 19) comes. A
    # batch that runs across a window's edge (real time, 60 s windows) made two windows:
    # the first reminder sends every path pending, the second finds none.
    windows = sorted(
        o["Key"].rpartition("/")[2]
        for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=WINDOWS_PREFIX)["Contents"]
    )
    assert 1 <= len(windows) <= 2
    for window in windows:
        reminder = batch(sqs, stack["reminders"], [to_json(InvalidationsDue(window=window))])
        assert app.handler(reminder, FakeLambdaContext()) == {"batchItemFailures": []}
    withdrawn = next(r for r in refreshed_lines if r.outcome == "withdrawn")  # type: ignore[attr-defined]
    assert (withdrawn.reason, withdrawn.directive) == ("origin", "HTTP 403")  # type: ignore[attr-defined]
    # And the bucket: the takedown gone, the retuned page serving its new Cache-Control,
    # the failing one still served
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix="news/takedown")["KeyCount"] == 0
    assert s3.head_object(Bucket=BUCKET, Key="news/retuned.html")["CacheControl"] == "max-age=86400"
    assert stored(s3, "down.html") == b"<p>/down.html</p>"
    # And one invalidation for both changed paths; a warm after it for the updated one only
    cloudfront, distribution = stack["cloudfront"], stack["distribution"]
    (item,) = cloudfront.list_invalidations(DistributionId=distribution)["InvalidationList"][
        "Items"
    ]
    detail = cloudfront.get_invalidation(DistributionId=distribution, Id=item["Id"])
    paths = detail["Invalidation"]["InvalidationBatch"]["Paths"]["Items"]
    assert sorted(paths) == ["/news/retuned.html", "/news/takedown.html"]
    (prewarm,) = drain(sqs, stack["prewarm"])
    assert prewarm["paths"] == ["/news/retuned.html"] and prewarm["afterInvalidation"] == item["Id"]
    # And the due index: the retuned page due in a day, the failing one retried soon,
    # the takedown's entries gone
    bodies = [
        json.loads(s3.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read())
        for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=DUE_PREFIX)["Contents"]
    ]
    by_key = {body["key"]: body for body in bodies}
    assert set(by_key) == {"news/retuned.html", "down.html"}
    assert by_key["news/retuned.html"]["lifetime"] >= 86_000
    assert (by_key["down.html"]["rule"], by_key["down.html"]["failures"]) == ("retry", 1)
    # And the metrics carry the outcomes
    emf = [line for line in lines if "_aws" in line]
    refreshed = {line.get("reason") for line in emf if "Refreshed" in line}
    assert {"withdrawn", "updated", "kept"} <= refreshed
