"""A refresh whose replacing copy is longer than one invocation, against moto in server
mode and the lab origin: it hands over and resumes exactly like a fill (continuations
keep ``mode: "refresh"``), completes with ``IfMatch`` on the ETag read when the refresh
began, and ends ``replaced`` with its invalidation and warm-after. Between invocations a
concurrent writer is never clobbered, an origin that changes again is copied afresh
(never a mix), and a forged continuation is a no-op. Every test ends with no multipart
upload and no lease left."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest

from backfill_worker.flight.lease import lease_key
from backfill_worker.flight.outcome import TransientFailure
from backfill_worker.record import Backfiller
from edgefill.lab.origin import LabOrigin
from shared.object_store import ObjectStore
from tests.integration.backfill_world import (
    BUCKET,
    MIB,
    FakeLambdaContext,
    assert_each_byte_fetched_about_once,
    assert_nothing_left_behind,
    assert_only_unsaved_bytes_fetched,
    message,
    sha256,
    stored,
)
from tests.integration.test_backfill_resume import (
    INVOCATION,
    RATE,
    SIZE,
    lease_body,
    next_continuation,
    paced_object,
    run_chain,
    worker_for,
)
from tests.integration.test_refresh import create_distribution, invalidations

URI = "/v/premiere.mp4"
KEY = "v/premiere.mp4"


@pytest.fixture
def world(moto: str, s3: Any, sqs: Any, origin: LabOrigin) -> Iterator[dict[str, Any]]:
    """A worker that hands over to its own queue, invalidates a moto distribution and
    warms after; the bucket already holds an edgefill copy of version 1 of ``URI``."""
    s3.create_bucket(Bucket=BUCKET)
    cloudfront = boto3.client("cloudfront", region_name="us-east-1", endpoint_url=moto)
    distribution = create_distribution(cloudfront)
    queue = str(sqs.create_queue(QueueName="edgefill-backfill")["QueueUrl"])
    prewarm = str(sqs.create_queue(QueueName="prewarm")["QueueUrl"])
    worker = worker_for(
        s3,
        origin,
        sqs,
        queue,
        EDGEFILL_PREWARM_QUEUE_URL=prewarm,
        EDGEFILL_DISTRIBUTION_ID=distribution,
    )
    worker.copies = ObjectStore(s3, BUCKET)
    worker.cloudfront = cloudfront
    world = {
        "worker": worker,
        "queue": queue,
        "prewarm": prewarm,
        "cloudfront": cloudfront,
        "distribution": distribution,
    }
    # The copy of version 1, made in one invocation (an unpaced origin)
    origin.put_generated(URI, SIZE, seed=1)
    assert worker.backfill(message(URI), FakeLambdaContext(300)).status == "copied"
    drain(sqs, prewarm)
    origin.reset_counts()
    yield world
    assert_nothing_left_behind(s3)


def drain(sqs: Any, queue: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while True:
        got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)
        if not got.get("Messages"):
            return out
        for item in got["Messages"]:
            out.append(json.loads(item["Body"]))
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=item["ReceiptHandle"])


@pytest.fixture
def completions(s3: Any) -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """``completions()``: the parameters of every CompleteMultipartUpload ``s3`` sends from
    then on, until the test ends (the client is shared: the recording stops with it)."""
    event = "provide-client-params.s3.CompleteMultipartUpload"
    handlers: list[Callable[..., None]] = []

    def start() -> list[dict[str, Any]]:
        seen: list[dict[str, Any]] = []

        def record(params: dict[str, Any], **_: Any) -> None:
            seen.append(dict(params))

        s3.meta.events.register(event, record)
        handlers.append(record)
        return seen

    yield start
    for handler in handlers:
        s3.meta.events.unregister(event, handler)


def refresh(world: dict[str, Any], sqs: Any, body: str | None = None) -> Any:
    """Run a refresh (or ``body``) and every continuation it hands over to."""
    worker: Backfiller = world["worker"]
    return run_chain(worker, sqs, world["queue"], body or message(URI, mode="refresh"))


def first_invocation(world: dict[str, Any], sqs: Any) -> str:
    """A refresh's first invocation, which hands over; the continuation's body."""
    outcome = world["worker"].backfill(message(URI, mode="refresh"), FakeLambdaContext(INVOCATION))
    assert (outcome.status, outcome.reason) == ("handed_over", "handed_over")
    return next_continuation(sqs, world["queue"])


# ---------------------------------------------------------------- the chain


def test_a_replace_longer_than_an_invocation_resumes_and_ends_replaced(
    world: dict[str, Any],
    s3: Any,
    sqs: Any,
    origin: LabOrigin,
    completions: Callable[[], list[dict[str, Any]]],
) -> None:
    # Given the copy of version 1, and a version 2 at a paced origin that takes several
    # invocations to copy
    old = s3.head_object(Bucket=BUCKET, Key=KEY)
    new = paced_object(origin, URI, seed=2)
    completed = completions()
    # When the copy is refreshed and each continuation processed as it arrives
    outcomes, continuations = refresh(world, sqs)
    # Then it took several invocations and ended replaced
    assert [o.status for o in outcomes[:-1]] == ["handed_over"] * (len(outcomes) - 1)
    assert (outcomes[-1].status, outcomes[-1].reason) == ("copied", "replaced")
    assert len(outcomes) >= 2, outcomes
    # And every continuation kept the refresh mode, with the next hop and a token
    assert [c["mode"] for c in continuations] == ["refresh"] * len(continuations)
    assert [c["hop"] for c in continuations] == list(range(1, len(outcomes)))
    # And the bucket holds version 2, byte for byte, with its own validators
    assert sha256(stored(s3, KEY)) == sha256(new)
    head = s3.head_object(Bucket=BUCKET, Key=KEY)
    assert head["Metadata"]["origin-etag"] == origin.etag(URI)
    # And the one completion was conditional on the copy read when the refresh began
    assert [(c["Key"], c.get("IfMatch"), c.get("IfNoneMatch")) for c in completed] == [
        (KEY, old["ETag"], None)
    ]
    # And the origin was asked conditionally once; continuations resumed with If-Range
    requests = origin.counts(URI).requests
    conditional = [r.header("If-None-Match") for r in requests if r.header("If-None-Match")]
    assert conditional == [old["Metadata"]["origin-etag"]]
    resumed = [r for r in requests if r.header("If-Range")]
    assert len(resumed) == len(continuations)
    # And each byte was fetched about once
    assert_each_byte_fetched_about_once(origin, URI, SIZE, 5 * MIB, parts_in_flight=2)
    # And the path was invalidated once and warmed after it
    world["worker"].flush_invalidations()
    assert invalidations(world) == [[URI]]
    (prewarm,) = drain(sqs, world["prewarm"])
    assert prewarm["paths"] == [URI] and prewarm["afterInvalidation"]


# ---------------------------------------------------------------- between invocations


def test_a_concurrent_writer_between_invocations_is_not_clobbered(
    world: dict[str, Any], s3: Any, sqs: Any, origin: LabOrigin
) -> None:
    # Given a replace handed over after its first invocation
    paced_object(origin, URI, seed=2)
    body = first_invocation(world, sqs)
    upload = lease_body(s3, KEY)["checkpoint"]["uploadId"]
    metadata = s3.head_object(Bucket=BUCKET, Key=KEY)["Metadata"]
    # When another writer replaces the copy before the continuation runs
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"their version", Metadata=metadata)
    origin.reset_counts()
    outcomes, continuations = refresh(world, sqs, body)
    # Then the continuation ends changed, their version stays, the upload is aborted
    assert [(o.status, o.reason) for o in outcomes] == [("refreshed", "changed")]
    assert continuations == []
    assert stored(s3, KEY) == b"their version"
    uploads = s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])
    assert upload not in [u["UploadId"] for u in uploads]
    # And the origin was not asked for another byte; nothing is invalidated or warmed
    assert origin.counts(URI).requests == ()
    world["worker"].flush_invalidations()
    assert invalidations(world) == [] and drain(sqs, world["prewarm"]) == []


def test_an_origin_change_between_invocations_starts_over_on_the_newest_version(
    world: dict[str, Any],
    s3: Any,
    sqs: Any,
    origin: LabOrigin,
    completions: Callable[[], list[dict[str, Any]]],
) -> None:
    # Given a replace by version 2 handed over after its first invocation
    old = s3.head_object(Bucket=BUCKET, Key=KEY)
    paced_object(origin, URI, seed=2)
    body = first_invocation(world, sqs)
    old_upload = lease_body(s3, KEY)["checkpoint"]["uploadId"]
    completed = completions()
    # When the origin publishes version 3 before the continuation runs
    newest = paced_object(origin, URI, seed=3)
    outcomes, _ = refresh(world, sqs, body)
    # Then the copy is entirely version 3, never a mix, and still replaced the old copy
    assert (outcomes[-1].status, outcomes[-1].reason) == ("copied", "replaced")
    assert sha256(stored(s3, KEY)) == sha256(newest)
    assert s3.head_object(Bucket=BUCKET, Key=KEY)["Metadata"]["origin-etag"] == origin.etag(URI)
    assert [c.get("IfMatch") for c in completed] == [old["ETag"]]
    # And version 2's upload was aborted
    uploads = s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])
    assert old_upload not in [u["UploadId"] for u in uploads]


def test_a_copy_removed_between_invocations_is_filled_afresh(
    world: dict[str, Any],
    s3: Any,
    sqs: Any,
    origin: LabOrigin,
    completions: Callable[[], list[dict[str, Any]]],
) -> None:
    # Given a replace handed over after its first invocation
    new = paced_object(origin, URI, seed=2)
    body = first_invocation(world, sqs)
    # When the copy is deleted before the continuation runs
    s3.delete_object(Bucket=BUCKET, Key=KEY)
    completed = completions()
    outcomes, _ = refresh(world, sqs, body)
    # Then the key is filled (a create, never completing the upload made to replace)
    assert (outcomes[-1].status, outcomes[-1].reason) == ("copied", "copied")
    assert sha256(stored(s3, KEY)) == sha256(new)
    assert all(c.get("IfNoneMatch") == "*" and "IfMatch" not in c for c in completed)


# ---------------------------------------------------------------- hostile


@pytest.mark.parametrize("token", ["forged", "none"])
def test_a_forged_refresh_continuation_is_a_no_op(
    world: dict[str, Any], s3: Any, sqs: Any, origin: LabOrigin, token: str
) -> None:
    # Given a replace handed over after its first invocation
    new = paced_object(origin, URI, seed=2)
    body = first_invocation(world, sqs)
    lease_before = lease_body(s3, KEY)
    origin.reset_counts()
    # When a continuation with another token (or none) arrives for the same key
    forged = json.loads(body)
    if token == "forged":
        forged["handover"] = str(uuid.uuid4())
    else:
        del forged["handover"]
    outcome = world["worker"].backfill(json.dumps(forged), FakeLambdaContext(INVOCATION))
    # Then it does nothing: the lease, its heir and checkpoint are untouched, the origin
    # is not asked, nothing is sent on
    assert (outcome.status, outcome.reason) == ("skipped", "leased")
    assert lease_body(s3, KEY) == lease_before
    assert origin.counts(URI).requests == ()
    assert drain(sqs, world["queue"]) == []
    # And the real continuation carries the replace on to the end
    outcomes, _ = refresh(world, sqs, body)
    assert (outcomes[-1].status, outcomes[-1].reason) == ("copied", "replaced")
    assert sha256(stored(s3, KEY)) == sha256(new)


def test_a_planted_checkpoint_replacing_another_version_is_not_resumed(
    world: dict[str, Any], s3: Any, sqs: Any, origin: LabOrigin
) -> None:
    # Given a replace handed over, whose lease someone rewrites (expired) so that its
    # checkpoint claims to replace another version of the copy
    new = paced_object(origin, URI, seed=2)
    body = first_invocation(world, sqs)
    lease = lease_body(s3, KEY)
    lease["checkpoint"]["replaces"] = '"0123456789abcdef0123456789abcdef"'
    lease["expiresAt"] = 0
    s3.put_object(Bucket=BUCKET, Key=lease_key(KEY), Body=json.dumps(lease).encode())
    # When the continuation runs / Then its upload is aborted and nothing is clobbered:
    # the copy no longer has the ETag the checkpoint names, so the outcome is changed
    outcomes, _ = refresh(world, sqs, body)
    assert [(o.status, o.reason) for o in outcomes] == [("refreshed", "changed")]
    assert sha256(stored(s3, KEY)) != sha256(new)
    # And a later refresh replaces it normally
    outcomes, _ = refresh(world, sqs)
    assert (outcomes[-1].status, outcomes[-1].reason) == ("copied", "replaced")
    assert sha256(stored(s3, KEY)) == sha256(new)


def test_an_origin_failing_on_a_continuation_keeps_the_replace_for_the_redelivery(
    world: dict[str, Any],
    s3: Any,
    sqs: Any,
    origin: LabOrigin,
    completions: Callable[[], list[dict[str, Any]]],
) -> None:
    # Given a replace handed over after its first invocation
    old = s3.head_object(Bucket=BUCKET, Key=KEY)
    new = paced_object(origin, URI, seed=2)
    body = first_invocation(world, sqs)
    saved = {number for number, *_ in lease_body(s3, KEY)["checkpoint"]["parts"]}
    # When the origin answers 503 to the continuation's first request
    origin.fault(URI, status=503, times=1)
    with pytest.raises(TransientFailure, match="origin"):
        world["worker"].backfill(body, FakeLambdaContext(INVOCATION))
    # Then the lease keeps the checkpoint, still replacing the copy read at the start
    kept = lease_body(s3, KEY)["checkpoint"]
    assert {n for n, *_ in kept["parts"]} == saved and kept["replaces"] == old["ETag"]
    # And the redelivery resumes without fetching the saved parts again, and replaces
    origin.reset_counts()
    origin.fault(URI, bandwidth=RATE)
    completed = completions()
    outcomes, _ = refresh(world, sqs, body)
    assert (outcomes[-1].status, outcomes[-1].reason) == ("copied", "replaced")
    assert sha256(stored(s3, KEY)) == sha256(new)
    assert_only_unsaved_bytes_fetched(origin, URI, saved, SIZE)
    assert [c.get("IfMatch") for c in completed] == [old["ETag"]]
