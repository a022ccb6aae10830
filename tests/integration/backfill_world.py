"""What the backfill integration tests share: a fake Lambda context, a worker wired to
moto and a lab origin, concurrent deliveries, and the "nothing left behind" check (the
``bucket`` fixture that runs it is in ``conftest.py``)."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from botocore.awsrequest import AWSResponse

from backfill_worker.flight.outcome import Outcome
from backfill_worker.record import Backfiller
from backfill_worker.transfer.checkpoint import OVERLAP_BYTES
from edgefill.lab.origin import LabOrigin
from edgefill.lab.pollers import LambdaContext
from shared.config import BackfillConfig
from shared.dead_letters import DeadLetters
from shared.object_store import ObjectStore
from shared.observability import worker_logger, worker_metrics
from shared.origin import OriginClient

BUCKET = "edgefill-regional"
MIB = 1024 * 1024


def FakeLambdaContext(timeout_seconds: float = 300.0) -> LambdaContext:  # noqa: N802
    """The lab's Lambda context for the backfill function; time runs down for real."""
    return LambdaContext("edgefill-backfill", timeout=timeout_seconds)


def backfill_env(origin: LabOrigin, **overrides: str) -> dict[str, str]:
    """The worker's environment for tests: 5 MiB parts (S3's minimum), 2 in flight."""
    env = {
        "EDGEFILL_BUCKET": BUCKET,
        "EDGEFILL_ORIGIN_URL": origin.url,
        "EDGEFILL_PART_BYTES": str(5 * MIB),
        "EDGEFILL_PARTS_IN_FLIGHT": "2",
    }
    env.update(overrides)
    return env


def make_backfiller(
    s3: Any, origin: LabOrigin, sqs: Any | None = None, **overrides: str
) -> Backfiller:
    config = BackfillConfig.from_env(backfill_env(origin, **overrides))
    return Backfiller(
        config=config,
        store=ObjectStore(s3, config.bucket),
        origin=OriginClient(config.origin_url),
        sqs=sqs,
        logger=worker_logger("backfill"),
        metrics=worker_metrics("backfill"),
        # EDGEFILL_BACKFILL_DLQ_URL: refusals go there, through the same client.
        dead_letters=DeadLetters(sqs, config.dlq_url) if sqs and config.dlq_url else None,
    )


def message(uri: str, **fields: Any) -> str:
    return json.dumps({"v": 1, "type": "backfill", "uri": uri, **fields})


def stored(s3: Any, key: str) -> bytes:
    return bytes(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def keys(s3: Any) -> list[str]:
    """The objects viewers can get (everything outside the reserved ``_edgefill/``)."""
    listed = s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])
    return [item["Key"] for item in listed if not item["Key"].startswith("_edgefill/")]


def reserved_keys(s3: Any) -> list[str]:
    """The worker's own objects under ``_edgefill/`` (leases, missing-path markers)."""
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="_edgefill/").get("Contents", [])
    return [item["Key"] for item in listed]


def assert_nothing_left_behind(s3: Any) -> None:
    """No multipart upload open and no lease object, whatever the outcome was."""
    uploads = s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])
    assert uploads == [], f"multipart uploads left: {[u['Key'] for u in uploads]}"
    leases = s3.list_objects_v2(Bucket=BUCKET, Prefix="_edgefill/leases/").get("Contents", [])
    assert leases == [], f"leases left: {[item['Key'] for item in leases]}"


