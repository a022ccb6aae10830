"""A copy longer than one invocation, through the whole lab: the backfill poller gives the
real handler a scaled Lambda deadline, the worker hands over to continuations on the
lab's backfill queue, and the poller feeds them back until the object is whole."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from edgefill.lab.lab import Lab, LabSettings
from edgefill.lab.origin import generated_bytes
from edgefill.lab.pollers import QueuePoller
from edgefill.scenes.bucket import object_exists
from tests.integration.backfill_world import assert_each_byte_fetched_about_once, sha256

MIB = 1024 * 1024
CLIP = "/video/long take.mp4"
SIZE = 50 * MIB  # ten 5 MiB parts


@pytest.fixture
def lab(fake_aws: None) -> Iterator[Lab]:
    # Invocations of 4.5 s (900 s × 0.005) handing over 1.5 s before their end, 5 MiB
    # parts two at a time from an origin paced at 5 MB/s per connection: about four parts
    # per invocation, so the clip takes three.
    settings = LabSettings(
        backfill_deadline_scale=0.005,
        extra_env={
            "EDGEFILL_HANDOVER_SECONDS": "1.5",
            "EDGEFILL_PART_BYTES": str(5 * MIB),
            "EDGEFILL_PARTS_IN_FLIGHT": "2",
        },
    )
    running = Lab(settings).start()
    try:
        running.pollers["prewarm"].stop()  # warming the clip is not what this test is about
        yield running
    finally:
        running.stop()
    assert running.leftovers() == []


def test_a_clip_bigger_than_one_lab_invocation_arrives_over_several(lab: Lab) -> None:
    assert lab.aws is not None
    # Given the lab's backfill poller hands out 4.5 s deadlines
    assert lab.pollers["backfill"].deadline_seconds == pytest.approx(900 * 0.005)
    lab.origin.put_generated(CLIP, SIZE, seed=9, content_type="video/mp4")
    lab.origin.fault(CLIP, bandwidth=5_000_000, server="AmazonS3")
    # When the clip's backfill is queued
    sqs, s3 = lab.aws.client("sqs"), lab.aws.client("s3")
    queue = lab.aws.queue("BackfillQueue").url
    uri = lab.origin.uri(CLIP)
    sqs.send_message(
        QueueUrl=queue, MessageBody=json.dumps({"v": 1, "type": "backfill", "uri": uri})
    )
    deadline = time.monotonic() + 120  # a poll: only a starved machine waits long
    while not object_exists(s3, lab.settings.bucket, CLIP[1:]) and time.monotonic() < deadline:
        time.sleep(0.2)
    # Then it arrives whole, over several invocations each resumed with If-Range
    assert object_exists(s3, lab.settings.bucket, CLIP[1:])
    body = s3.get_object(Bucket=lab.settings.bucket, Key=CLIP[1:])["Body"].read()
    assert sha256(body) == sha256(b"".join(generated_bytes(SIZE, 9)))
    resumed = [r for r in lab.origin.counts(CLIP).requests if r.header("If-Range")]
    assert len(resumed) >= 2, "the clip should take at least three invocations"
    assert_each_byte_fetched_about_once(lab.origin, CLIP, SIZE, 5 * MIB, parts_in_flight=2)
    # And nothing is left: the last continuation consumed, no upload, no lease
    poller, deadline = lab.pollers["backfill"], time.monotonic() + 20
    while (poller.busy or _depth(sqs, queue)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not poller.busy and _depth(sqs, queue) == 0
    uploads = s3.list_multipart_uploads(Bucket=lab.settings.bucket).get("Uploads", [])
    leases = s3.list_objects_v2(Bucket=lab.settings.bucket, Prefix="_edgefill/leases/")
    assert uploads == [] and leases.get("KeyCount", 0) == 0


def test_a_poller_refuses_a_deadline_scale_outside_zero_to_one() -> None:
    for scale in (0.0, -1.0, 1.5):
        with pytest.raises(ValueError, match="deadline_scale"):
            QueuePoller(
                None,
                "url",
                "arn:aws:sqs:us-east-1:1:q",
                lambda e, c: None,
                "f",
                deadline_scale=scale,
            )


def _depth(sqs: Any, queue: str) -> int:
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=names)["Attributes"]
    return sum(int(attributes[name]) for name in names)
