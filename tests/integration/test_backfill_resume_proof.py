"""A copy resumes only what can be proven to be the same object (issue 19).

Origins whose validators do not change with the content (a Last-Modified kept across a
rewrite, nginx's size-mtime ETags, weak or strong) answer a continuation's ``If-Range``
with a 206 of the new bytes. Against moto in server mode and the lab origin: such a copy
never mixes two versions. It does not hand over at all without a strong ETag or an MD5
over the whole object, and one that does hand over re-reads the end of its last kept part
and compares it with the hash its checkpoint kept."""

from __future__ import annotations

import hashlib
import logging
import time
from typing import Any

import pytest

from backfill_worker.flight.outcome import TransientFailure
from backfill_worker.transfer.checkpoint import OVERLAP_BYTES, tail_digest
from edgefill.lab.origin import LabOrigin, generated_bytes
from shared.object_store import ObjectStore
from tests.integration.backfill_world import (
    BUCKET,
    FakeLambdaContext,
    assert_only_unsaved_bytes_fetched,
    message,
    refused,
    sha256,
    stored,
)
from tests.integration.test_backfill_resume import (
    INVOCATION,
    RATE,
    SIZE,
    bucket,
    lease_body,
    next_continuation,
    paced_object,
    plant_lease,
    queue,
    run_chain,
    worker_for,
)

__all__ = ["bucket", "queue"]  # fixtures

PATH = "/v/clip.mp4"
KEY = "v/clip.mp4"
# The origin's clock did not move (or its validators ignore the content).
MTIME = 1_700_000_000.0
NGINX_WEAK = 'W/"1e00000-6553f100"'  # nginx's size-mtime form, weakened (gzip filter)
NGINX_STRONG = '"6553f100-1e00000"'  # nginx's default: strong-looking, mtime-size


def version(origin: LabOrigin, seed: int, etag: str | None, md5: bool = False) -> bytes:
    """Version ``seed`` of the clip, paced, with validators that never change."""
    data = b"".join(generated_bytes(SIZE, seed))
    headers = {"Content-MD5": hashlib.md5(data).hexdigest()} if md5 else None
    origin.put_generated(PATH, SIZE, seed=seed, etag=etag, last_modified=MTIME, headers=headers)
    origin.fault(PATH, bandwidth=RATE)
    return data


def first_invocation(worker: Any) -> bool:
    """The miss's first invocation; True when it handed over."""
    try:
        outcome = worker.backfill(message(PATH), FakeLambdaContext(INVOCATION))
    except TransientFailure as failure:
        assert failure.reason == "deadline"  # not resumable: abandoned, retried whole
        return False
    assert outcome.status == "handed_over", outcome
    return True


def until_a_part_is_saved(worker: Any, bucket: Any, sqs: Any, queue: str, body: str) -> str:
    """Run continuations until the checkpoint keeps a part; the next continuation's body."""
    for _ in range(5):
        if (lease_body(bucket, KEY).get("checkpoint") or {}).get("parts"):
            return body
        assert worker.backfill(body, FakeLambdaContext(INVOCATION)).status == "handed_over"
        body = next_continuation(sqs, queue)
    raise AssertionError("five invocations saved no part")


def handed_over(bucket: Any, origin: LabOrigin, sqs: Any, queue: str) -> tuple[Any, bytes, str]:
    """A copy of the clip (a strong ETag) handed over after its first invocation: the
    worker, the clip's bytes and the continuation's body."""
    data = paced_object(origin, PATH, seed=1)
    worker = worker_for(bucket, origin, sqs, queue)
    assert first_invocation(worker)
    return worker, data, next_continuation(sqs, queue)


