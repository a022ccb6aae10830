"""One verified, streaming copy of an origin object into the bucket.

Small objects (up to one part) go up in a single conditional PutObject. Larger ones go
up as a multipart upload whose parts upload concurrently; when the origin advertises
``Accept-Ranges: bytes`` and a length, the parts are also fetched concurrently by ranged
GETs (the first part comes from the response already open), which is what makes a copy
across a slow, long path fast.

Memory bound: at most ``parts_in_flight`` part buffers exist at once, each of
``part_bytes`` (8 × 8 MiB = 64 MiB with the defaults), plus one 1 MiB socket read per
connection. A buffer pool with ``parts_in_flight`` slots enforces it (``multipart.py``):
a buffer is taken before a part is read and given back only when that part is uploaded
and, when an MD5 is checked, hashed (a part that arrived before its predecessors waits,
holding its buffer). The buffers are reused from part to part, so the heap does not grow
with the object.

The MD5 runs in its own thread, in part order, while parts upload: hashing (the one
inherently serial step) never holds up an upload.

Nothing becomes visible unless every byte arrived and checked out: the upload is
completed (``IfNoneMatch='*'``) only after the length and the MD5s the origin vouched for
(``integrity.py``) matched; any failure aborts the upload. Before any body byte is read,
``accept_response`` decides from the status and headers alone whether the response may
be stored at all (``storable.py``) and how big it may be, and the headers the write
would carry must fit S3's request budget (``header_budget.py``).

A ranged copy given its record's lease (``progress``) is resumable: it records its
checkpoint in the lease as parts complete (``progress.py``), starts only the parts that
end before the handover point (``admission.py``), and there stops, returning the
checkpoint for a continuation (``flight/continuation.py``); a copy that inherited a
checkpoint continues it (``resume.py``), MD5 state included (``md5_state.py``). A failure
on the way keeps the parts for the redelivery instead of aborting; checks on the bytes
still abort.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Final

from backfill_worker.transfer import md5_state
from backfill_worker.transfer.admission import PartAdmission
from backfill_worker.transfer.checkpoint import Checkpoint, proof_tails, tail_digest
from backfill_worker.transfer.errors import CopyFailed, CopyRefused, CopyUnchanged
from backfill_worker.transfer.header_budget import header_refusal
from backfill_worker.transfer.integrity import ExpectedMD5, check_md5, expected_md5s
from backfill_worker.transfer.multipart import MultipartUpload, PartReader
from backfill_worker.transfer.plan import (
    CopyJob,
    CopyPlan,
    part_bytes_for,
    part_count,
    part_size,
)
from backfill_worker.transfer.progress import Progress, ProgressWriter
from backfill_worker.transfer.resume import ResumePoint, resume_point
from backfill_worker.transfer.storable import DroppedHeader, Refusal, decide
from shared.object_store import ObjectAttributes, ObjectStore, StoreError, crc32_base64
from shared.origin import (
    OriginClient,
    OriginError,
    OriginResponse,
    Validators,
    declared_length,
    is_strong_etag,
    read_exactly,
    validators_of,
)
from shared.read_deadline import ReadBudget

# Failures of a part that say nothing about the bytes already in S3.
_TRANSPORT_FAILURES: Final = frozenset({"length", "aborted"})


@dataclass(frozen=True, slots=True)
class CopyTerms:
    """What a copy adds for freshness: ``metadata`` joins the copy's own (``fetched-at``);
    ``conditions`` make the GET conditional (a 304 raises ``CopyUnchanged``); a storable
    200 whose ETag is ``unchanged_etag`` raises ``CopyUnchanged`` before any body byte is
    read; ``clock`` stamps the response's receipt (its apparent age, RFC 9111 §4.2.3)."""

    metadata: Mapping[str, str] = field(default_factory=dict)
    conditions: Mapping[str, str] = field(default_factory=dict)
    unchanged_etag: str | None = None
    # What tells the stored copy's bytes, as ``(algorithm, value)``: ``("sha256" |
    # "crc32", base64)`` from S3's checksum, or ``("md5", hex)`` where the S3 ETag is one.
    # A one-part body with these very bytes raises ``CopyUnchanged`` instead of being
    # written again (origins without validators).
    unchanged_bytes: tuple[str, str] | None = None
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))


