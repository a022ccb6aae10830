"""The copy's memory bound: never more than ``parts_in_flight`` part buffers alive, even
when an early part is slow and later ones wait for it to be hashed or uploaded; a failure
stops the copy early and aborts the upload."""

from __future__ import annotations

import hashlib
import threading
import time
from typing import Any

import pytest
from requests.structures import CaseInsensitiveDict

from backfill_worker.transfer.copy import copy_object
from backfill_worker.transfer.plan import MAX_PARTS, CopyPlan
from shared.object_store import ObjectAttributes, StoreError, UploadedPart, crc32_base64
from shared.origin import OriginError

PART = 1000
PARTS = 8


def body(size: int) -> bytes:
    return bytes(i % 251 for i in range(size))


class FakeResponse:
    def __init__(self, data: bytes, ranges: bool) -> None:
        self.data = data
        self.position = 0
        self.received = 0
        self.url = "https://origin.example.com/o.bin"
        self.status = 200
        # An S3 origin: its ETag is the MD5 the copy hashes the parts for.
        self.headers = CaseInsensitiveDict(
            {
                "Content-Length": str(len(data)),
                "ETag": f'"{hashlib.md5(data).hexdigest()}"',
                "Server": "AmazonS3",
            }
        )
        if ranges:
            self.headers["Accept-Ranges"] = "bytes"
        self.content_length = len(data)
        self.accepts_ranges = ranges

    def read(self, amount: int) -> bytes:
        piece = self.data[self.position : self.position + amount]
        self.position += len(piece)
        self.received += len(piece)
        return piece

    def readinto(self, buffer: memoryview) -> int:
        piece = self.read(len(buffer))
        buffer[: len(piece)] = piece
        return len(piece)

    def close(self) -> None:
        pass


class FakeOrigin:
    """Counts part buffers handed out that the copy has not finished with."""

    def __init__(self, data: bytes, ranges: bool = True, fail_part: int | None = None) -> None:
        self.data = data
        self.ranges = ranges
        self.fail_part = fail_part
        self.fetched: list[int] = []
        self.lock = threading.Lock()
        self.hold_part: int | None = None
        self.release_held = threading.Event()

    def get(self, url: str, budget: Any = None) -> FakeResponse:
        return FakeResponse(self.data, self.ranges)

    def get_range_into(
        self, url: str, start: int, expected: Any, buffer: memoryview, budget: Any = None
    ) -> None:
        number = start // PART + 1
        with self.lock:
            self.fetched.append(number)
        if number == self.fail_part:
            raise OriginError("reset", permanent=False)
        if number == self.hold_part:
            assert self.release_held.wait(10)
        buffer[:] = self.data[start : start + len(buffer)]


class FakeStore:
    """Part 1's upload blocks until the test lets it go."""

    def __init__(self) -> None:
        self.release_part_one = threading.Event()
        self.parts: dict[int, bytes] = {}
        self.aborted = False
        self.completed: bytes | None = None
        self.replaces: str | None = None  # a fill: completions create (ObjectStore)

    def start_multipart(self, key: str, attributes: ObjectAttributes) -> str:
        return "upload-1"

    def upload_part(self, key: str, upload_id: str, number: int, data: bytearray) -> UploadedPart:
        if number == 1:
            assert self.release_part_one.wait(10)
        self.parts[number] = bytes(data)
        return UploadedPart(number=number, etag=f'"{number}"', crc32=crc32_base64(data))

    def complete_if_absent(self, key: str, upload_id: str, parts: list[UploadedPart]) -> bool:
        self.completed = b"".join(self.parts[p.number] for p in parts)
        return True

    def abort(self, key: str, upload_id: str) -> None:
        self.aborted = True


def wait_for(condition: Any) -> None:
    deadline = time.monotonic() + 10
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.3)  # room for a (wrong) further fetch to show up


def run_copy(
    origin: FakeOrigin, store: FakeStore, plan: CopyPlan
) -> tuple[threading.Thread, dict[str, Any]]:
    result: dict[str, Any] = {}
    url = "https://origin.example.com/o.bin"
    copier = threading.Thread(
        target=lambda: result.update(r=copy_object(origin, store, "o.bin", url, plan))  # type: ignore[arg-type]
    )
    copier.start()
    return copier, result


