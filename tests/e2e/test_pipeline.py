"""Viewers through the lab: failover, one backfill copy, prewarm hits, DLQ and redrive."""

from __future__ import annotations

import concurrent.futures
import hashlib
import itertools
import time
import uuid
from collections.abc import Callable
from typing import Any

from edgefill.cli import main as edgefill
from edgefill.lab import catalog
from edgefill.lab.lab import Lab, queue_depth
from edgefill.lab.origin import LabOrigin
from shared.messages import ENCODINGS


def wait_for(predicate: Callable[[], Any], timeout: float = 40.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout}s")
        time.sleep(0.1)


def in_bucket(lab: Lab, path: str) -> bool:
    assert lab.aws is not None
    listed = lab.aws.client("s3").list_objects_v2(Bucket=lab.settings.bucket, Prefix=path[1:])
    return any(item["Key"] == path[1:] for item in listed.get("Contents", []))


def bucket_sha256(lab: Lab, path: str) -> str:
    assert lab.aws is not None
    body = lab.aws.client("s3").get_object(Bucket=lab.settings.bucket, Key=path[1:])["Body"]
    return hashlib.sha256(body.read()).hexdigest()


def unique(name: str) -> str:
    return f"/e2e/{uuid.uuid4().hex[:8]}/{name}"


def test_a_burst_of_50_viewers_is_served_by_failover_and_backfilled_once(lab: Lab) -> None:
    # Given three objects only the full origin has (one with a non-ASCII name)
    paths = [unique("東京 map.png"), unique("app.css"), unique("data.json")]
    for index, path in enumerate(paths):
        lab.origin.put_generated(path, 150_000 + index * 1000, seed=index, content_type="image/png")
    # When 50 viewers spread over the four POPs ask for them at once
    jobs = list(
        zip(
            itertools.islice(itertools.cycle(lab.pops), 50),
            itertools.islice(itertools.cycle(paths), 50),
            strict=True,
        )
    )
    with concurrent.futures.ThreadPoolExecutor(50) as pool:
        responses = list(
            pool.map(lambda job: (job[1], lab.viewer_get(job[0], LabOrigin.uri(job[1]))), jobs)
        )
    # Then every viewer got the origin's exact bytes
    for path, response in responses:
        assert response.status == 200 and response.complete
        assert hashlib.sha256(response.body).hexdigest() == lab.origin.sha256(path)
        assert response.headers["x-amz-cf-pop"] in lab.pops
    # And each object reaches the bucket, byte-identical, fetched once by the backfill
    wait_for(lambda: all(in_bucket(lab, path) for path in paths), what="objects in the bucket")
    lab.wait_idle()
    for path in paths:
        assert bucket_sha256(lab, path) == lab.origin.sha256(path)
        assert catalog.worker_body_gets(lab.origin, path) == 1
        # each POP collapsed its concurrent misses into one failover fetch
        assert catalog.pop_body_gets(lab.origin, path) <= len(lab.pops)
    # And nothing is left behind: no lease, no multipart upload
    assert lab.aws is not None
    s3 = lab.aws.client("s3")
    leases = s3.list_objects_v2(Bucket=lab.settings.bucket, Prefix="_edgefill/leases/")
    assert leases["KeyCount"] == 0
    assert s3.list_multipart_uploads(Bucket=lab.settings.bucket).get("Uploads", []) == []


def test_after_the_backfill_every_pop_answers_hit_for_every_variant(lab: Lab) -> None:
    # Given an object first missed at one POP
    path = unique("hero.jpg")
    lab.origin.put_generated(path, 80_000, seed=42, content_type="image/jpeg")
    first = lab.viewer_get("NRT20-P2", LabOrigin.uri(path), "gzip")
    assert first.status == 200 and first.x_cache == "Miss from cloudfront"
    # When the backfill and the prewarm it queues have run
    wait_for(lambda: in_bucket(lab, path), what="backfill")
    host = lab.settings.viewer_host
    wait_for(
        lambda: all(
            pop.cached(host, LabOrigin.uri(path), enc)
            for pop in lab.pops.values()
            for enc in ENCODINGS
        ),
        what="prewarm of every variant",
    )
    lab.wait_idle()
    # Then each POP answers Hit for each of CloudFront's four encodings, with its own code
    for code in lab.pops:
        for encoding in ENCODINGS:
            response = lab.viewer_get(code, LabOrigin.uri(path), encoding)
            assert (response.status, response.x_cache) == (200, "Hit from cloudfront"), (
                code,
                encoding,
            )
            assert response.headers["x-amz-cf-pop"] == code
            assert hashlib.sha256(response.body).hexdigest() == lab.origin.sha256(path)


def test_an_origin_5xx_ends_in_the_dlq_and_a_redrive_recovers_it(lab: Lab) -> None:
    assert lab.aws is not None
    sqs = lab.aws.client("sqs")
    queue, dlq = lab.aws.queue("BackfillQueue"), lab.aws.queue("BackfillDLQ")
    # Given a full origin that answers 503 for one object
    path = unique("broken.bin")
    lab.origin.put_generated(path, 10_000, seed=5)
    lab.origin.fault(path, status=503)
    # When a viewer misses it
    response = lab.viewer_get("FRA56-P1", LabOrigin.uri(path))
    # Then the viewer sees the 503 (not cached) and the backfill lands in the DLQ after
    # maxReceiveCount tries
    assert response.status == 503 and response.x_cache == "Error from cloudfront"
    assert not lab.pop("FRA56-P1").cached(lab.settings.viewer_host, LabOrigin.uri(path), "identity")
    wait_for(lambda: queue_depth(sqs, dlq.url) == 1, timeout=60, what="message in the DLQ")
    assert not in_bucket(lab, path)
    tries = [
        r
        for r in lab.origin.counts(path).requests
        if r.header("User-Agent") != catalog.CLOUDFRONT_USER_AGENT
    ]
    # one invocation per receive (SQS counted them), each asking the origin at least once
    assert max(lab.pollers["backfill"].stats.receive_counts.values()) == queue.max_receive_count
    assert len(tries) >= queue.max_receive_count
    # When the origin recovers and the operator redrives
    lab.origin.clear_fault(path)
    code = edgefill(
        [
            "redrive",
            "--queue",
            "backfill",
            "--endpoint-url",
            lab.aws.endpoint_url,
            "--backfill-queue-url",
            queue.url,
            "--backfill-dlq-url",
            dlq.url,
        ]
    )
    # Then the object arrives and the DLQ is empty
    assert code == 0
    wait_for(lambda: in_bucket(lab, path), what="object after the redrive")
    lab.wait_idle()
    assert bucket_sha256(lab, path) == lab.origin.sha256(path)
    assert queue_depth(sqs, dlq.url) == 0