@dataclass(frozen=True, slots=True)
class CopyResult:
    """What a copy did. ``created`` is False when the key appeared meanwhile (412), and
    when the copy stopped at its handover point: ``handover`` is then the checkpoint a
    continuation resumes from."""

    created: bool
    size: int
    mode: str  # "single", "streamed" or "ranged"
    dropped_headers: tuple[DroppedHeader, ...] = ()
    handover: Checkpoint | None = None
    checksum: str | None = None  # S3's composite CRC32 of a multipart object ("crc-N")
    origin_bytes: int = 0  # part bytes fetched from the origin, over every invocation
    invocations: int = 1  # invocations the copy took


def copy_object(
    origin: OriginClient,
    store: ObjectStore,
    key: str,
    url: str,
    plan: CopyPlan,
    terms: CopyTerms | None = None,
    *,
    progress: Progress | None = None,
) -> CopyResult:
    """Copy ``url`` (an origin URL) to ``key``; raises ``OriginError``, ``StoreError``,
    ``CopyRefused`` or ``CopyFailed``, and leaves nothing behind in S3 when it does.

    Every read from the origin ends by ``plan.deadline`` (``DeadlinePassed``, an
    ``OriginError``), however slowly the origin trickles its bytes.

    With ``progress`` (the record's lease) a ranged copy is resumable: it continues the
    checkpoint it inherited when that still holds (``resume.py``), saves its own as parts
    complete, and at ``plan.handover_at`` stops and returns it in ``handover``."""
    with ReadBudget(plan.deadline) as budget:
        job = CopyJob(origin, store, key, url, plan, budget)
        return _copy_within(job, terms or CopyTerms(), progress)


def _copy_within(job: CopyJob, terms: CopyTerms, progress: Progress | None) -> CopyResult:
    if progress is not None and progress.inherited is not None:
        resumed = _resumed(job, terms, progress)
        if resumed is not None:
            return resumed
    if terms.conditions:
        response = job.origin.get(job.url, job.budget, conditional=terms.conditions)
    else:
        response = job.origin.get(job.url, job.budget)
    received_at = terms.clock()
    try:
        if response.status == 304 and terms.conditions:
            raise CopyUnchanged("304 Not Modified", 304, response.headers)
        accepted = accept_response(response.status, response.headers, job.plan, received_at)
        etag = response.headers.get("ETag")
        if terms.unchanged_etag is not None and etag == terms.unchanged_etag:
            # A 200 of the version the copy already holds (and may still hold: storable).
            raise CopyUnchanged(etag, 200, response.headers)
        length = accepted.length
        attributes = _with_terms(accepted.attributes, terms)
        too_big = header_refusal(attributes)  # S3 would refuse the write, every time
        if too_big is not None:
            raise _refused(too_big)
        copier = _Copier(job, attributes, accepted.expected_md5s, terms.unchanged_bytes)
        dropped = accepted.dropped
        if length is not None and length <= job.plan.part_bytes:
            data = read_exactly(response, length)
            return copier.single(data, dropped, response)
        if length is None:
            # The list lets ``streamed`` drop this part once it sits in a pool buffer.
            head = [response.read(job.plan.part_bytes)]
            if len(head[0]) < job.plan.part_bytes:  # the whole body fit in one part
                return copier.single(head.pop(), dropped, response)
            return copier.streamed(response, head, None, dropped)
        if response.accepts_ranges:
            return copier.ranged(response, length, dropped, progress)
        return copier.streamed(response, [], length, dropped)
    finally:
        response.close()