@pytest.mark.parametrize(
    ("etag", "md5", "hands_over"),
    [
        pytest.param(None, False, False, id="last-modified-only"),
        pytest.param(NGINX_WEAK, False, False, id="weak-size-mtime-etag"),
        pytest.param(NGINX_STRONG, False, True, id="strong-size-mtime-etag"),
        pytest.param(None, True, True, id="last-modified-and-content-md5"),
    ],
)
def test_an_origin_that_changes_bytes_but_not_validators_never_yields_a_mixed_copy(
    bucket: Any,
    origin: LabOrigin,
    sqs: Any,
    queue: str,
    etag: str | None,
    md5: bool,
    hands_over: bool,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given a copy longer than one invocation of version 1
    version(origin, seed=1, etag=etag, md5=md5)
    worker = worker_for(bucket, origin, sqs, queue)
    handed = first_invocation(worker)
    # Then it handed over only with a strong ETag or an MD5 over the whole object
    assert handed == hands_over
    body = next_continuation(sqs, queue) if handed else ""
    if handed:
        # (a starved machine may hand over before a part is saved: the continuations of
        # version 1 go on until one is, so that the next one has a part to prove)
        body = until_a_part_is_saved(worker, bucket, sqs, queue, body)
    # When the origin rewrites the object with other bytes and the very same validators
    newest = version(origin, seed=2, etag=etag, md5=md5)
    if handed:
        # And the continuation runs (then every continuation after it)
        outcomes, _ = run_chain(worker, sqs, queue, body)
    else:
        # And the redelivery runs, in an invocation long enough for the whole copy
        outcomes = [worker.backfill(message(PATH), FakeLambdaContext(300))]
    # Then the stored object is version 2 byte for byte, never a mix of the two
    assert outcomes[-1].status == "copied"
    assert sha256(stored(bucket, KEY)) == sha256(newest)
    if handed:
        # And the continuation said why it did not resume (the old upload aborted: the
        # fixture checks no upload is left)
        notes = [r for r in caplog.records if r.getMessage() == "checkpoint not resumed"]
        assert [r.event for r in notes if r.levelno == logging.WARNING][:1] == ["origin_changed"]


def test_a_resume_finding_every_part_kept_rereads_only_the_proof_and_completes(
    bucket: Any, origin: LabOrigin, sqs: Any, queue: str
) -> None:
    # Given a copy handed over, whose later invocation uploaded every other part and was
    # killed before CompleteMultipartUpload (its checkpoint lists them all)
    worker, data, _ = handed_over(bucket, origin, sqs, queue)
    checkpoint = lease_body(bucket, KEY)["checkpoint"]
    upload, part = checkpoint["uploadId"], checkpoint["partBytes"]
    done = {number for number, *_ in checkpoint["parts"]}
    for number in range(1, SIZE // part + 1):
        chunk = data[(number - 1) * part : number * part]
        if number not in done:
            uploaded = ObjectStore(bucket, BUCKET).upload_part(KEY, upload, number, chunk)
            checkpoint["parts"].append([number, len(chunk), uploaded.etag, uploaded.crc32])
    last = SIZE // part
    checkpoint["tails"] = [[last, tail_digest(data[last * part - part : last * part])]]
    plant_lease(bucket, KEY, checkpoint)
    # When the redelivery runs
    origin.reset_counts()
    outcome = worker.backfill(message(PATH), FakeLambdaContext(INVOCATION))
    # Then it asked the origin only for the overlap that proves the bytes, and completed
    assert outcome.status == "copied"
    assert origin.counts(PATH).bytes_sent == OVERLAP_BYTES
    assert sha256(stored(bucket, KEY)) == sha256(data)


# ---------------------------------------------------------------- S3 throttling on resume


@pytest.mark.parametrize("operation", ["ListMultipartUploads", "ListParts", "HeadObject"])
def test_a_throttled_s3_during_resume_keeps_the_checkpoint_for_the_redelivery(
    bucket: Any, origin: LabOrigin, sqs: Any, queue: str, operation: str
) -> None:
    # Given a copy handed over after its first invocation
    worker, data, body = handed_over(bucket, origin, sqs, queue)
    saved = lease_body(bucket, KEY)["checkpoint"]
    # When S3 answers 503 SlowDown to the continuation under the lease (the HEAD that
    # checks the key is still absent, or the lookups of the upload)
    past_the_lease = 1 if operation == "HeadObject" else 0  # the HEAD before it passes
    with (
        refused(bucket, operation, after=past_the_lease) as calls,
        pytest.raises(TransientFailure, match="s3"),
    ):
        worker.backfill(body, FakeLambdaContext(INVOCATION))
    assert calls
    # Then the lease is not released but left to the redelivery: expired, checkpoint kept,
    # and the upload still open
    kept = lease_body(bucket, KEY)
    assert kept["checkpoint"]["uploadId"] == saved["uploadId"]
    assert kept["checkpoint"]["parts"] == saved["parts"]
    assert kept["expiresAt"] < time.time()
    uploads = bucket.list_multipart_uploads(Bucket=BUCKET)["Uploads"]
    assert [u["UploadId"] for u in uploads] == [saved["uploadId"]]
    # And the redelivery (the same continuation) resumes: the saved parts are not fetched
    origin.reset_counts()
    outcomes, _ = run_chain(worker, sqs, queue, body)
    assert outcomes[-1].status == "copied"
    assert sha256(stored(bucket, KEY)) == sha256(data)
    done = {number for number, *_ in saved["parts"]}
    assert_only_unsaved_bytes_fetched(origin, PATH, done, SIZE)


def test_a_throttled_completion_keeps_every_part_for_the_redelivery(
    bucket: Any, origin: LabOrigin, sqs: Any, queue: str
) -> None:
    # Given a copy whose last invocation has every part in S3
    worker, data, body = handed_over(bucket, origin, sqs, queue)
    # When S3 answers 503 SlowDown to its CompleteMultipartUpload
    with (
        refused(bucket, "CompleteMultipartUpload", times=50) as calls,
        pytest.raises(TransientFailure, match="s3"),
    ):
        run_chain(worker, sqs, queue, body)
    assert calls
    # Then the lease keeps the checkpoint with every part, the upload open
    kept = lease_body(bucket, KEY)["checkpoint"]
    assert len(kept["parts"]) == SIZE // kept["partBytes"]
    # And the redelivery re-reads only the overlap that proves the bytes, and completes
    origin.reset_counts()
    outcome = worker.backfill(message(PATH), FakeLambdaContext(INVOCATION))
    assert outcome.status == "copied"
    assert origin.counts(PATH).bytes_sent == OVERLAP_BYTES
    assert sha256(stored(bucket, KEY)) == sha256(data)
