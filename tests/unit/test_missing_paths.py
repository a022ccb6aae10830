"""Missing-path markers: remembered for the TTL, then forgotten; never blocking for good."""

from __future__ import annotations

import json

import pytest

from backfill_worker.fill.missing import MISSING_PREFIX, MissingPaths, marker_key


class MarkerStore:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def write_marker(self, key: str, body: bytes) -> None:
        self.objects[key] = body

    def read_marker(self, key: str) -> bytes | None:
        return self.objects.get(key)


def test_a_404_is_remembered_for_the_ttl_then_forgotten() -> None:
    # Given a 404 remembered at t=1000 for 300 s
    now = [1000.0]
    store = MarkerStore()
    paths = MissingPaths(store, 300, clock=lambda: now[0])  # type: ignore[arg-type]
    paths.remember("img/gone.jpg", 404)
    # Then it is recalled until t=1300, and not after
    now[0] = 1299.0
    recalled = paths.recall("img/gone.jpg")
    assert recalled is not None and recalled.status == 404 and recalled.until == 1300.0
    now[0] = 1300.0
    assert paths.recall("img/gone.jpg") is None
    # And other keys were never affected
    assert paths.recall("img/other.jpg") is None
    assert list(store.objects) == [marker_key("img/gone.jpg")]
    assert marker_key("img/gone.jpg").startswith(MISSING_PREFIX)


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"v": 1}',
        b'{"v": 1, "key": "img/gone.jpg", "status": "x", "until": 1e18}',
        b'{"v": 1, "key": "img/gone.jpg", "status": 404, "until": "never"}',
        b"[" * 100_000,
        json.dumps({"v": 1, "key": "img/OTHER.jpg", "status": 404, "until": 1e18}).encode(),
    ],
)
def test_an_unreadable_or_foreign_marker_counts_as_absent(body: bytes) -> None:
    store = MarkerStore()
    store.objects[marker_key("img/gone.jpg")] = body
    assert MissingPaths(store, 300).recall("img/gone.jpg") is None  # type: ignore[arg-type]


BASE_ENV = {"EDGEFILL_BUCKET": "edgefill-regional", "EDGEFILL_ORIGIN_URL": "https://o.example"}


def test_missing_ttl_defaults_to_five_minutes() -> None:
    from shared.config import BackfillConfig

    assert BackfillConfig.from_env(BASE_ENV).missing_ttl == 300
    env = {**BASE_ENV, "EDGEFILL_MISSING_TTL": "60"}
    assert BackfillConfig.from_env(env).missing_ttl == 60


@pytest.mark.parametrize("value", ["0", "-1", "soon", "86401", "1.5"])
def test_a_bad_missing_ttl_is_named(value: str) -> None:
    from shared.config import BackfillConfig, ConfigError

    with pytest.raises(ConfigError) as error:
        BackfillConfig.from_env({**BASE_ENV, "EDGEFILL_MISSING_TTL": value})
    assert error.value.variable == "EDGEFILL_MISSING_TTL"