def _resumed(job: CopyJob, terms: CopyTerms, progress: Progress) -> CopyResult | None:
    """Continue the inherited checkpoint when it still holds (``resume.py``); None when
    the copy must start over."""
    point = resume_point(job, progress)
    if point is None:
        return None
    try:
        # Same version (If-Range held): the headers that decided the copy are
        # the same; checked again all the same, as for a 200.
        verdict = decide(200, point.response.headers)
        if isinstance(verdict, Refusal):
            job.store.abort(job.key, point.checkpoint.upload_id)
            raise _refused(verdict)
        attributes = _with_terms(verdict.attributes, terms)
        copier = _Copier(job, attributes, point.checkpoint.expected_md5s)
        return copier.ranged(
            point.response, point.checkpoint.length, verdict.dropped, progress, point
        )
    finally:
        point.response.close()


def _with_terms(attributes: ObjectAttributes, terms: CopyTerms) -> ObjectAttributes:
    """The attributes S3 keeps, with the metadata the terms add (``fetched-at``)."""
    if not terms.metadata:
        return attributes
    return replace(attributes, metadata={**attributes.metadata, **terms.metadata})


@dataclass(frozen=True, slots=True)
class AcceptedResponse:
    """A response the copy may store, and how: what S3 keeps, what it loses, what the
    body must measure up to."""

    attributes: ObjectAttributes
    dropped: tuple[DroppedHeader, ...]
    expected_md5s: tuple[ExpectedMD5, ...]
    length: int | None


def accept_response(
    status: int,
    headers: Mapping[str, str],
    plan: CopyPlan,
    received_at: datetime | None = None,
) -> AcceptedResponse:
    """Plan the copy of a response from its status and headers alone (and when it was
    received), before any body byte is read. Raises ``CopyRefused`` and nothing else,
    whatever the headers hold."""
    verdict = decide(status, headers, received_at)
    if isinstance(verdict, Refusal):
        raise _refused(verdict)
    expected = expected_md5s(headers)
    if isinstance(expected, Refusal):
        raise CopyRefused(expected.reason, expected.detail, expected.directive)
    length = declared_length(headers.get("Content-Length"))  # decide() vetted it
    if length is not None and length > plan.max_object_bytes:
        raise CopyRefused("oversize", f"{length} bytes > limit {plan.max_object_bytes}")
    return AcceptedResponse(verdict.attributes, verdict.dropped, expected, length)


def _refused(verdict: Refusal) -> CopyRefused:
    directive = verdict.directive or ""
    status = int(directive[5:]) if directive.startswith("HTTP ") else None
    return CopyRefused(verdict.reason, verdict.detail, verdict.directive, verdict.rule, status)