def test_a_part_waiting_for_its_predecessor_keeps_its_buffer() -> None:
    # Given 8 parts, 3 in flight, and the ranged GET of part 2 stuck: parts after it are
    # uploaded but cannot be hashed (the MD5 runs in part order)
    data = body(PART * PARTS)
    origin, store = FakeOrigin(data), FakeStore()
    store.release_part_one.set()
    origin.hold_part = 2
    plan = CopyPlan(max_object_bytes=10**9, part_bytes=PART, parts_in_flight=3)
    copier, result = run_copy(origin, store, plan)
    # When the copy has gone as far as it can
    wait_for(lambda: len(origin.fetched) >= 3)
    # Then part 1 (hashed and uploaded) freed its buffer, and parts 2, 3, 4 hold all three
    assert copier.is_alive()
    assert sorted(origin.fetched) == [2, 3, 4]
    origin.release_held.set()
    copier.join(timeout=10)
    assert result["r"].mode == "ranged" and store.completed == data


def test_a_slow_upload_holds_its_buffer_too() -> None:
    # Given the upload of part 1 stuck: later parts hash and upload, and free their buffers
    data = body(PART * PARTS)
    origin, store = FakeOrigin(data), FakeStore()
    plan = CopyPlan(max_object_bytes=10**9, part_bytes=PART, parts_in_flight=3)
    copier, result = run_copy(origin, store, plan)
    wait_for(lambda: len(origin.fetched) >= PARTS - 1)
    # Then every other part went through the two remaining buffers; part 1 kept its own
    assert copier.is_alive() and sorted(origin.fetched) == list(range(2, PARTS + 1))
    assert store.completed is None
    store.release_part_one.set()
    copier.join(timeout=10)
    assert store.completed == data


def test_a_failed_part_stops_the_copy_and_aborts() -> None:
    data = body(PART * PARTS)
    origin, store = FakeOrigin(data, fail_part=3), FakeStore()
    store.release_part_one.set()
    plan = CopyPlan(max_object_bytes=10**9, part_bytes=PART, parts_in_flight=2)
    with pytest.raises(OriginError, match="reset"):
        copy_object(origin, store, "o.bin", "https://origin.example.com/o.bin", plan)  # type: ignore[arg-type]
    assert store.aborted and store.completed is None
    assert max(origin.fetched) <= 5  # it stopped fetching soon after the failure


def test_streamed_copy_without_ranges_uploads_in_order() -> None:
    data = body(PART * PARTS + 17)
    origin, store = FakeOrigin(data, ranges=False), FakeStore()
    store.release_part_one.set()
    plan = CopyPlan(max_object_bytes=10**9, part_bytes=PART, parts_in_flight=2)
    result = copy_object(origin, store, "o.bin", "https://origin.example.com/o.bin", plan)  # type: ignore[arg-type]
    assert (result.mode, result.size) == ("streamed", len(data))
    assert origin.fetched == [] and store.completed == data


class PartLimitStore(FakeStore):
    """S3's rule: part numbers run from 1 to 10,000."""

    def upload_part(self, key: str, upload_id: str, number: int, data: bytearray) -> UploadedPart:
        if not 1 <= number <= MAX_PARTS:
            raise StoreError(f"UploadPart {number}: InvalidArgument: part number out of range")
        self.parts[number] = bytes(data)
        return UploadedPart(number=number, etag=f'"{number}"', crc32=crc32_base64(data))


class ChunkedOrigin(FakeOrigin):
    """An origin that sends no Content-Length (chunked): the size is known at the end."""

    def get(self, url: str, budget: Any = None) -> FakeResponse:
        response = FakeResponse(self.data, ranges=False)
        del response.headers["Content-Length"], response.headers["ETag"]
        response.content_length = None  # type: ignore[assignment]
        return response


@pytest.mark.parametrize("extra", [0, 1], ids=["exactly-10000-parts", "one-byte-more"])
def test_a_body_of_unknown_length_up_to_the_size_limit_fits_in_ten_thousand_parts(
    extra: int,
) -> None:
    # Given a size limit of 10,000 parts (plus a byte), and a chunked body that long
    part = 64
    limit = part * MAX_PARTS + extra
    data = body(limit)
    origin, store = ChunkedOrigin(data, ranges=False), PartLimitStore()
    store.release_part_one.set()
    plan = CopyPlan(max_object_bytes=limit, part_bytes=part, parts_in_flight=4)
    # When it is copied
    result = copy_object(origin, store, "o.bin", "https://origin.example.com/o.bin", plan)  # type: ignore[arg-type]
    # Then S3 got at most 10,000 parts and the object is whole
    assert (result.mode, result.size) == ("streamed", limit)
    assert len(store.parts) <= MAX_PARTS and store.completed == data
