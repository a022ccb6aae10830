"""One verified, streaming copy of an origin object into the bucket.

Small objects (up to one part) go up in a single conditional PutObject. Larger ones go
up as a multipart upload whose parts upload concurrently; when the origin advertises
``Accept-Ranges: bytes`` and a length, the parts are also fetched concurrently by ranged
GETs (the first part comes from the response already open), which is what makes a copy
across a slow, long path fast.

Memory bound: at most ``parts_in_flight`` part buffers exist at once, each of
``part_bytes`` (8 × 8 MiB = 64 MiB with the defaults), plus one 1 MiB socket read per
connection. A buffer pool with ``parts_in_flight`` slots enforces it: a buffer is taken
before a part is read and given back only when that part is uploaded and, when an MD5 is
checked, hashed (a part that arrived before its predecessors waits, holding its buffer).
The buffers are reused from part to part, so the heap does not grow with the object.

The MD5 runs in its own thread, in part order, while parts upload: hashing (the one
inherently serial step) never holds up an upload.

Nothing becomes visible unless every byte arrived and checked out: the upload is
completed (``IfNoneMatch='*'``) only after the length and the MD5s the origin vouched for
(``integrity.py``) matched; any failure aborts the upload. Before any body byte is read,
``accept_response`` decides from the status and headers alone whether the response may
be stored at all (``storable.py``) and how big it may be.

A ranged copy given its record's lease (``progress``) is resumable: it records its
checkpoint in the lease as parts complete (``progress.py``), starts only the parts that
end before the handover point (``handover.py``), and there stops, returning the
checkpoint for a continuation (``continuation.py``); a copy that inherited a checkpoint
continues it (``resume.py``), MD5 state included (``md5_state.py``). A failure on the way
keeps the parts for the redelivery instead of aborting; checks on the bytes still abort.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import itertools
import math
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Final

from backfill_worker import md5_state
from backfill_worker.checkpoint import Checkpoint, SavedPart
from backfill_worker.handover import PartClock
from backfill_worker.integrity import ExpectedMD5, expected_md5s
from backfill_worker.md5_state import MD5State, MD5StateError, ResumableMD5
from backfill_worker.progress import Progress, ProgressWriter
from backfill_worker.resume import ResumePoint, resume_point
from backfill_worker.storable import DroppedHeader, Refusal, decide
from shared.object_store import (
    ObjectAttributes,
    ObjectStore,
    StoreError,
    UploadedPart,
    crc32_base64,
)
from shared.origin import (
    OriginClient,
    OriginError,
    OriginResponse,
    Validators,
    declared_length,
    read_exactly,
    validators_of,
)
from shared.read_deadline import ReadBudget

# Failures of a part that say nothing about the bytes already in S3.
_TRANSPORT_FAILURES: Final = frozenset({"length", "aborted"})
# S3 allows at most 10,000 parts; bigger objects get bigger parts (and a bigger bound).
MAX_PARTS: Final = 10_000
# How long the part submitter waits for a permit before checking for a failed part.
_PERMIT_POLL_SECONDS: Final = 0.1


class CopyRefused(Exception):
    """The object must not be copied (see ``storable``, or oversize): permanent, no retry
    helps. ``directive`` names the header that decided, when one did."""

    def __init__(self, reason: str, detail: str, directive: str | None = None) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.directive = directive


class CopyFailed(Exception):
    """The bytes did not check out (length, MD5, origin changed): transient, retried."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class CopyPlan:
    """How big a copy may be, how it is cut, and until when it may start new parts."""

    max_object_bytes: int
    part_bytes: int
    parts_in_flight: int
    # ``time.monotonic()`` after which no new part starts: the copy is abandoned (upload
    # aborted, transient failure) while the invocation still has time to clean up,
    # rather than be killed by the Lambda timeout with an upload left open.
    deadline: float | None = None
    # ``time.monotonic()`` after which a resumable copy starts no part and hands over to
    # a continuation (see ``handover.py``); None: the copy never hands over.
    handover_at: float | None = None


