"""Refresh mode against moto and the lab origin (with its conditional answers): unchanged,
replaced, deleted, transient, single-flight, concurrent writers, invalidation after."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import boto3
import pytest

from backfill_worker.flight.outcome import TransientFailure
from backfill_worker.freshness.due_index import DUE_PREFIX
from backfill_worker.record import Backfiller
from edgefill.lab.origin import LabOrigin
from shared.object_store import ObjectStore, StoredCopy
from tests.integration.backfill_world import BUCKET, make_backfiller, message, stored

PATH = "/news/index.html"
URI = "/news/index.html"
KEY = "news/index.html"


def create_distribution(cloudfront: Any) -> str:
    """A distribution in moto, so CreateInvalidation has something to act on."""
    response = cloudfront.create_distribution(
        DistributionConfig={
            "CallerReference": "edgefill-test",
            "Comment": "",
            "Enabled": True,
            "Origins": {
                "Quantity": 1,
                "Items": [
                    {
                        "Id": "full",
                        "DomainName": "origin.example.com",
                        "CustomOriginConfig": {
                            "HTTPPort": 80,
                            "HTTPSPort": 443,
                            "OriginProtocolPolicy": "https-only",
                        },
                    }
                ],
            },
            "DefaultCacheBehavior": {
                "TargetOriginId": "full",
                "ViewerProtocolPolicy": "allow-all",
                "CachePolicyId": "658327ea-f89d-4fab-a63d-7e88639e58f6",
            },
        }
    )
    return str(response["Distribution"]["Id"])


@pytest.fixture
def world(moto: str, s3: Any, sqs: Any, origin: LabOrigin) -> dict[str, Any]:
    s3.create_bucket(Bucket=BUCKET)
    cloudfront = boto3.client("cloudfront", region_name="us-east-1", endpoint_url=moto)
    distribution = create_distribution(cloudfront)
    prewarm = sqs.create_queue(QueueName="prewarm")["QueueUrl"]
    worker = make_backfiller(
        s3,
        origin,
        sqs,
        EDGEFILL_PREWARM_QUEUE_URL=prewarm,
        EDGEFILL_DISTRIBUTION_ID=distribution,
        EDGEFILL_MIN_REVALIDATE="1",  # the tests read the origin's lifetimes as they are
    )
    worker.copies = ObjectStore(s3, BUCKET)
    worker.cloudfront = cloudfront
    return {
        "worker": worker,
        "cloudfront": cloudfront,
        "distribution": distribution,
        "prewarm": prewarm,
    }


def refresh(worker: Backfiller, uri: str = URI) -> Any:
    return worker.backfill(message(uri, mode="refresh"))


def copied(world: dict[str, Any], origin: LabOrigin, body: bytes = b"<h1>v1</h1>") -> None:
    """Given: the origin serves ``body`` and the bucket holds its copy (a fill)."""
    origin.put(PATH, body, content_type="text/html", headers={"Cache-Control": "max-age=60"})
    assert world["worker"].backfill(message(URI)).status == "copied"
    world["worker"].pending.take()  # a fill invalidates nothing
    drain(world)
    origin.reset_counts()


def drain(world: dict[str, Any]) -> list[dict[str, Any]]:
    sqs = world["worker"].sqs
    out: list[dict[str, Any]] = []
    while True:
        got = sqs.receive_message(QueueUrl=world["prewarm"], MaxNumberOfMessages=10)
        if not got.get("Messages"):
            return out
        for item in got["Messages"]:
            out.append(json.loads(item["Body"]))
            sqs.delete_message(QueueUrl=world["prewarm"], ReceiptHandle=item["ReceiptHandle"])


def invalidations(world: dict[str, Any]) -> list[list[str]]:
    cloudfront, distribution = world["cloudfront"], world["distribution"]
    items = cloudfront.list_invalidations(DistributionId=distribution)["InvalidationList"]
    found = []
    for item in items.get("Items", []):
        detail = cloudfront.get_invalidation(DistributionId=distribution, Id=item["Id"])
        found.append(detail["Invalidation"]["InvalidationBatch"]["Paths"]["Items"])
    return found


def entries(s3: Any) -> list[str]:
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=DUE_PREFIX).get("Contents", [])
    return [item["Key"] for item in listed]


def test_every_copy_gets_fetched_at_and_a_due_entry(
    world: dict[str, Any], s3: Any, origin: LabOrigin
) -> None:
    copied(world, origin)
    head = s3.head_object(Bucket=BUCKET, Key=KEY)
    assert head["Metadata"]["fetched-at"].endswith("Z")
    (entry,) = entries(s3)
    body = json.loads(s3.get_object(Bucket=BUCKET, Key=entry)["Body"].read())
    assert body["key"] == KEY and body["lifetime"] == 60 and body["checkedAt"] is None


def test_unchanged_304_rewrites_nothing_and_records_checked_at(
    world: dict[str, Any], s3: Any, origin: LabOrigin
) -> None:
    # The copy and its refresh in the same second of the worker's clock, so the refresh's
    # due entry replaces the copy's (across a second boundary the copy's would stay for
    # the sweep to spend, and a busy machine crosses one often)
    now = time.time()
    world["worker"].wall_clock = lambda: now
    copied(world, origin)
    before = s3.head_object(Bucket=BUCKET, Key=KEY)
    # When a refresh runs and the origin has not changed
    outcome = refresh(world["worker"])
    # Then it asked conditionally, got a 304, and moved no body
    assert (outcome.status, outcome.reason) == ("refreshed", "unchanged")
    (request,) = origin.counts(PATH).requests
    assert request.header("If-None-Match") == origin.etag(PATH)
    assert request.header("If-Modified-Since") == before["Metadata"]["origin-last-modified"]
    assert origin.counts(PATH).body_gets == 0
    # And the object is the same version; checked-at is in its new due entry
    after = s3.head_object(Bucket=BUCKET, Key=KEY)
    assert (after["ETag"], after["LastModified"]) == (before["ETag"], before["LastModified"])
    (entry,) = entries(s3)
    assert json.loads(s3.get_object(Bucket=BUCKET, Key=entry)["Body"].read())["checkedAt"]
    # And nothing is invalidated or warmed
    world["worker"].flush_invalidations()
    assert invalidations(world) == [] and drain(world) == []


def test_changed_origin_replaces_the_copy_invalidates_once_and_warms_after(
    world: dict[str, Any], s3: Any, origin: LabOrigin
) -> None:
    copied(world, origin)
    old_fetched = s3.head_object(Bucket=BUCKET, Key=KEY)["Metadata"]["fetched-at"]
    # Given the origin now serves a new version of two pages
    origin.put(PATH, b"<h1>v2, longer</h1>", content_type="text/html")
    origin.put("/a b.html", b"a1")
    assert world["worker"].backfill(message("/a%20b.html")).status == "copied"
    world["worker"].pending.take()
    drain(world)
    origin.put("/a b.html", b"a2")
    # When both are refreshed in one invocation
    assert refresh(world["worker"]).reason == "replaced"
    assert refresh(world["worker"], "/a%20b.html").reason == "replaced"
    world["worker"].flush_invalidations()
    # Then the bucket holds the new bytes with their own validators
    assert stored(s3, KEY) == b"<h1>v2, longer</h1>"
    head = s3.head_object(Bucket=BUCKET, Key=KEY)
    assert head["Metadata"]["origin-etag"] == origin.etag(PATH)
    assert head["Metadata"]["fetched-at"] >= old_fetched
    # And one CreateInvalidation carried both viewer URIs, percent-encoded
    assert [sorted(paths) for paths in invalidations(world)] == [["/a%20b.html", URI]]
    # And one prewarm message waits for that invalidation
    (prewarm,) = drain(world)
    assert sorted(prewarm["paths"]) == ["/a%20b.html", URI]
    assert prewarm["afterInvalidation"] and prewarm["source"] == "refresh"


@pytest.mark.parametrize("status", [404, 410])
def test_gone_at_the_origin_deletes_the_copy_and_invalidates_without_warming(
    world: dict[str, Any], s3: Any, origin: LabOrigin, status: int
) -> None:
    copied(world, origin)
    origin.fault(PATH, status=status)
    assert refresh(world["worker"]).reason == "deleted"
    world["worker"].flush_invalidations()
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix=KEY)["KeyCount"] == 0
    assert invalidations(world) == [[URI]]
    assert drain(world) == []


def test_a_transient_origin_failure_keeps_the_copy_for_a_retry(
    world: dict[str, Any], s3: Any, origin: LabOrigin
) -> None:
    copied(world, origin)
    origin.fault(PATH, status=503)
    with pytest.raises(TransientFailure):
        refresh(world["worker"])
    assert stored(s3, KEY) == b"<h1>v1</h1>"
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix="_edgefill/leases/")["KeyCount"] == 0


def test_a_missing_copy_is_filled(world: dict[str, Any], s3: Any, origin: LabOrigin) -> None:
    origin.put(PATH, b"fresh")
    assert (refresh(world["worker"]).status, stored(s3, KEY)) == ("copied", b"fresh")


def test_an_object_edgefill_did_not_write_is_left_alone(
    world: dict[str, Any], s3: Any, origin: LabOrigin
) -> None:
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"uploaded by hand")
    origin.put(PATH, b"origin")
    outcome = refresh(world["worker"])
    assert (outcome.status, outcome.reason) == ("skipped", "foreign")
    assert stored(s3, KEY) == b"uploaded by hand"
    assert origin.counts(PATH).requests == ()


def test_a_concurrent_writer_is_never_clobbered(
    world: dict[str, Any], s3: Any, origin: LabOrigin
) -> None:
    copied(world, origin)
    origin.put(PATH, b"v2")
    worker: Backfiller = world["worker"]
    copies = worker.copies
    assert copies is not None
    read = copies.head(KEY)
    assert read is not None
    # Given another writer replaced the copy after our HEAD
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"their version", Metadata=dict(read.metadata))
    stale = StoredCopy(read.etag, read.metadata, read.cache_control, read.expires, read.size)
    refresh_ = _refresh_of(worker)
    # When our replace lands / Then IfMatch refuses it and their version stays
    url = worker.origin.url_for(URI)
    assert refresh_.revalidate(KEY, url, worker.plan(None), stale).status == "changed"
    assert stored(s3, KEY) == b"their version"
    # And a delete conditional on the stale ETag refuses too
    origin.fault(PATH, status=404)
    assert refresh_.revalidate(KEY, url, worker.plan(None), stale).status == "changed"
    assert stored(s3, KEY) == b"their version"


def test_four_concurrent_refreshes_of_a_changed_object_cost_one_body(
    world: dict[str, Any], s3: Any, origin: LabOrigin
) -> None:
    copied(world, origin)
    # Given a changed object that takes a while to arrive
    origin.put(PATH, b"x" * 400_000, content_type="text/html")
    origin.fault(PATH, bandwidth=400_000, latency=0.3)
    outcomes: list[Any] = []
    start = threading.Barrier(4)

    def one() -> None:
        start.wait()
        outcomes.append(refresh(world["worker"]))

    threads = [threading.Thread(target=one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    # Then one replaced it, the others found the lease taken, the origin sent one body
    assert sorted(o.reason for o in outcomes) == ["leased", "leased", "leased", "replaced"]
    assert origin.counts(PATH).body_gets == 1
    assert len(stored(s3, KEY)) == 400_000


def test_without_a_distribution_nothing_is_invalidated_and_the_log_says_why(
    world: dict[str, Any], s3: Any, origin: LabOrigin, monkeypatch: pytest.MonkeyPatch
) -> None:
    copied(world, origin)
    worker: Backfiller = world["worker"]
    worker.cloudfront = None
    warnings: list[str] = []
    monkeypatch.setattr(worker.logger, "warning", lambda msg, **_: warnings.append(msg))
    origin.put(PATH, b"v2")
    assert refresh(worker).reason == "replaced"
    worker.flush_invalidations()
    assert invalidations(world) == [] and drain(world) == []
    assert any("edges keep the old copy until their TTL" in line for line in warnings)


def _refresh_of(worker: Backfiller) -> Any:
    from backfill_worker.freshness.revalidation import Revalidation

    assert worker.copies is not None
    return Revalidation(worker.store, worker.copies, worker.origin)


def test_a_403_on_refresh_withdraws_the_copy_and_remembers_the_path(
    world: dict[str, Any], s3: Any, origin: LabOrigin
) -> None:
    copied(world, origin)
    # When the origin now refuses the page (a takedown)
    origin.fault(PATH, status=403)
    outcome = refresh(world["worker"])
    world["worker"].flush_invalidations()
    # Then the copy is gone and invalidated (not warmed)
    assert (outcome.status, outcome.reason) == ("refreshed", "withdrawn")
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix=KEY)["KeyCount"] == 0
    assert invalidations(world) == [[URI]] and drain(world) == []
    # And the next viewer miss does not copy it back at once (a missing marker)
    origin.clear_fault(PATH)
    assert world["worker"].backfill(message(URI)).reason == "missing"
