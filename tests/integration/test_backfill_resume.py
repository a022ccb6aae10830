"""Copies longer than one invocation, against moto in server mode and the lab origin:
handover to a continuation, resume with If-Range, origin changes, vanished uploads, the
hop limit, concurrent continuations, an SQS that refuses the continuation, forged
checkpoints, and a worker process killed mid-part. Every test ends with no multipart
upload and no lease left."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from backfill_worker.flight.lease import lease_key
from backfill_worker.flight.outcome import Outcome, TransientFailure
from backfill_worker.record import Backfiller
from edgefill.lab.origin import LabOrigin, generated_bytes
from shared.object_store import crc32_base64
from tests.integration.backfill_world import (
    BUCKET,
    MIB,
    FakeLambdaContext,
    assert_each_byte_fetched_about_once,
    assert_nothing_left_behind,
    assert_only_unsaved_bytes_fetched,
    backfill_env,
    keys,
    make_backfiller,
    message,
    reserved_keys,
    sha256,
    stored,
)

ROOT = Path(__file__).resolve().parents[2]
SIZE = 30 * MIB  # six 5 MiB parts
# Paced so that a part takes about a second and an invocation of 3 s, handing over 1.5 s
# before its end, copies two parts (two in flight; a third would end after the handover
# point). Parts in flight have until 2.25 s (the cleanup margin is half the handover
# time): room for a busy machine.
RATE = 5_000_000
INVOCATION = 3.0
HANDOVER = "1.5"


@pytest.fixture
def bucket(s3: Any) -> Iterator[Any]:
    s3.create_bucket(Bucket=BUCKET)
    yield s3
    assert_nothing_left_behind(s3)


@pytest.fixture
def queue(sqs: Any) -> str:
    return str(sqs.create_queue(QueueName="edgefill-backfill")["QueueUrl"])


def worker_for(s3: Any, origin: LabOrigin, sqs: Any, queue: str, **env: str) -> Backfiller:
    settings = {"EDGEFILL_BACKFILL_QUEUE_URL": queue, "EDGEFILL_HANDOVER_SECONDS": HANDOVER}
    settings.update(env)
    return make_backfiller(s3, origin, sqs, **settings)


def next_continuation(sqs: Any, queue: str) -> str:
    response = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=1, WaitTimeSeconds=5)
    (received,) = response["Messages"]
    sqs.delete_message(QueueUrl=queue, ReceiptHandle=received["ReceiptHandle"])
    return str(received["Body"])


def run_chain(
    worker: Backfiller, sqs: Any, queue: str, body: str, limit: int = 20
) -> tuple[list[Outcome], list[dict[str, Any]]]:
    """Invoke until the copy stops handing over; the outcomes and continuations seen."""
    outcomes = [worker.backfill(body, FakeLambdaContext(INVOCATION))]
    continuations: list[dict[str, Any]] = []
    while outcomes[-1].status == "handed_over" and len(outcomes) < limit:
        body = next_continuation(sqs, queue)
        continuations.append(json.loads(body))
        outcomes.append(worker.backfill(body, FakeLambdaContext(INVOCATION)))
    return outcomes, continuations


def paced_object(origin: LabOrigin, path: str, seed: int = 1, size: int = SIZE) -> bytes:
    origin.put_generated(path, size, seed=seed)
    origin.fault(path, bandwidth=RATE)
    return b"".join(generated_bytes(size, seed))


def composite_crc32(data: bytes, part: int = 5 * MIB) -> str:
    crcs = b"".join(
        base64.b64decode(crc32_base64(data[start : start + part]))
        for start in range(0, len(data), part)
    )
    return crc32_base64(crcs)


def lease_body(s3: Any, key: str) -> dict[str, Any]:
    raw = s3.get_object(Bucket=BUCKET, Key=lease_key(key))["Body"].read()
    return dict(json.loads(raw))


# ---------------------------------------------------------------- the chain


@pytest.mark.parametrize("etag", ["md5", '"opaque-v1"'], ids=["s3-md5-etag", "no-md5"])
def test_a_copy_longer_than_an_invocation_arrives_over_several_paying_each_byte_once(
    bucket: Any, origin: LabOrigin, sqs: Any, queue: str, etag: str
) -> None:
    # Given a 30 MiB object at a paced origin and invocations that copy about 2 parts each
    # (an S3 origin's ETag is its MD5: the MD5 is carried across the invocations)
    origin.put_generated("/v/clip.mp4", SIZE, seed=1)
    if etag != "md5":
        data = b"".join(generated_bytes(SIZE, 1))
        origin.put("/v/clip.mp4", data, etag=etag, content_type="video/mp4")
    origin.fault("/v/clip.mp4", bandwidth=RATE, server="AmazonS3")
    expected = b"".join(generated_bytes(SIZE, 1))
    worker = worker_for(bucket, origin, sqs, queue)
    # When its miss is backfilled and each continuation is processed as it arrives
    outcomes, continuations = run_chain(worker, sqs, queue, message("/v/clip.mp4"))
    # Then it took several invocations, each handing over with the next hop and a token
    assert [o.status for o in outcomes][-1] == "copied"
    assert len(outcomes) >= 3, outcomes
    assert [c["hop"] for c in continuations] == list(range(1, len(outcomes)))
    assert all(c["uri"] == "/v/clip.mp4" and len(c["handover"]) == 36 for c in continuations)
    # And the object is whole, verified, with S3's composite CRC32 over all the parts
    assert sha256(stored(bucket, "v/clip.mp4")) == sha256(expected)
    head = bucket.head_object(Bucket=BUCKET, Key="v/clip.mp4", ChecksumMode="ENABLED")
    assert head["ChecksumCRC32"].split("-")[0] == composite_crc32(expected)
    assert head["Metadata"]["origin-etag"] == origin.etag("/v/clip.mp4")
    # And each byte was fetched from the origin about once
    assert_each_byte_fetched_about_once(origin, "/v/clip.mp4", SIZE, 5 * MIB, parts_in_flight=2)
    # And resumed invocations asked for their first part with If-Range
    resumed = [r for r in origin.counts("/v/clip.mp4").requests if r.header("If-Range")]
    assert len(resumed) == len(continuations)
    assert all(r.header("If-Range") == origin.etag("/v/clip.mp4") for r in resumed)


def test_an_origin_md5_that_does_not_match_aborts_the_resumed_copy(
    bucket: Any, origin: LabOrigin, sqs: Any, queue: str
) -> None:
    # Given an origin announcing a wrong MD5 for a copy that takes several invocations
    data = paced_object(origin, "/bad.bin")
    origin.put("/bad.bin", data, headers={"Content-MD5": "0" * 32})
    origin.fault("/bad.bin", bandwidth=RATE)
    worker = worker_for(bucket, origin, sqs, queue)
    # When the last invocation finds the MD5 carried across invocations differs
    with pytest.raises(TransientFailure, match="md5"):
        run_chain(worker, sqs, queue, message("/bad.bin"))
    # Then nothing is visible and the upload and lease are gone (the retry starts over)
    assert keys(bucket) == []


# ---------------------------------------------------------------- between invocations


def test_an_origin_change_between_invocations_starts_over_on_the_new_version(
    bucket: Any, origin: LabOrigin, sqs: Any, queue: str
) -> None:
    # Given a copy handed over after its first invocation
    paced_object(origin, "/news.mp4", seed=1)
    worker = worker_for(bucket, origin, sqs, queue)
    first = worker.backfill(message("/news.mp4"), FakeLambdaContext(INVOCATION))
    assert first.status == "handed_over"
    old_upload = lease_body(bucket, "news.mp4")["checkpoint"]["uploadId"]
    # When the origin publishes a new version before the continuation runs
    new = paced_object(origin, "/news.mp4", seed=2)
    outcomes, _ = run_chain(worker, sqs, queue, next_continuation(sqs, queue))
    # Then the stored object is entirely the new version, never a mix
    assert outcomes[-1].status == "copied"
    assert sha256(stored(bucket, "news.mp4")) == sha256(new)
    # And the old upload was aborted (If-Range answered 200 with the new version)
    uploads = bucket.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])
    assert old_upload not in [u["UploadId"] for u in uploads]


def test_a_vanished_upload_starts_over(
    bucket: Any, origin: LabOrigin, sqs: Any, queue: str
) -> None:
    # Given a copy handed over whose upload the lifecycle rule then aborted
    data = paced_object(origin, "/gone.bin")
    worker = worker_for(bucket, origin, sqs, queue)
    assert worker.backfill(message("/gone.bin"), FakeLambdaContext(INVOCATION)).status == (
        "handed_over"
    )
    upload = lease_body(bucket, "gone.bin")["checkpoint"]["uploadId"]
    bucket.abort_multipart_upload(Bucket=BUCKET, Key="gone.bin", UploadId=upload)
    # When the continuation runs
    outcomes, _ = run_chain(worker, sqs, queue, next_continuation(sqs, queue))
    # Then the copy starts over and completes
    assert outcomes[-1].status == "copied"
    assert sha256(stored(bucket, "gone.bin")) == sha256(data)


def test_past_the_hop_limit_the_copy_is_given_up(
    bucket: Any, origin: LabOrigin, sqs: Any, queue: str
) -> None:
    # Given at most one continuation per copy, and a copy needing three invocations
    paced_object(origin, "/slow.bin")
    worker = worker_for(bucket, origin, sqs, queue, EDGEFILL_MAX_HOPS="1")
    # When the copy runs out of hops
    outcomes, continuations = run_chain(worker, sqs, queue, message("/slow.bin"))
    # Then the second invocation gives up with too_slow: the record succeeds, no object,
    # upload aborted, lease released (checked by the fixture), no further continuation
    assert [(o.status, o.reason) for o in outcomes] == [
        ("handed_over", "handed_over"),
        ("skipped", "too_slow"),
    ]
    assert [c["hop"] for c in continuations] == [1]
    assert keys(bucket) == []
    assert "Messages" not in sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=0)


def test_a_continuation_for_a_lease_held_by_another_live_copy_is_a_no_op(
    bucket: Any, origin: LabOrigin, sqs: Any, queue: str
) -> None:
    # Given a handed-over copy whose continuation is delivered twice at once
    data = paced_object(origin, "/twice.bin")
    worker = worker_for(bucket, origin, sqs, queue)
    assert worker.backfill(message("/twice.bin"), FakeLambdaContext(INVOCATION)).status == (
        "handed_over"
    )
    body = next_continuation(sqs, queue)
    # And a fresh miss of the same key arrives meanwhile: the lease is the continuation's
    fresh = worker.backfill(message("/twice.bin"), FakeLambdaContext(INVOCATION))
    assert (fresh.status, fresh.reason) == ("skipped", "leased")
    workers = [worker_for(boto3.client("s3"), origin, sqs, queue) for _ in range(2)]
    outcomes: list[Outcome] = []
    barrier = threading.Barrier(2)

    def deliver(each: Backfiller) -> None:
        barrier.wait()
        outcomes.append(each.backfill(body, FakeLambdaContext(INVOCATION)))

    threads = [threading.Thread(target=deliver, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Then exactly one carries the copy on; the other does nothing
    reasons = sorted(o.reason for o in outcomes)
    assert reasons.count("leased") == 1, reasons
    assert [r for r in reasons if r != "leased"][0] in ("handed_over", "copied")
    # And the chain goes on from the one that won, to a whole object
    last = [o for o in outcomes if o.reason != "leased"][0]
    if last.status == "handed_over":
        run_chain(worker, sqs, queue, next_continuation(sqs, queue))
    assert sha256(stored(bucket, "twice.bin")) == sha256(data)


def test_a_continuation_sqs_refuses_fails_the_record_and_the_redelivery_resumes(
    bucket: Any, origin: LabOrigin, sqs: Any, queue: str, moto: str
) -> None:
    # Given a worker whose continuation queue does not exist (SQS refuses the send)
    data = paced_object(origin, "/retry.bin")
    broken = worker_for(bucket, origin, sqs, f"{moto}/123456789012/no-such-queue")
    # When the copy reaches its handover point
    with pytest.raises(TransientFailure, match="continuation"):
        broken.backfill(message("/retry.bin"), FakeLambdaContext(INVOCATION))
    # Then the record fails (SQS will redeliver it) with the checkpoint kept in the lease
    saved = lease_body(bucket, "retry.bin")["checkpoint"]
    done = {number for number, *_ in saved["parts"]}
    assert done, saved
    # And the redelivery of the same message resumes: saved parts are not fetched again
    origin.reset_counts()
    worker = worker_for(bucket, origin, sqs, queue)
    outcomes, _ = run_chain(worker, sqs, queue, message("/retry.bin"))
    assert outcomes[-1].status == "copied"
    assert sha256(stored(bucket, "retry.bin")) == sha256(data)
    asked = {r.header("Range") for r in origin.counts("/retry.bin").requests}
    for number in done:
        start = (number - 1) * 5 * MIB
        assert f"bytes={start}-{start + 5 * MIB - 1}" not in asked


def test_an_origin_failing_on_the_way_keeps_the_checkpoint_for_the_redelivery(
    bucket: Any, origin: LabOrigin, sqs: Any, queue: str
) -> None:
    # Given a copy handed over after its first invocation
    data = paced_object(origin, "/flaky.bin")
    worker = worker_for(bucket, origin, sqs, queue)
    assert worker.backfill(message("/flaky.bin"), FakeLambdaContext(INVOCATION)).status == (
        "handed_over"
    )
    body = next_continuation(sqs, queue)
    saved = {number for number, *_ in lease_body(bucket, "flaky.bin")["checkpoint"]["parts"]}
    # When the origin answers 503 to the continuation's first request
    origin.fault("/flaky.bin", status=503, times=1)
    with pytest.raises(TransientFailure, match="origin"):
        worker.backfill(body, FakeLambdaContext(INVOCATION))
    # Then the record fails (SQS redelivers it) and the lease keeps the checkpoint
    assert {n for n, *_ in lease_body(bucket, "flaky.bin")["checkpoint"]["parts"]} == saved
    # And the redelivery resumes without fetching the saved parts again
    origin.reset_counts()
    origin.fault("/flaky.bin", bandwidth=RATE)
    outcomes, _ = run_chain(worker, sqs, queue, body)
    assert outcomes[-1].status == "copied"
    assert sha256(stored(bucket, "flaky.bin")) == sha256(data)
    assert_only_unsaved_bytes_fetched(origin, "/flaky.bin", saved, SIZE)


def test_a_part_failing_mid_copy_keeps_the_parts_already_in_s3(
    bucket: Any, origin: LabOrigin, sqs: Any, queue: str
) -> None:
    # Given a copy whose origin resets a ranged GET once some parts are saved
    data = paced_object(origin, "/reset.bin")
    worker = worker_for(bucket, origin, sqs, queue, EDGEFILL_HANDOVER_SECONDS="60")

    def break_a_part() -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if lease_body(bucket, "reset.bin").get("checkpoint", {}).get("parts"):
                    origin.fault("/reset.bin", status=503)
                    return
            except bucket.exceptions.NoSuchKey:
                pass
            time.sleep(0.02)

    breaker = threading.Thread(target=break_a_part)
    breaker.start()
    # When the copy meets the failure
    with pytest.raises(TransientFailure, match="origin"):
        worker.backfill(message("/reset.bin"), FakeLambdaContext(300))
    breaker.join()
    # Then the parts already in S3 are kept, with the checkpoint, for the redelivery
    saved = {number for number, *_ in lease_body(bucket, "reset.bin")["checkpoint"]["parts"]}
    assert saved
    origin.clear_fault("/reset.bin")
    origin.reset_counts()
    assert worker.backfill(message("/reset.bin"), FakeLambdaContext(300)).status == "copied"
    assert sha256(stored(bucket, "reset.bin")) == sha256(data)
    assert_only_unsaved_bytes_fetched(origin, "/reset.bin", saved, SIZE)


# ---------------------------------------------------------------- hostile checkpoints


def plant_lease(s3: Any, key: str, checkpoint: Any) -> None:
    body = {"v": 1, "key": key, "owner": "crashed", "expiresAt": 0, "checkpoint": checkpoint}
    s3.put_object(Bucket=BUCKET, Key=lease_key(key), Body=json.dumps(body).encode())


def test_a_checkpoint_naming_another_keys_upload_never_touches_it(
    bucket: Any, origin: LabOrigin, sqs: Any, queue: str
) -> None:
    # Given another key's open upload, and an expired lease whose checkpoint names it
    other = bucket.create_multipart_upload(Bucket=BUCKET, Key="private/other.bin")["UploadId"]
    origin.put("/mine.bin", b"m" * (6 * MIB))
    forged = {
        "v": 1,
        "uploadId": other,
        "length": 6 * MIB,
        "partBytes": 5 * MIB,
        "etag": origin.etag("/mine.bin"),
        "lastModified": None,
        "parts": [],
        "md5": {"expected": [["ETag", origin.md5("/mine.bin")]], "state": None, "bytes": 0},
    }
    plant_lease(bucket, "mine.bin", forged)
    worker = worker_for(bucket, origin, sqs, queue, EDGEFILL_HANDOVER_SECONDS="60")
    # When the key is backfilled
    outcome = worker.backfill(message("/mine.bin"), FakeLambdaContext(300))
    # Then it is copied from scratch under its own key only
    assert outcome.status == "copied"
    assert stored(bucket, "mine.bin") == b"m" * (6 * MIB)
    assert keys(bucket) == ["mine.bin"]
    # And the other key's upload is still open, untouched
    uploads = bucket.list_multipart_uploads(Bucket=BUCKET)["Uploads"]
    assert [(u["Key"], u["UploadId"]) for u in uploads] == [("private/other.bin", other)]
    bucket.abort_multipart_upload(Bucket=BUCKET, Key="private/other.bin", UploadId=other)


@pytest.mark.parametrize(
    "checkpoint",
    [
        "garbage",
        {"v": 1, "uploadId": "x", "parts": [[1, 5, '"e"', "zz"]]},
        {"v": 1, "uploadId": "../../../etc", "length": 1},
        {"v": 99},
    ],
    ids=["string", "bad-parts", "path-upload-id", "future-version"],
)
def test_a_garbled_checkpoint_is_ignored_and_the_copy_starts_over(
    bucket: Any, origin: LabOrigin, sqs: Any, queue: str, checkpoint: Any
) -> None:
    origin.put("/g.bin", b"g" * (6 * MIB))
    plant_lease(bucket, "g.bin", checkpoint)
    worker = worker_for(bucket, origin, sqs, queue, EDGEFILL_HANDOVER_SECONDS="60")
    assert worker.backfill(message("/g.bin"), FakeLambdaContext(300)).status == "copied"
    assert keys(bucket) == ["g.bin"] and stored(bucket, "g.bin") == b"g" * (6 * MIB)


def test_a_garbled_checkpoint_naming_another_keys_upload_does_not_abort_it(
    bucket: Any, origin: LabOrigin, sqs: Any, queue: str
) -> None:
    # Given another key's open upload, named by a checkpoint too garbled to resume
    other = bucket.create_multipart_upload(Bucket=BUCKET, Key="other.bin")["UploadId"]
    origin.put("/g2.bin", b"g" * (6 * MIB))
    plant_lease(bucket, "g2.bin", {"v": 1, "uploadId": other, "parts": "garbled"})
    worker = worker_for(bucket, origin, sqs, queue, EDGEFILL_HANDOVER_SECONDS="60")
    # When the key is backfilled (the garbled checkpoint's upload would be aborted if
    # it were this key's)
    assert worker.backfill(message("/g2.bin"), FakeLambdaContext(300)).status == "copied"
    # Then the other key's upload is still open
    uploads = bucket.list_multipart_uploads(Bucket=BUCKET)["Uploads"]
    assert [(u["Key"], u["UploadId"]) for u in uploads] == [("other.bin", other)]
    bucket.abort_multipart_upload(Bucket=BUCKET, Key="other.bin", UploadId=other)


def test_a_garbled_checkpoint_of_this_keys_upload_aborts_it(
    bucket: Any, origin: LabOrigin, sqs: Any, queue: str
) -> None:
    # Given this key's own upload, named by a checkpoint too garbled to resume
    mine = bucket.create_multipart_upload(Bucket=BUCKET, Key="g3.bin")["UploadId"]
    origin.put("/g3.bin", b"g" * (6 * MIB))
    plant_lease(bucket, "g3.bin", {"v": 1, "uploadId": mine, "parts": "garbled"})
    worker = worker_for(bucket, origin, sqs, queue, EDGEFILL_HANDOVER_SECONDS="60")
    # When the key is backfilled, then it is copied afresh and the orphan upload aborted
    # (the fixture checks that no upload is left)
    assert worker.backfill(message("/g3.bin"), FakeLambdaContext(300)).status == "copied"


# ---------------------------------------------------------------- a process killed mid-part


def test_a_worker_killed_mid_part_loses_only_the_parts_in_flight(
    bucket: Any, origin: LabOrigin, sqs: Any, queue: str, moto: str
) -> None:
    # Given a worker process copying a 40 MiB object at a paced origin
    data = paced_object(origin, "/big.bin", size=40 * MIB)
    env = backfill_env(origin, EDGEFILL_BACKFILL_QUEUE_URL=queue)
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.resume_child", json.dumps(env)]
        + [message("/big.bin")],
        cwd=ROOT,
        env={**os.environ, "AWS_ENDPOINT_URL": moto, "POWERTOOLS_LOG_LEVEL": "WARNING"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        # When it is killed once its lease records a few parts, with others in flight
        deadline = time.monotonic() + 60
        saved: list[Any] = []
        while len(saved) < 2 and time.monotonic() < deadline and child.poll() is None:
            time.sleep(0.05)
            try:
                saved = lease_body(bucket, "big.bin").get("checkpoint", {}).get("parts", [])
            except bucket.exceptions.NoSuchKey:
                saved = []
        assert child.poll() is None, child.communicate()
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
    # Then its lease still holds the checkpoint and its upload is open
    checkpoint = lease_body(bucket, "big.bin")["checkpoint"]
    kept = {number for number, *_ in checkpoint["parts"]}
    assert len(kept) >= 2 and keys(bucket) == []
    assert reserved_keys(bucket) == [lease_key("big.bin")]
    # And once the lease has expired, the redelivery finishes the copy from the checkpoint
    origin.reset_counts()
    worker = worker_for(bucket, origin, sqs, queue, EDGEFILL_HANDOVER_SECONDS="60")
    worker.wall_clock = lambda: time.time() + 3600
    assert worker.backfill(message("/big.bin"), FakeLambdaContext(300)).status == "copied"
    assert sha256(stored(bucket, "big.bin")) == sha256(data)
    asked = {r.header("Range") for r in origin.counts("/big.bin").requests}
    for number in kept:
        start = (number - 1) * 5 * MIB
        assert f"bytes={start}-{start + 5 * MIB - 1}" not in asked
    # At most the parts in flight (2) and the part whose MD5 waited were fetched again
    assert origin.counts("/big.bin").bytes_sent <= 40 * MIB - (len(kept) - 3) * 5 * MIB