@dataclass(frozen=True, slots=True)
class CopyTerms:
    """What a copy adds for freshness: ``metadata`` joins the copy's own (``fetched-at``);
    ``conditions`` make the GET conditional (a 304 raises ``CopyUnchanged``); a 200 whose
    ETag is ``unchanged_etag`` raises ``CopyUnchanged`` before any byte is read."""

    metadata: Mapping[str, str] = field(default_factory=dict)
    conditions: Mapping[str, str] = field(default_factory=dict)
    unchanged_etag: str | None = None
    # The stored copy's MD5 (hex): a one-part body with these very bytes raises
    # ``CopyUnchanged`` instead of being written again (origins without validators).
    unchanged_md5: str | None = None


class CopyUnchanged(Exception):
    """The origin answered 304, or 200 with the version the copy already holds."""


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
        return _copy_within(origin, store, key, url, plan, budget, terms or CopyTerms(), progress)


def _copy_within(
    origin: OriginClient,
    store: ObjectStore,
    key: str,
    url: str,
    plan: CopyPlan,
    budget: ReadBudget,
    terms: CopyTerms,
    progress: Progress | None = None,
) -> CopyResult:
    if progress is not None and progress.inherited is not None:
        resumed = _resumed(origin, store, key, url, plan, budget, terms, progress)
        if resumed is not None:
            return resumed
    if terms.conditions:
        response = origin.get(url, budget, conditional=terms.conditions)
    else:
        response = origin.get(url, budget)
    try:
        if response.status == 304 and terms.conditions:
            raise CopyUnchanged("304 Not Modified")
        etag = response.headers.get("ETag")
        if terms.unchanged_etag is not None and etag == terms.unchanged_etag:
            raise CopyUnchanged(etag)  # a 200 of the version the copy already holds
        accepted = accept_response(response.status, response.headers, plan)
        length = accepted.length
        attributes = accepted.attributes
        if terms.metadata:
            attributes = replace(attributes, metadata={**attributes.metadata, **terms.metadata})
        copier = _Copier(origin, store, key, plan, attributes, accepted.expected_md5s, budget)
        copier.unchanged_md5 = terms.unchanged_md5
        dropped = accepted.dropped
        if length is not None and length <= plan.part_bytes:
            data = read_exactly(response, length)
            return copier.single(data, dropped)
        if length is None:
            # The list lets ``streamed`` drop this part once it sits in a pool buffer.
            head = [response.read(plan.part_bytes)]
            if len(head[0]) < plan.part_bytes:  # the whole body fit in one part
                return copier.single(head.pop(), dropped)
            return copier.streamed(response, head, None, dropped)
        if response.accepts_ranges:
            return copier.ranged(response, length, dropped, progress)
        return copier.streamed(response, [], length, dropped)
    finally:
        response.close()


def _resumed(
    origin: OriginClient,
    store: ObjectStore,
    key: str,
    url: str,
    plan: CopyPlan,
    budget: ReadBudget,
    terms: CopyTerms,
    progress: Progress,
) -> CopyResult | None:
    """Continue the inherited checkpoint when it still holds (``resume.py``); None when
    the copy must start over."""
    point = resume_point(
        origin,
        store,
        key,
        url,
        progress,
        max_object_bytes=plan.max_object_bytes,
        part_size_for=lambda length: _part_size(length, plan),
        budget=budget,
    )
    if point is None:
        return None
    try:
        # Same version (If-Range held): the headers that decided the copy are
        # the same; checked again all the same, as for a 200.
        verdict = decide(200, point.response.headers)
        if isinstance(verdict, Refusal):
            store.abort(key, point.checkpoint.upload_id)
            raise CopyRefused(verdict.reason, verdict.detail, verdict.directive)
        attributes = verdict.attributes
        if terms.metadata:
            attributes = replace(attributes, metadata={**attributes.metadata, **terms.metadata})
        copier = _Copier(
            origin,
            store,
            key,
            plan,
            attributes,
            point.checkpoint.expected_md5s,
            budget,
        )
        return copier.ranged(
            point.response, point.checkpoint.length, verdict.dropped, progress, point
        )
    finally:
        point.response.close()


