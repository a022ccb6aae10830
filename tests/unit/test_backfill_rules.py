"""Pure rules of the backfill: hashing, leases, bounds (what may be stored and which
digests are checked: test_storable.py, test_integrity.py)."""

from __future__ import annotations

import hashlib
import json
import threading
from typing import Any

import pytest
from requests.structures import CaseInsensitiveDict

from backfill_worker.flight.lease import LEASE_MARGIN_SECONDS, SingleFlight, lease_key
from backfill_worker.transfer.multipart import OrderedMD5
from backfill_worker.transfer.plan import CopyPlan, part_bytes_for
from shared.config import BackfillConfig, ConfigError
from shared.object_store import StoredLease, crc32_base64
from shared.origin import OriginClient

MIB = 1024 * 1024


def headers(**values: str) -> CaseInsensitiveDict[str]:
    return CaseInsensitiveDict({name.replace("_", "-"): v for name, v in values.items()})


def test_ordered_md5_hashes_parts_in_order_whatever_their_arrival() -> None:
    hashed: list[int] = []
    digest = OrderedMD5(hashed.append)
    for number, text in [(3, b"gamma"), (2, b"beta"), (4, b"delta"), (1, b"alpha")]:
        digest.add(number, bytearray(text))
    assert digest.hexdigest(parts=4) == hashlib.md5(b"alphabetagammadelta").hexdigest()
    assert hashed == [1, 2, 3, 4]


def test_part_size_grows_only_past_ten_thousand_parts() -> None:
    plan = CopyPlan(max_object_bytes=10**12, part_bytes=8 * MIB, parts_in_flight=8)
    assert part_bytes_for(512 * MIB, plan) == 8 * MIB
    assert part_bytes_for(100_000 * MIB, plan) == 10 * MIB
    # An unknown length is cut for the largest body accepted (10,000 parts of 100 MB)
    assert part_bytes_for(None, plan) == 100_000_000
    default = CopyPlan(max_object_bytes=5 * 1024 * MIB, part_bytes=8 * MIB, parts_in_flight=8)
    assert part_bytes_for(None, default) == 8 * MIB


def test_crc32_is_s3s_base64_big_endian() -> None:
    assert crc32_base64(b"hello") == "NhCmhg=="


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("EDGEFILL_PART_BYTES", str(4 * MIB)),
        ("EDGEFILL_PART_BYTES", "eight"),
        ("EDGEFILL_PARTS_IN_FLIGHT", "0"),
        ("EDGEFILL_PARTS_IN_FLIGHT", "33"),
    ],
)
def test_copy_settings_are_validated(variable: str, value: str) -> None:
    env = {
        "EDGEFILL_BUCKET": "regional",
        "EDGEFILL_ORIGIN_URL": "https://o.example.com",
        variable: value,
    }
    with pytest.raises(ConfigError, match=variable):
        BackfillConfig.from_env(env)


def test_copy_settings_default_to_a_64_mib_bound() -> None:
    config = BackfillConfig.from_env(
        {"EDGEFILL_BUCKET": "regional", "EDGEFILL_ORIGIN_URL": "https://o.example.com"}
    )
    assert config.part_bytes * config.parts_in_flight == 64 * MIB


@pytest.mark.parametrize(
    ("url", "own"),
    [
        ("https://origin.example.com/a", True),
        ("https://ORIGIN.example.com:443/a", True),
        ("http://origin.example.com/a", False),
        ("https://origin.example.com:8443/a", False),
        ("https://origin.example.com.evil.net/a", False),
        ("https://user@evil.net/a", False),
        ("https://user:secret@origin.example.com/a", False),
        ("https://evil.net/origin.example.com", False),
    ],
)
def test_origin_client_stays_on_its_host(url: str, own: bool) -> None:
    assert OriginClient("https://origin.example.com/prefix").is_own(url) is own


def test_origin_url_keeps_the_prefix_and_query() -> None:
    client = OriginClient("https://origin.example.com/prefix")
    assert client.url_for("/a%20b.jpg", "v=1") == "https://origin.example.com/prefix/a%20b.jpg?v=1"


class FakeLeaseStore:
    """Leases in a dict with ETags, honouring IfNoneMatch / IfMatch like S3."""

    def __init__(self) -> None:
        self.objects: dict[str, tuple[bytes, str]] = {}
        self.version = 0
        self.lock = threading.Lock()

    def _etag(self) -> str:
        self.version += 1
        return f'"v{self.version}"'

    def create_lease(self, key: str, body: bytes) -> str | None:
        with self.lock:
            if key in self.objects:
                return None
            self.objects[key] = (body, self._etag())
            return self.objects[key][1]

    def read_lease(self, key: str) -> StoredLease | None:
        with self.lock:
            if key not in self.objects:
                return None
            body, etag = self.objects[key]
            return StoredLease(body=body, etag=etag)

    def replace_lease(self, key: str, body: bytes, etag: str) -> str | None:
        with self.lock:
            if key not in self.objects or self.objects[key][1] != etag:
                return None
            self.objects[key] = (body, self._etag())
            return self.objects[key][1]

    def delete_lease(self, key: str, etag: str) -> bool:
        with self.lock:
            if key not in self.objects or self.objects[key][1] != etag:
                return False
            del self.objects[key]
            return True


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_lease_is_exclusive_until_it_expires_then_taken_over_once() -> None:
    store, clock = FakeLeaseStore(), Clock()
    flight = SingleFlight(store, clock)  # type: ignore[arg-type]
    first = flight.acquire("img/a.jpg", "worker-1", seconds=30)
    assert first is not None and first.key == lease_key("img/a.jpg")
    assert first.key.startswith("_edgefill/leases/") and len(first.key) == 17 + 64
    lease_body = json.loads(store.objects[first.key][0])
    assert lease_body == {
        "v": 1,
        "key": "img/a.jpg",
        "owner": "worker-1",
        "expiresAt": clock.now + 30 + LEASE_MARGIN_SECONDS,
    }
    assert flight.acquire("img/a.jpg", "worker-2", seconds=30) is None
    # When the holder's deadline and the margin have passed
    clock.now += 30 + LEASE_MARGIN_SECONDS + 1
    second = flight.acquire("img/a.jpg", "worker-2", seconds=30)
    assert second is not None and second.owner == "worker-2"
    assert flight.acquire("img/a.jpg", "worker-3", seconds=30) is None
    # Then the overrun first holder cannot delete its successor's lease
    assert flight.release(first) is False
    assert flight.release(second) is True
    assert store.objects == {}


def test_concurrent_takeover_of_an_expired_lease_has_one_winner() -> None:
    store, clock = FakeLeaseStore(), Clock()
    flight = SingleFlight(store, clock)  # type: ignore[arg-type]
    store.objects[lease_key("k")] = (b'{"expiresAt": 5}', '"old"')
    winners: list[Any] = []
    barrier = threading.Barrier(8)

    def take(owner: str) -> None:
        barrier.wait()
        winners.append(flight.acquire("k", owner, seconds=10))

    threads = [threading.Thread(target=take, args=(f"w{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len([w for w in winners if w is not None]) == 1