class _Copier:
    """The three ways of writing one accepted response: single, streamed, ranged."""

    def __init__(
        self,
        job: CopyJob,
        attributes: ObjectAttributes,
        expected_md5s: tuple[ExpectedMD5, ...],
        unchanged_bytes: tuple[str, str] | None = None,
    ) -> None:
        self.origin = job.origin
        self.store = job.store
        self.key = job.key
        self.plan = job.plan
        self.budget = job.budget
        self.attributes = attributes
        self.expected_md5s = expected_md5s
        self.unchanged_bytes = unchanged_bytes

    def single(
        self,
        data: bytes,
        dropped: tuple[DroppedHeader, ...],
        response: OriginResponse | None = None,
    ) -> CopyResult:
        if len(data) > self.plan.max_object_bytes:
            raise CopyRefused("oversize", f"more than {self.plan.max_object_bytes} bytes")
        if self.expected_md5s:
            check_md5(self.expected_md5s, hashlib.md5(data).hexdigest())
        if self.unchanged_bytes is not None and response is not None:
            algorithm, value = self.unchanged_bytes
            if _digest(algorithm, data) == value:
                raise CopyUnchanged("the same bytes as the copy", 200, response.headers)
        created = self.store.put_if_absent(self.key, data, self.attributes)
        return CopyResult(created=created, size=len(data), mode="single", dropped_headers=dropped)

    def streamed(
        self,
        response: OriginResponse,
        head: list[bytes],
        length: int | None,
        dropped: tuple[DroppedHeader, ...],
    ) -> CopyResult:
        """Parts read one after another from the open response, uploaded concurrently;
        ``head`` holds the first bytes already read, if any."""
        part_bytes = part_bytes_for(length, self.plan)
        received = 0

        def next_part(number: int, buffer: memoryview) -> int:
            nonlocal received
            if head:
                first = head.pop()
                buffer[: len(first)] = first
                filled = len(first) + response.readinto(buffer[len(first) :])
                del first
            else:
                filled = response.readinto(buffer)
            received += filled
            if received > self.plan.max_object_bytes:
                raise CopyRefused("oversize", f"more than {self.plan.max_object_bytes} bytes")
            return filled

        with MultipartUpload(
            self.store, self.key, self.attributes, self.plan, part_bytes, self.expected_md5s
        ) as upload:
            upload.run_in_order(next_part)
            if length is not None and received != length:
                raise CopyFailed("length", f"received {received} of {length} bytes")
            created = upload.complete()
        return CopyResult(created=created, size=received, mode="streamed", dropped_headers=dropped)

    def ranged(
        self,
        response: OriginResponse,
        length: int,
        dropped: tuple[DroppedHeader, ...],
        progress: Progress | None = None,
        point: ResumePoint | None = None,
    ) -> CopyResult:
        """The first part (of those missing) from the open response, the others by
        parallel ranged GETs; resumable when ``progress`` is given and the version has a
        validator to resume against."""
        base = point.checkpoint if point is not None else None
        part_bytes = base.part_bytes if base is not None else part_bytes_for(length, self.plan)
        count = part_count(length, part_bytes)
        if base is not None:
            validators = Validators(
                base.etag, base.last_modified, base.content_encoding, base.length
            )
        else:
            validators = validators_of(response, length)
        numbers = point.missing if point is not None else tuple(range(1, count + 1))
        first = numbers[0] if numbers else 0  # none: every part is kept, only completion
        fetched = 0
        # SHA-256 of each part's end, the proof a resume re-reads (checkpoint.tails).
        tails: dict[int, str] = dict(base.tails) if base is not None else {}

        def size_of(number: int) -> int:
            return part_size(number, part_bytes, length)

        def fetch(number: int, buffer: memoryview) -> int:
            nonlocal fetched
            start = (number - 1) * part_bytes
            size = size_of(number)
            if number == first:
                filled = response.readinto(buffer[:size])
                response.close()  # the rest of this body comes by ranges
                if filled != size:
                    raise CopyFailed("length", f"body ended after {filled} of {size} bytes")
            else:
                self.origin.get_range_into(
                    response.url, start, validators, buffer[:size], self.budget
                )
            tails[number] = tail_digest(buffer[:size])
            fetched += size
            return size

        resumable = progress is not None and _resumable(
            validators, self.expected_md5s, part_bytes, self.plan
        )
        admission = PartAdmission(
            self.plan.handover_at if resumable else None,
            rate=base.part_rate if base is not None else 0.0,
        )
        with MultipartUpload(
            self.store,
            self.key,
            self.attributes,
            self.plan,
            part_bytes,
            self.expected_md5s,
            resume_from=base,
            resumable_md5=resumable and bool(self.expected_md5s),
        ) as upload:

            def snapshot() -> Checkpoint:
                parts, state = upload.saved_parts(size_of)
                return Checkpoint(
                    upload_id=upload.upload_id,
                    length=length,
                    part_bytes=part_bytes,
                    etag=validators.etag,
                    last_modified=validators.last_modified,
                    content_encoding=validators.content_encoding,
                    parts=parts,
                    expected_md5s=self.expected_md5s,
                    md5_state=state,
                    part_rate=admission.rate,
                    origin_bytes=(base.origin_bytes if base is not None else 0) + fetched,
                    invocations=(base.invocations + 1 if base is not None else 1),
                    replaces=self.store.replaces,
                    tails=proof_tails(parts, tails),
                )

            writer = ProgressWriter(progress, snapshot) if resumable and progress else None
            finished = _run_saving_progress(
                upload, numbers, fetch, admission, size_of, writer, progress, snapshot
            )
            if not finished:
                upload.keep()
                return CopyResult(
                    created=False,
                    size=length,
                    mode="ranged",
                    dropped_headers=dropped,
                    handover=snapshot(),
                )
            try:
                created = upload.complete(count)
            except StoreError as error:
                # Every part is in S3: a redelivery only proves the bytes and completes.
                if writer is not None and progress is not None:
                    _keep_for_redelivery(error, upload, progress, snapshot)
                raise
            done = snapshot()
        return CopyResult(
            created=created,
            size=length,
            mode="ranged",
            dropped_headers=dropped,
            checksum=upload.checksum,
            origin_bytes=done.origin_bytes,
            invocations=done.invocations,
        )