@dataclass(frozen=True, slots=True)
class AcceptedResponse:
    """A response the copy may store, and how: what S3 keeps, what it loses, what the
    body must measure up to."""

    attributes: ObjectAttributes
    dropped: tuple[DroppedHeader, ...]
    expected_md5s: tuple[ExpectedMD5, ...]
    length: int | None


def accept_response(status: int, headers: Mapping[str, str], plan: CopyPlan) -> AcceptedResponse:
    """Plan the copy of a response from its status and headers alone, before any body
    byte is read. Raises ``CopyRefused`` and nothing else, whatever the headers hold."""
    verdict = decide(status, headers)
    if isinstance(verdict, Refusal):
        raise CopyRefused(verdict.reason, verdict.detail, verdict.directive)
    expected = expected_md5s(headers)
    if isinstance(expected, Refusal):
        raise CopyRefused(expected.reason, expected.detail, expected.directive)
    length = declared_length(headers.get("Content-Length"))  # decide() vetted it
    if length is not None and length > plan.max_object_bytes:
        raise CopyRefused("oversize", f"{length} bytes > limit {plan.max_object_bytes}")
    return AcceptedResponse(verdict.attributes, verdict.dropped, expected, length)


class _Copier:
    def __init__(
        self,
        origin: OriginClient,
        store: ObjectStore,
        key: str,
        plan: CopyPlan,
        attributes: ObjectAttributes,
        expected_md5s: tuple[ExpectedMD5, ...],
        budget: ReadBudget,
    ) -> None:
        self.budget = budget
        self.unchanged_md5: str | None = None
        self.origin = origin
        self.store = store
        self.key = key
        self.plan = plan
        self.attributes = attributes
        self.expected_md5s = expected_md5s

    def single(self, data: bytes, dropped: tuple[DroppedHeader, ...]) -> CopyResult:
        if len(data) > self.plan.max_object_bytes:
            raise CopyRefused("oversize", f"more than {self.plan.max_object_bytes} bytes")
        if self.expected_md5s or self.unchanged_md5:
            digest = hashlib.md5(data).hexdigest()
            if self.expected_md5s:
                _check_md5(self.expected_md5s, digest)
            if digest == self.unchanged_md5:
                raise CopyUnchanged("the same bytes as the copy")
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
        part_bytes = _part_size(length, self.plan)
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

        with _MultipartUpload(
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
        part_bytes = base.part_bytes if base is not None else _part_size(length, self.plan)
        count = math.ceil(length / part_bytes)
        if base is not None:
            validators = Validators(
                base.etag, base.last_modified, base.content_encoding, base.length
            )
        else:
            validators = validators_of(response, length)
        numbers = point.missing if point is not None else tuple(range(1, count + 1))
        first = numbers[0]
        fetched = 0

        def size_of(number: int) -> int:
            return min(part_bytes, length - (number - 1) * part_bytes)

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
            fetched += size
            return size

        resumable = progress is not None and _resumable(
            validators, self.expected_md5s, part_bytes, self.plan
        )
        admission = PartClock(
            self.plan.handover_at if resumable else None,
            self.plan.deadline,
            rate=base.part_rate if base is not None else 0.0,
        )
        with _MultipartUpload(
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
            created = upload.complete(count)
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


def _check_md5(expected: tuple[ExpectedMD5, ...], actual: str) -> None:
    for promise in expected:
        if actual != promise.hex:
            raise CopyFailed("md5", f"{promise.source} says {promise.hex}, received {actual}")


def _part_size(length: int | None, plan: CopyPlan) -> int:
    if length is None:
        return plan.part_bytes
    # A grown part stays a whole number of 64-byte MD5 blocks (a resumable MD5 saves its
    # state only between blocks).
    grown = -(-math.ceil(length / MAX_PARTS) // 64) * 64
    return max(plan.part_bytes, grown)


def _run_saving_progress(
    upload: _MultipartUpload,
    numbers: Sequence[int],
    fetch: PartReader,
    admission: PartClock,
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
    upload: _MultipartUpload,
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


def _resumable(
    validators: Validators,
    expected_md5s: tuple[ExpectedMD5, ...],
    part_bytes: int,
    plan: CopyPlan,
) -> bool:
    """A copy can hand over when the next invocation can tell the version (a strong ETag
    or a Last-Modified) and, with an MD5 to check, continue it between parts."""
    if plan.handover_at is None:
        return False
    strong = validators.etag is not None and not validators.etag.startswith("W/")
    if not strong and validators.last_modified is None:
        return False
    if not expected_md5s:
        return True
    return md5_state.available() and part_bytes % 64 == 0


class _OrderedMD5:
    """MD5 of parts handed over out of order, computed in part order by its own thread.

    ``add`` never blocks; ``on_hashed(number)`` runs in the hashing thread once part
    ``number`` is in the digest (its buffer is no longer needed for it).

    ``resumable``: the MD5 is one whose state can be saved (``md5_state``), optionally
    continuing ``state`` (which covers parts 1..``first - 1``); after each part its state
    is kept, so a checkpoint can carry the MD5 of a prefix of parts all in S3."""

    def __init__(
        self,
        on_hashed: Callable[[int], None],
        *,
        resumable: bool = False,
        state: MD5State | None = None,
        first: int = 1,
    ) -> None:
        self._md5: Any = ResumableMD5(state) if resumable else hashlib.md5()
        self._resumable = resumable
        self.states: dict[int, MD5State] = {}  # part number → state after it
        if state is not None:
            self.states[first - 1] = state
        self._on_hashed = on_hashed
        self._next = first
        self._waiting: dict[int, bytearray] = {}
        self._stopped = False
        self._ready = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="part-md5", daemon=True)
        self._thread.start()

    def add(self, number: int, data: bytearray) -> None:
        with self._ready:
            self._waiting[number] = data
            self._ready.notify()

    def hexdigest(self, parts: int) -> str:
        """The digest once parts 1..``parts`` are hashed; stops the hashing thread."""
        with self._ready:
            self._ready.wait_for(lambda: self._next > parts or self._stopped)
            if self._next <= parts:
                raise CopyFailed("md5", f"hashing stopped at part {self._next} of {parts}")
        self.stop()
        return self._md5.hexdigest()

    def stop(self) -> None:
        with self._ready:
            self._stopped = True
            self._waiting.clear()  # parts that will never be hashed: their buffers go
            self._ready.notify_all()
        if threading.current_thread() is not self._thread:
            self._thread.join()

    def _run(self) -> None:
        while True:
            with self._ready:
                self._ready.wait_for(lambda: self._next in self._waiting or self._stopped)
                if self._stopped:
                    return
                number = self._next
                data = self._waiting.pop(number)
            self._md5.update(data)  # outside the lock: parts keep arriving meanwhile
            del data
            state = None
            if self._resumable:
                with contextlib.suppress(MD5StateError):  # a last part ends mid-block
                    state = self._md5.state()
            with self._ready:
                if state is not None:
                    self.states[number] = state
                self._next += 1
                self._ready.notify_all()
            self._on_hashed(number)


class _BufferPool:
    """At most ``count`` part buffers of ``size`` bytes, made on demand and reused.

    This is the copy's memory bound (see the module docstring). Reusing buffers rather
    than allocating 8 MiB per part keeps the heap from growing with the object size."""

    def __init__(self, count: int, size: int) -> None:
        self.size = size
        self._free: queue.LifoQueue[bytearray] = queue.LifoQueue()
        self._slots = threading.Semaphore(count)
        self._closed = False

    def take(self, timeout: float) -> bytearray | None:
        """A buffer of ``size`` bytes, or None when none came free within ``timeout``."""
        if not self._slots.acquire(timeout=timeout):
            return None
        try:
            return self._free.get_nowait()
        except queue.Empty:
            return bytearray(self.size)

    def give(self, buffer: bytearray) -> None:
        """Return a buffer; one cut short for a last part is dropped (its slot comes back),
        and so is every buffer once the pool is closed."""
        if len(buffer) == self.size and not self._closed:
            self._free.put(buffer)
        self._slots.release()

    def close(self) -> None:
        """Drop the free buffers; those still in use are dropped when given back."""
        self._closed = True
        while True:
            try:
                self._free.get_nowait()
            except queue.Empty:
                return


PartReader = Callable[[int, memoryview], int]


class _MultipartUpload:
    """An open multipart upload: aborted on any failure (unless kept for a continuation),
    part buffers from a bounded pool, the MD5 (when one is expected) checked before
    completion. ``resume_from`` continues a checkpoint's upload, parts and MD5 state."""

    def __init__(
        self,
        store: ObjectStore,
        key: str,
        attributes: ObjectAttributes,
        plan: CopyPlan,
        part_bytes: int,
        expected_md5s: tuple[ExpectedMD5, ...],
        *,
        resume_from: Checkpoint | None = None,
        resumable_md5: bool = False,
    ) -> None:
        self.store = store
        self.key = key
        self.attributes = attributes
        self.plan = plan
        self.upload_id = resume_from.upload_id if resume_from is not None else ""
        self.parts: list[UploadedPart] = [
            part.uploaded() for part in (resume_from.parts if resume_from else ())
        ]
        self.checksum: str | None = None
        self.on_progress: Callable[[], None] | None = None
        self._pool = _BufferPool(plan.parts_in_flight, part_bytes)
        self._expected_md5s = expected_md5s
        state = resume_from.md5_state if resume_from is not None else None
        self._hashed_before = 0 if state is None else state.length // part_bytes
        self._digest = (
            _OrderedMD5(
                self._done,
                resumable=resumable_md5 or resume_from is not None,
                state=state,
                first=self._hashed_before + 1,
            )
            if expected_md5s
            else None
        )
        # A buffer goes back to the pool when every user is done: its upload, its hash.
        self._users_per_part = 2 if self._digest is not None else 1
        self._in_use: dict[int, tuple[bytearray, int]] = {}
        self._handed_over = 0
        self._failure: BaseException | None = None
        self._kept = False
        self._lock = threading.Lock()

    def __enter__(self) -> _MultipartUpload:
        if not self.upload_id:
            self.upload_id = self.store.start_multipart(self.key, self.attributes)
        return self

    def keep(self) -> None:
        """Leave the upload open whatever happens next: a continuation goes on with it."""
        self._kept = True

    def saved_parts(
        self, size_of: Callable[[int], int]
    ) -> tuple[tuple[SavedPart, ...], MD5State | None]:
        """The parts a checkpoint may list, and the MD5 state over them: every uploaded
        part; with an MD5, only parts 1..k, all uploaded and hashed (the next invocation
        has no bytes of a later part to hash)."""
        with self._lock:
            uploaded = {part.number: part for part in self.parts}
        state = None
        if self._digest is not None:
            states = dict(self._digest.states)
            covered = self._hashed_before
            while covered + 1 in uploaded and covered + 1 in states:
                covered += 1
            state = states.get(covered)
            uploaded = {n: p for n, p in uploaded.items() if n <= covered}
        parts = tuple(
            SavedPart(n, size_of(n), part.etag, part.crc32) for n, part in sorted(uploaded.items())
        )
        return parts, state

    def __exit__(self, kind: object, error: BaseException | None, trace: object) -> None:
        if self._digest is not None:
            self._digest.stop()
        # A warm container makes copy after copy: the buffers go now, not whenever the
        # garbage collector breaks this upload's cycles (hasher ↔ upload ↔ progress).
        self._pool.close()
        self.on_progress = None
        if error is not None and not self._kept:
            try:
                self.store.abort(self.key, self.upload_id)
            except StoreError as abort_error:
                # The copy already failed; S3's lifecycle rule removes what this left.
                error.add_note(f"and the abort failed too: {abort_error}")

    def complete(self, count: int | None = None) -> bool:
        """Check the MD5, then make the object visible unless the key exists; ``count``:
        the parts the object must have (all of them, from every invocation)."""
        total = self._handed_over if count is None else count
        if self._digest is not None:
            _check_md5(self._expected_md5s, self._digest.hexdigest(total))
        by_number = {part.number: part for part in self.parts}
        if sorted(by_number) != list(range(1, total + 1)):
            missing = sorted(set(range(1, total + 1)) - set(by_number))[:5]
            raise CopyFailed("parts", f"parts missing from the upload: {missing}")
        parts = [by_number[number] for number in range(1, total + 1)]
        self.checksum = composite_crc32(parts)
        created = self.store.complete_if_absent(self.key, self.upload_id, parts)
        if not created:
            self.store.abort(self.key, self.upload_id)  # 412 leaves the upload open
        return created

    def run_in_order(self, read_part: PartReader) -> None:
        """Read parts with ``read_part(n, buffer)`` in this thread, upload them in the pool;
        a part shorter than the buffer is the last one."""
        with ThreadPoolExecutor(self.plan.parts_in_flight, "part-upload") as pool:
            futures: list[Future[None]] = []
            try:
                for number in itertools.count(1):
                    buffer = self._take_buffer()
                    try:
                        # Released before the upload: a last part is cut to size in place.
                        with memoryview(buffer) as view:
                            filled = read_part(number, view)
                    except BaseException:
                        self._pool.give(buffer)
                        raise
                    if filled == 0 and number > 1:
                        self._pool.give(buffer)
                        break
                    self._hand_over(number, buffer, filled)
                    futures.append(pool.submit(self._upload, number, buffer))
                    if filled < self._pool.size:
                        break
            except BaseException:
                self._fail_fast(pool)
                raise
        _raise_first_failure(futures)

    def run_concurrently(
        self,
        numbers: Sequence[int],
        fetch: PartReader,
        admission: PartClock | None = None,
        size_of: Callable[[int], int] | None = None,
    ) -> bool:
        """Fetch and upload ``numbers`` in the pool, started in order. False when the
        handover point stopped it: parts in flight then finish if they can before the
        cleanup margin (the read budget ends those that cannot) and are otherwise dropped."""
        stopped = False
        with ThreadPoolExecutor(self.plan.parts_in_flight, "part-copy") as pool:
            futures: list[Future[None]] = []
            try:
                for index, number in enumerate(numbers):
                    # The first part always starts: every invocation makes progress.
                    gate = admission if index > 0 else None
                    size = size_of(number) if size_of is not None else self._pool.size
                    buffer = self._take_buffer_before(gate, size)
                    if buffer is None:
                        stopped = True
                        break
                    futures.append(
                        pool.submit(self._fetch_and_upload, number, buffer, fetch, admission)
                    )
            except BaseException:
                self._fail_fast(pool)
                raise
        if not stopped:
            _raise_first_failure(futures)
        # Parts that failed after the handover point were dropped: the next invocation
        # fetches them again (and sees any change of the origin with If-Range).
        with self._lock:
            uploaded = {part.number for part in self.parts}
        return not stopped and all(number in uploaded for number in numbers)

    def _fetch_and_upload(
        self, number: int, buffer: bytearray, fetch: PartReader, admission: PartClock | None
    ) -> None:
        try:
            self._fetch_and_upload_once(number, buffer, fetch, admission)
        except BaseException as error:
            self._record_failure(error)
            raise

    def _fetch_and_upload_once(
        self, number: int, buffer: bytearray, fetch: PartReader, admission: PartClock | None
    ) -> None:
        if self._failure is not None:
            self._pool.give(buffer)
            return  # another part failed: spend no more work on this copy
        started = time.monotonic()
        try:
            with memoryview(buffer) as view:
                filled = fetch(number, view)
        except Exception:
            self._pool.give(buffer)
            if admission is not None and admission.past_handover():
                # Handing over: this part is dropped (the read budget ended it, or the
                # origin failed); the parts that did arrive still go up, and the next
                # invocation fetches this one again, If-Range first.
                return
            raise
        except BaseException:
            self._pool.give(buffer)
            raise
        self._hand_over(number, buffer, filled)
        self._upload(number, buffer)
        if admission is not None and self._failure is None:
            admission.record(filled, time.monotonic() - started)

    def _hand_over(self, number: int, buffer: bytearray, filled: int) -> None:
        """A part is in its buffer: cut a last part to size (S3 takes a bytearray, not a
        memoryview), register its users, and queue it for hashing."""
        if filled < len(buffer):
            del buffer[filled:]
        with self._lock:
            self._in_use[number] = (buffer, self._users_per_part)
            self._handed_over += 1
        if self._digest is not None:
            self._digest.add(number, buffer)

    def _upload(self, number: int, buffer: bytearray) -> None:
        try:
            if self._failure is not None:
                return  # another part failed: spend no more work on this copy
            part = self.store.upload_part(self.key, self.upload_id, number, buffer)
            with self._lock:
                self.parts = [p for p in self.parts if p.number != number] + [part]
        except BaseException as error:
            self._record_failure(error)
            raise
        finally:
            self._done(number)

    def _done(self, number: int) -> None:
        with self._lock:
            buffer, users = self._in_use[number]
            if users > 1:
                self._in_use[number] = (buffer, users - 1)
            else:
                del self._in_use[number]
        if users <= 1:
            self._pool.give(buffer)
        if self.on_progress is not None:
            self.on_progress()

    def _record_failure(self, error: BaseException) -> None:
        with self._lock:
            self._failure = self._failure or error

    def _fail_fast(self, pool: ThreadPoolExecutor) -> None:
        # Tell running parts to stop, drop the queued ones, wait for the rest to return.
        self._record_failure(CopyFailed("aborted", "the copy is being abandoned"))
        pool.shutdown(wait=True, cancel_futures=True)

    def _take_buffer(self) -> bytearray:
        buffer = self._take_buffer_before(None, 0)
        assert buffer is not None  # only the handover point says no, and there is none
        return buffer

    def _take_buffer_before(self, admission: PartClock | None, size: int) -> bytearray | None:
        """A buffer for the next part; None when the handover point says no part starts."""
        while True:
            if admission is not None and admission.past_handover():
                return None
            if self.plan.deadline is not None and time.monotonic() > self.plan.deadline:
                self._record_failure(
                    CopyFailed("deadline", "the invocation is about to time out; retry later")
                )
            buffer = self._pool.take(timeout=_PERMIT_POLL_SECONDS)
            if self._failure is not None:
                if buffer is not None:
                    self._pool.give(buffer)
                raise self._failure
            if buffer is not None:
                if admission is not None and not admission.may_start(size):
                    self._pool.give(buffer)
                    return None
                return buffer


def composite_crc32(parts: Sequence[UploadedPart]) -> str:
    """S3's checksum of a multipart object with CRC32 parts: the CRC32 of the parts'
    CRC32s, then ``-`` and the number of parts (what S3 records and HeadObject shows)."""
    joined = b"".join(base64.b64decode(part.crc32) for part in parts)
    return f"{crc32_base64(joined)}-{len(parts)}"


def _raise_first_failure(futures: list[Future[None]]) -> None:
    for future in futures:
        error = future.exception()
        if error is not None:
            raise error
