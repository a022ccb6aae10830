"""Demo scene: a feature film too big for one backfill invocation arrives over several.

The lab's backfill invocations last 9 s (the template's 900 s, scaled by 0.01) and hand
over 3 s before their end. The film's origin is paced at 2.1 MB/s per connection, so a
round of eight 8 MiB parts takes about 4 s and one invocation copies 64 MiB: the 136 MiB
film needs three. Each invocation saves its checkpoint in the lease and sends a
continuation; the next resumes with ``If-Range``, fetching only the missing parts.
"""

from __future__ import annotations

import json
import time
from typing import Any, Final

from backfill_worker.flight.lease import lease_key
from edgefill.lab.lab import LAB_HANDOVER_SECONDS, queue_depth
from edgefill.scenes.bucket import object_sha256
from edgefill.scenes.stage import Stage

CLIP: Final = "/video/feature film.mp4"
CLIP_BYTES: Final = 136 * 1024 * 1024  # 17 parts of 8 MiB
CLIP_RATE: Final = 2_100_000  # bytes/s per origin connection: a slow long-haul path
PART_BYTES: Final = 8 * 1024 * 1024


def long_copy(demo: Stage) -> None:
    """Backfill the film through the lab and check it arrived whole, over several hops."""
    step = "8 long copy"
    demo.step("8. A feature film bigger than one invocation can copy arrives over several")
    lab = demo.lab
    assert lab.aws is not None
    origin = lab.origin
    origin.put_generated(CLIP, CLIP_BYTES, seed=2026, content_type="video/mp4")
    origin.etag(CLIP)  # the lab origin's MD5, computed before the copy starts
    # An S3-compatible origin: its ETag is the film's MD5, checked end to end although
    # no invocation sees every byte (the MD5 state travels in the checkpoint).
    origin.fault(CLIP, bandwidth=CLIP_RATE, server="AmazonS3")
    # Warming 136 MiB at 4 POPs × 4 encodings would move 2 GiB through the lab: the
    # prewarm worker sits this scene out (its message stays queued until the lab stops).
    lab.pollers["prewarm"].stop()
    demo.say("(the prewarm worker is paused for this scene: 16 warm copies of a film are not")
    demo.say(" what it shows)")
    poller = lab.pollers["backfill"]
    timeout = poller.deadline_seconds
    demo.say(
        f"{CLIP_BYTES // 2**20} MiB at {CLIP_RATE / 1e6:.1f} MB/s per connection; a lab "
        f"invocation lasts {timeout:.0f}s and hands over {LAB_HANDOVER_SECONDS}s before its end"
    )
    queue = lab.aws.queue("BackfillQueue")
    argv = [
        "backfill",
        CLIP,
        "--endpoint-url",
        lab.aws.endpoint_url,
        "--backfill-queue-url",
        queue.url,
    ]
    demo.say("$ edgefill " + " ".join(a if " " not in a else repr(a) for a in argv))
    code = demo.operator(argv)
    demo.checks.expect(step, "edgefill backfill sent the message", code == 0, f"exit {code}")
    s3 = lab.aws.client("s3")
    bucket, key = lab.settings.bucket, CLIP.lstrip("/")
    parts = -(-CLIP_BYTES // PART_BYTES)
    started = time.monotonic()
    arrived = demo.wait_until(
        "parts of the film in S3 (from the lease's checkpoint)",
        parts,
        lambda: _parts_done(s3, bucket, key, parts),
        timeout=120,
    )
    seconds = time.monotonic() - started
    demo.checks.expect(step, "the film reached the bucket", arrived, f"{seconds:.1f}s")
    sqs = lab.aws.client("sqs")
    idle = demo.wait_until(
        "backfill queue drained",
        1,
        lambda: int(not poller.busy and not queue_depth(sqs, queue.url)),
        timeout=30,
    )
    demo.checks.expect(step, "no continuation left in the backfill queue", idle)
    requests = origin.counts(CLIP).requests
    hops = sum(1 for request in requests if request.header("If-Range"))
    invocations = hops + 1
    demo.say(
        f"{invocations} invocations: {hops} continuation(s), each resuming with If-Range "
        "and fetching only the parts still missing"
    )
    demo.checks.expect(
        step,
        "it arrived over several invocations (at least 3)",
        invocations >= 3,
        f"{invocations} invocations",
    )
    if arrived:
        digest = object_sha256(s3, bucket, key)
        demo.checks.expect(step, "the film is byte-identical in S3", digest == origin.sha256(CLIP))
    ratio = origin.counts(CLIP).bytes_sent / CLIP_BYTES
    demo.checks.expect(
        step,
        "each byte came from the origin about once (≤ 1.10 × the size)",
        ratio <= 1.10,
        f"{ratio:.3f} ×",
    )
    # The film's own lease and uploads: other scenes' copies (and the due index and
    # missing-path markers that stay under _edgefill/ by design) are not this scene's.
    leases = s3.list_objects_v2(Bucket=bucket, Prefix=lease_key(key)).get("KeyCount", 0)
    uploads = s3.list_multipart_uploads(Bucket=bucket, Prefix=key).get("Uploads", [])
    demo.checks.expect(
        step,
        "no lease or multipart upload left",
        leases == 0 and not uploads,
        f"{leases} lease(s), {len(uploads)} upload(s)",
    )
    origin.clear_fault(CLIP)


def _parts_done(s3: Any, bucket: str, key: str, parts: int) -> int:
    """Parts in S3 so far: all of them once the object exists, else the checkpoint's."""
    try:
        s3.head_object(Bucket=bucket, Key=key)
        return parts
    except s3.exceptions.ClientError:
        pass
    try:
        raw = s3.get_object(Bucket=bucket, Key=lease_key(key))["Body"].read()
        return len(json.loads(raw).get("checkpoint", {}).get("parts", []))
    except (s3.exceptions.ClientError, ValueError, AttributeError):
        return 0