def _run_saving_progress(
    upload: MultipartUpload,
    numbers: Sequence[int],
    fetch: PartReader,
    admission: PartAdmission,
    size_of: Callable[[int], int],
    writer: ProgressWriter | None,
    progress: Progress | None,
    snapshot: Callable[[], Checkpoint],
) -> bool:
    """``run_concurrently`` with the checkpoint written as parts complete (``writer``),
    kept for the redelivery when the copy fails on the way; False at the handover."""
    upload.on_progress = writer.changed if writer is not None else None
    try:
        finished = upload.run_concurrently(numbers, fetch, admission, size_of)
    except (OriginError, StoreError, CopyFailed) as error:
        if writer is not None:
            writer.stop()
            if progress is not None and not writer.lost:
                _keep_for_redelivery(error, upload, progress, snapshot)
        raise
    finally:
        if writer is not None:
            writer.stop()
    if writer is not None and writer.lost:
        upload.keep()  # another worker holds the lease, and with it this upload
        raise CopyFailed("lease_lost", "another worker took the lease over")
    return finished


def _keep_for_redelivery(
    error: Exception,
    upload: MultipartUpload,
    progress: Progress,
    snapshot: Callable[[], Checkpoint],
) -> None:
    """A resumable copy failed on the way (origin 5xx, reset, timeout, S3 throttling): the
    parts already in S3 are kept with the checkpoint, for the redelivery to resume. Only
    failures of transport are such: a permanent origin answer is not, and neither is a
    check that failed on the bytes (those abort, so the retry starts over)."""
    if isinstance(error, OriginError) and error.permanent:
        return
    if isinstance(error, CopyFailed) and error.reason not in _TRANSPORT_FAILURES:
        return
    try:
        kept = progress.keep(snapshot())
    except StoreError:
        kept = False
    if kept:
        upload.keep()


def _digest(algorithm: str, data: bytes) -> str | None:
    """``data``'s digest in the form S3 reports it (``unchanged_bytes``)."""
    if algorithm == "sha256":
        return base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")
    if algorithm == "crc32":
        return crc32_base64(data)
    if algorithm == "md5":
        return hashlib.md5(data).hexdigest()
    return None


def _resumable(
    validators: Validators,
    expected_md5s: tuple[ExpectedMD5, ...],
    part_bytes: int,
    plan: CopyPlan,
) -> bool:
    """A copy can hand over when the next invocation can prove it copies the same object
    (a strong ETag, or an MD5 of the whole object checked at the end: a Last-Modified or
    a weak ETag may stay the same over new bytes) and, with an MD5 to check, continue it
    between parts."""
    if plan.handover_at is None:
        return False
    if not expected_md5s:
        return is_strong_etag(validators.etag)
    return md5_state.available() and part_bytes % 64 == 0