def backfill_at_once(workers: list[Backfiller], body: str) -> list[Outcome]:
    """Each worker backfills ``body`` in a thread of its own, all released together by a
    barrier (one message delivered to many invocations at once); their outcomes."""
    outcomes: list[Outcome] = []
    barrier = threading.Barrier(len(workers))

    def run(worker: Backfiller) -> None:
        barrier.wait()
        outcomes.append(worker.backfill(body, FakeLambdaContext()))

    threads = [threading.Thread(target=run, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


@contextmanager
def refused(
    client: Any,
    operation: str,
    code: str = "SlowDown",
    status: int = 503,
    times: int = 1,
    after: int = 0,
) -> Iterator[list[dict[str, Any]]]:
    """``client`` (a boto3 client) lets ``after`` calls of ``operation`` through, then
    answers the next ``times`` with the AWS error ``code`` / ``status`` without sending
    them (S3 throttling, CloudFront's TooManyInvalidationsInProgress), then calls AWS
    (moto) again. Yields the refused calls' parameters."""
    calls: list[dict[str, Any]] = []
    passed = [0]
    service = client.meta.service_model.service_id.hyphenize()
    event = f"before-call.{service}.{operation}"

    def refuse(params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        if passed[0] < after:
            passed[0] += 1
            return None
        if len(calls) >= times:
            return None
        calls.append(params)
        error = {"Code": code, "Message": f"injected {code}"}
        metadata = {"HTTPStatusCode": status, "HTTPHeaders": {}, "RetryAttempts": 0}
        return AWSResponse("https://aws.invalid/", status, {}, None), {
            "Error": error,
            "ResponseMetadata": metadata,
        }

    client.meta.events.register(event, refuse)
    try:
        yield calls
    finally:
        client.meta.events.unregister(event, refuse)


def assert_each_byte_fetched_about_once(
    origin: LabOrigin, path: str, size: int, part_bytes: int, parts_in_flight: int
) -> None:
    """A copy spread over several invocations fetched each byte about once: every
    resumed invocation (its first GET carries If-Range) started where the ones before it
    had saved up to, never from the start again nor before an earlier resume; and the
    origin sent at most the object, plus for each resume its proof overlap and the parts
    in flight at the handover. Those parts may be fetched twice: a part cut at the
    deadline is not saved, and with an MD5 carried across (``md5_state``) only whole parts
    hashed in order are kept, so a part that finished after one still in flight is dropped
    too; on a loaded machine that is the usual case, so the bound allows it rather than
    measuring the scheduler."""
    starts = [first for (first, _), resumed in asked_ranges(origin, path, size) if resumed]
    assert starts and all(start > 0 for start in starts), starts
    # (equal starts: an invocation on a starved machine that saved no part before its
    # handover; it costs an overlap, which the bound below counts)
    assert starts == sorted(starts), f"a resume went back: {starts}"
    most = size + len(starts) * (parts_in_flight * part_bytes + OVERLAP_BYTES)
    assert origin.counts(path).bytes_sent <= most, (origin.counts(path).bytes_sent, most)


def asked_ranges(origin: LabOrigin, path: str, size: int) -> list[tuple[tuple[int, int], bool]]:
    """Each GET of ``path`` the origin saw: its byte range (first, last; the whole object
    without a Range) and whether it resumed a copy (it carried If-Range)."""
    asked = []
    for request in origin.counts(path).requests:
        if request.method != "GET":
            continue
        first, _, last = (request.header("Range") or f"bytes=0-{size - 1}")[6:].partition("-")
        span = (int(first), int(last) if last else size - 1)
        asked.append((span, request.header("If-Range") is not None))
    return asked


def assert_only_unsaved_bytes_fetched(
    origin: LabOrigin, path: str, saved: set[int], size: int, part: int = 5 * MIB
) -> None:
    """Resuming after the ``saved`` parts asked the origin for every byte of the other
    parts and, of a saved part, only the overlap a resume re-reads at its end to prove the
    bytes are the same (``OVERLAP_BYTES``). Read from the ranges the origin was asked for,
    not from the bytes it counted: a part cut at a handover on a loaded machine is asked
    for again, as it should be, and the count would then measure the machine."""
    asked = [span for span, _ in asked_ranges(origin, path, size)]
    for first, last in asked:
        for number in saved:
            start, end = (number - 1) * part, min(number * part, size)
            if first < end and last >= start:
                assert first >= end - OVERLAP_BYTES, (
                    f"saved part {number} fetched again: bytes={first}-{last}"
                )
    for number in set(range(1, -(-size // part) + 1)) - saved:
        start, end = (number - 1) * part, min(number * part, size)
        assert any(first <= start and last >= end - 1 for first, last in asked), (
            f"part {number} was never asked for whole: {asked}"
        )
    unsaved = size - sum(min(n * part, size) - (n - 1) * part for n in saved)
    assert origin.counts(path).bytes_sent >= unsaved
