"""A multipart upload in bounded memory: the buffer pool, the upload, and the MD5 that
runs beside it.

Memory bound: at most ``parts_in_flight`` part buffers exist at once, each of the copy's
part size (8 × 8 MiB = 64 MiB with the defaults), plus one 1 MiB socket read per
connection. ``BufferPool`` enforces it: a buffer is taken before a part is read and
given back only when that part is uploaded and, when an MD5 is checked, hashed (a part
that arrived before its predecessors waits, holding its buffer). The buffers are reused
from part to part, so the heap does not grow with the object.

Ordering: the MD5 (``OrderedMD5``) runs in its own thread, in part order, while parts
upload: hashing (the one inherently serial step) never holds up an upload.

``MultipartUpload`` aborts the upload on any failure (unless it is kept for a
continuation or a redelivery) and completes it only after the MD5 matched and every part
is there, conditionally (``IfNoneMatch='*'``, or ``IfMatch`` when replacing).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import itertools
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Final

from backfill_worker.transfer.admission import PartAdmission
from backfill_worker.transfer.checkpoint import Checkpoint, SavedPart
from backfill_worker.transfer.errors import CopyFailed
from backfill_worker.transfer.integrity import ExpectedMD5, check_md5
from backfill_worker.transfer.md5_state import MD5State, MD5StateError, ResumableMD5
from backfill_worker.transfer.plan import CopyPlan
from shared.object_store import (
    ObjectAttributes,
    ObjectStore,
    StoreError,
    UploadedPart,
    crc32_base64,
)

# How long the part submitter waits for a permit before checking for a failed part.
_PERMIT_POLL_SECONDS: Final = 0.1


class OrderedMD5:
    """MD5 of parts that arrive out of order, computed in part order by its own thread.

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


class BufferPool:
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


class MultipartUpload:
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
        self._pool = BufferPool(plan.parts_in_flight, part_bytes)
        self._expected_md5s = expected_md5s
        state = resume_from.md5_state if resume_from is not None else None
        self._hashed_before = 0 if state is None else state.length // part_bytes
        self._digest = (
            OrderedMD5(
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
        self._staged = 0
        self._failure: BaseException | None = None
        self._kept = False
        self._lock = threading.Lock()

    def __enter__(self) -> MultipartUpload:
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
        total = self._staged if count is None else count
        if self._digest is not None:
            check_md5(self._expected_md5s, self._digest.hexdigest(total))
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
                    filled = self._read_into(number, buffer, read_part)
                    if filled == 0 and number > 1:
                        self._pool.give(buffer)
                        break
                    self._stage_part(number, buffer, filled)
                    futures.append(pool.submit(self._upload, number, buffer))
                    if filled < self._pool.size:
                        break
            except BaseException:
                self._fail_fast(pool)
                raise
        raise_first_failure(futures)

    def run_concurrently(
        self,
        numbers: Sequence[int],
        fetch: PartReader,
        admission: PartAdmission | None = None,
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
            raise_first_failure(futures)
        # Parts that failed after the handover point were dropped: the next invocation
        # fetches them again (and sees any change of the origin with If-Range).
        with self._lock:
            uploaded = {part.number for part in self.parts}
        return not stopped and all(number in uploaded for number in numbers)

    def _fetch_and_upload(
        self, number: int, buffer: bytearray, fetch: PartReader, admission: PartAdmission | None
    ) -> None:
        try:
            self._fetch_and_upload_once(number, buffer, fetch, admission)
        except BaseException as error:
            self._record_failure(error)
            raise

    def _fetch_and_upload_once(
        self, number: int, buffer: bytearray, fetch: PartReader, admission: PartAdmission | None
    ) -> None:
        if self._failure is not None:
            self._pool.give(buffer)
            return  # another part failed: spend no more work on this copy
        started = time.monotonic()
        try:
            filled = self._read_into(number, buffer, fetch)
        except Exception:
            if admission is not None and admission.past_handover():
                # Handing over: this part is dropped (the read budget ended it, or the
                # origin failed); the parts that did arrive still go up, and the next
                # invocation fetches this one again, If-Range first.
                return
            raise
        self._stage_part(number, buffer, filled)
        self._upload(number, buffer)
        if admission is not None and self._failure is None:
            admission.record(filled, time.monotonic() - started)

    def _read_into(self, number: int, buffer: bytearray, read: PartReader) -> int:
        """``read(number, view)`` into ``buffer``; the bytes it filled. On any error the
        buffer goes back to the pool before the error goes on."""
        try:
            # Released before the upload: a last part is cut to size in place.
            with memoryview(buffer) as view:
                return read(number, view)
        except BaseException:
            self._pool.give(buffer)
            raise

    def _stage_part(self, number: int, buffer: bytearray, filled: int) -> None:
        """A part is in its buffer: cut a last part to size (S3 takes a bytearray, not a
        memoryview), register its users, and queue it for hashing."""
        if filled < len(buffer):
            del buffer[filled:]
        with self._lock:
            self._in_use[number] = (buffer, self._users_per_part)
            self._staged += 1
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

    def _take_buffer_before(self, admission: PartAdmission | None, size: int) -> bytearray | None:
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


def raise_first_failure(futures: list[Future[None]]) -> None:
    for future in futures:
        error = future.exception()
        if error is not None:
            raise error
