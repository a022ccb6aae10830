"""Pure rules of copies longer than one invocation: the checkpoint and what it may hold,
the MD5 carried across invocations, part admission before the handover point, the lease
handed to a continuation, and the continuation's message fields."""

from __future__ import annotations

import hashlib
import json
import os
import time
from typing import Any

import pytest

from backfill_worker.flight.continuation import ContinuationNotSent, LeaseSession
from backfill_worker.flight.lease import LEASE_MARGIN_SECONDS, SingleFlight, lease_key
from backfill_worker.transfer import md5_state
from backfill_worker.transfer.admission import PartAdmission
from backfill_worker.transfer.checkpoint import (
    Checkpoint,
    CheckpointError,
    SavedPart,
    checkpoint_from,
    proof_tails,
)
from backfill_worker.transfer.copy import copy_object
from backfill_worker.transfer.integrity import ExpectedMD5
from backfill_worker.transfer.md5_state import MD5State, MD5StateError, ResumableMD5
from backfill_worker.transfer.plan import CopyPlan
from backfill_worker.transfer.progress import Progress
from shared.config import BackfillConfig, ConfigError
from shared.messages import BackfillMessage, MessageError, parse_backfill, to_json
from shared.object_store import StoreError
from shared.origin import OriginError
from tests.unit.test_backfill_memory_bound import FakeOrigin, FakeStore
from tests.unit.test_backfill_rules import Clock, FakeLeaseStore

MIB = 1024 * 1024
PART = 8 * MIB
LENGTH = 3 * PART + 100  # four parts, the last one 100 bytes
ETAG = '"' + "a" * 32 + '"'
CRC = "AAAAAA=="
MD5 = [["Content-MD5", "a" * 32], ["ETag", "a" * 32]]


def plan_part_size(length: int) -> int:
    return PART


def valid_raw(**changes: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "v": 1,
        "uploadId": "2~abcDEF.123-_xyz",
        "length": LENGTH,
        "partBytes": PART,
        "etag": '"origin-v1"',
        "lastModified": "Tue, 14 Nov 2023 22:13:20 GMT",
        "contentEncoding": None,
        "parts": [[1, PART, ETAG, CRC], [2, PART, ETAG, CRC]],
        "partRate": 1_000_000.0,
        "originBytes": 2 * PART,
        "invocations": 1,
    }
    raw.update(changes)
    return raw


def parse(raw: object) -> Checkpoint:
    return checkpoint_from(raw, max_object_bytes=1 << 40, part_size_for=plan_part_size)


# ---------------------------------------------------------------- checkpoint


def test_a_checkpoint_round_trips_through_its_json() -> None:
    # Given a checkpoint as a worker writes it into its lease
    checkpoint = Checkpoint(
        upload_id="up-1",
        length=LENGTH,
        part_bytes=PART,
        etag='"origin-v1"',
        last_modified=None,
        content_encoding="gzip",
        parts=(SavedPart(1, PART, ETAG, CRC), SavedPart(4, 100, ETAG, CRC)),
        part_rate=12.5,
        origin_bytes=99,
        invocations=3,
    )
    # When it is read back through JSON
    again = parse(json.loads(json.dumps(checkpoint.to_dict())))
    # Then it is the same, and knows which parts are missing
    assert again == checkpoint
    assert again.count == 4 and again.done == {1, 4}
    assert [again.part_size(n) for n in (1, 4)] == [PART, 100]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"v": 2}, "checkpoint.v"),
        ({"v": True}, "checkpoint.v"),
        ({"uploadId": "../../other-key"}, "uploadId"),
        ({"uploadId": "a" * 2000}, "uploadId"),
        ({"uploadId": 7}, "uploadId"),
        ({"length": -1}, "length"),
        ({"length": 1 << 50}, "length"),
        ({"partBytes": 5 * MIB}, "partBytes"),  # not this worker's part size
        ({"etag": None, "lastModified": None}, "no strong ETag"),
        ({"etag": 'W/"weak"', "lastModified": None}, "no strong ETag"),
        # A Last-Modified (or a weak ETag) may stay the same over new bytes (issue 19)
        ({"etag": None}, "no strong ETag nor MD5"),
        ({"etag": 'W/"1e00000-6553f100"'}, "no strong ETag nor MD5"),
        ({"tails": [[3, "c" * 64]]}, "tails[0]"),  # not a saved part
        ({"tails": [[1, "C" * 64]]}, "tails[0]"),
        ({"tails": [[1, "c" * 64], [1, "c" * 64]]}, "tails[1]"),
        ({"tails": [[1.0, "c" * 64]]}, "tails[0]"),
        ({"tails": "c" * 64}, "checkpoint.tails"),
        ({"etag": "caf\u00e9"}, "checkpoint.etag"),
        ({"etag": "a\r\nSet-Cookie: x"}, "checkpoint.etag"),
        ({"parts": [[5, PART, ETAG, CRC]]}, "part number"),  # past the last part
        ({"parts": [[0, PART, ETAG, CRC]]}, "part number"),
        ({"parts": [[1, PART, ETAG, CRC], [1, PART, ETAG, CRC]]}, "twice"),
        ({"parts": [[4, PART, ETAG, CRC]]}, "must be 100 bytes"),  # the last part's size
        ({"parts": [[1, PART + 1, ETAG, CRC]]}, "must be 8388608 bytes"),
        ({"parts": [[1, PART, "not-an-etag", CRC]]}, "ETag"),
        ({"parts": [[1, PART, ETAG, "zz"]]}, "CRC32"),
        ({"parts": [[1, PART, ETAG]]}, "[number, size, etag, crc32]"),
        ({"parts": "all"}, "checkpoint.parts"),
        ({"parts": [[n, PART, ETAG, CRC] for n in range(1, 7)]}, "at most 4"),
        ({"partRate": float("inf")}, "partRate"),
        ({"partRate": "fast"}, "partRate"),
        ({"md5": {"expected": "a" * 32}}, "md5.expected"),
        ({"md5": {"expected": [["ETag", "X" * 32]]}}, "md5.expected"),
        ({"md5": {"expected": [["Server", "a" * 32]]}}, "md5.expected"),
        ({"md5": {"expected": []}}, "md5.expected"),
        ({"md5": {"expected": MD5, "state": "b" * 32, "bytes": 3 * PART}}, "covers parts"),
        ({"md5": {"expected": MD5, "state": "b" * 32, "bytes": 100}}, "64-byte"),
        ({"md5": {"expected": MD5, "state": "nothex", "bytes": PART}}, "32 lowercase"),
        ({"md5": {"expected": MD5, "state": None, "bytes": PART}}, "no state"),
    ],
)
def test_a_garbled_or_forged_checkpoint_is_rejected_naming_the_field(
    changes: dict[str, Any], field: str
) -> None:
    with pytest.raises(CheckpointError, match=field.replace("[", r"\[").replace("]", r"\]")):
        parse(valid_raw(**changes))


@pytest.mark.parametrize("raw", [None, [], "checkpoint", 3])
def test_a_checkpoint_that_is_not_an_object_is_rejected(raw: object) -> None:
    with pytest.raises(CheckpointError, match="JSON object"):
        parse(raw)


def test_a_checkpoint_named_by_an_md5_alone_is_accepted_with_its_tails() -> None:
    # Given an origin with only a Last-Modified, whose MD5 the copy checks at the end
    raw = valid_raw(etag=None, md5={"expected": MD5, "state": None, "bytes": 0})
    raw["tails"] = [[2, "c" * 64]]
    checkpoint = parse(raw)
    assert checkpoint.tail_of(2) == "c" * 64 and checkpoint.tail_of(1) is None
    assert parse(json.loads(json.dumps(checkpoint.to_dict()))) == checkpoint


def test_the_tails_kept_are_the_end_of_the_run_and_every_part_past_it() -> None:
    parts = tuple(SavedPart(n, PART, ETAG, CRC) for n in (1, 2, 4))
    digests = {n: str(n) * 64 for n in (1, 2, 3, 4)}
    assert proof_tails(parts, digests) == ((2, "2" * 64), (4, "4" * 64))
    # Without part 1 every saved part is past the (empty) run
    assert proof_tails(parts[2:], digests) == ((4, "4" * 64),)


def test_an_md5_state_over_the_parts_the_upload_holds_is_accepted() -> None:
    raw = valid_raw(md5={"expected": MD5, "state": "b" * 32, "bytes": 2 * PART})
    checkpoint = parse(raw)
    assert checkpoint.md5_state == MD5State("b" * 32, 2 * PART)
    assert checkpoint.expected_md5s == (
        ExpectedMD5("Content-MD5", "a" * 32),
        ExpectedMD5("ETag", "a" * 32),
    )
    assert parse(json.loads(json.dumps(checkpoint.to_dict()))) == checkpoint


# ---------------------------------------------------------------- MD5 across invocations


@pytest.mark.skipif(not md5_state.available(), reason="no libcrypto MD5 in this process")
def test_md5_state_carried_across_invocations_gives_the_whole_objects_md5() -> None:
    # Given an object hashed part by part, its state saved after the second part
    data = bytearray(os.urandom(64 * 1024 * 3 + 17))
    first = ResumableMD5()
    first.update(data[: 64 * 1024])
    first.update(data[64 * 1024 : 128 * 1024])
    saved = json.loads(json.dumps({"w": first.state().words, "n": first.state().length}))
    # When another process continues from the saved state
    second = ResumableMD5(MD5State(saved["w"], saved["n"]))
    second.update(data[128 * 1024 :])
    # Then the digest is the whole object's
    assert second.hexdigest() == hashlib.md5(data).hexdigest()
    assert first.hexdigest() == hashlib.md5(data[: 128 * 1024]).hexdigest()


@pytest.mark.skipif(not md5_state.available(), reason="no libcrypto MD5 in this process")
def test_md5_state_cannot_be_saved_between_two_blocks() -> None:
    md5 = ResumableMD5()
    md5.update(b"x" * 100)
    with pytest.raises(MD5StateError):
        md5.state()


@pytest.mark.parametrize(("words", "length"), [("A" * 32, 0), ("a" * 31, 0), ("a" * 32, 65)])
def test_a_malformed_md5_state_is_refused(words: str, length: int) -> None:
    with pytest.raises(MD5StateError):
        MD5State(words, length)


# ---------------------------------------------------------------- admission


def test_parts_start_only_when_they_can_end_before_the_handover_point() -> None:
    clock = Clock()
    admission = PartAdmission(handover_at=clock.now + 10, clock=clock)
    # Nothing measured yet: a part starts
    assert admission.may_start(PART)
    # A part of 8 MiB took 4 s: one started now would end in 4 s, before the handover
    admission.record(PART, 4.0)
    assert admission.may_start(PART)
    # At 7 s it would end at 11 s, after the handover point: it does not start
    clock.now += 7
    assert not admission.may_start(PART)
    assert admission.may_start(PART // 4)  # a short last part still fits
    clock.now += 3
    assert not admission.may_start(1) and admission.past_handover()


def test_a_continuation_judges_its_first_parts_by_its_predecessors_rate() -> None:
    clock = Clock()
    admission = PartAdmission(handover_at=clock.now + 5, rate=PART / 8, clock=clock)
    assert not admission.may_start(PART)  # 8 s at the inherited rate
    assert PartAdmission(None).may_start(PART)  # no handover point: always


# ---------------------------------------------------------------- the lease


def test_the_lease_passes_to_its_heir_with_no_window_for_another_worker() -> None:
    store, clock = FakeLeaseStore(), Clock()
    flight = SingleFlight(store, clock)  # type: ignore[arg-type]
    lease = flight.acquire("v/clip.mp4", "invocation-1", seconds=900)
    assert lease is not None
    # Given a copy that saved progress and handed over to token T
    assert flight.save(lease, {"v": 1, "step": 1})
    assert flight.hand_over(lease, {"v": 1, "step": 2}, heir="token-0001", seconds=900)
    body = json.loads(store.objects[lease_key("v/clip.mp4")][0])
    assert body["owner"] == "handed-over" and body["heir"] == "token-0001"
    assert body["expiresAt"] == clock.now + 900 + LEASE_MARGIN_SECONDS
    # When a fresh miss and a forged continuation arrive first, they get nothing
    assert flight.acquire("v/clip.mp4", "fresh-miss", seconds=900) is None
    assert flight.acquire("v/clip.mp4", "forged", seconds=900, heir="token-9999") is None
    # Then the continuation takes it at once, with the checkpoint
    heir = flight.acquire("v/clip.mp4", "invocation-2", seconds=900, heir="token-0001")
    assert heir is not None and heir.checkpoint == {"v": 1, "step": 2}
    assert "heir" not in json.loads(store.objects[heir.key][0])
    # And a duplicate delivery of the same continuation is a no-op
    assert flight.acquire("v/clip.mp4", "duplicate", seconds=900, heir="token-0001") is None
    # And the first holder can neither save nor release any more
    assert flight.save(lease, {"v": 1}) is False
    assert flight.release(lease) is False
    assert flight.release(heir) is True


def test_an_expired_lease_is_taken_over_with_its_checkpoint() -> None:
    store, clock = FakeLeaseStore(), Clock()
    flight = SingleFlight(store, clock)  # type: ignore[arg-type]
    lease = flight.acquire("k", "killed-worker", seconds=10)
    assert lease is not None and flight.save(lease, {"v": 1, "parts": []})
    clock.now += 10 + LEASE_MARGIN_SECONDS + 1
    taker = flight.acquire("k", "redelivery", seconds=10)
    assert taker is not None and taker.checkpoint == {"v": 1, "parts": []}
    # The checkpoint stays in the lease body from the moment it is taken over
    assert json.loads(store.objects[taker.key][0])["checkpoint"] == {"v": 1, "parts": []}


def test_an_expired_lease_naming_another_key_passes_on_no_checkpoint() -> None:
    store, clock = FakeLeaseStore(), Clock()
    flight = SingleFlight(store, clock)  # type: ignore[arg-type]
    forged = {"key": "other/key", "expiresAt": 0, "checkpoint": {"uploadId": "x"}}
    store.objects[lease_key("k")] = (json.dumps(forged).encode(), '"e"')
    taker = flight.acquire("k", "w", seconds=10)
    assert taker is not None and taker.checkpoint is None


def test_an_expired_handover_lets_the_redelivery_resume_at_once() -> None:
    store, clock = FakeLeaseStore(), Clock()
    flight = SingleFlight(store, clock)  # type: ignore[arg-type]
    lease = flight.acquire("k", "w1", seconds=900)
    assert lease is not None
    assert flight.expire(lease, {"v": 1})
    again = flight.acquire("k", "w2", seconds=900)
    assert again is not None and again.checkpoint == {"v": 1}


class ThrottledHandoverStore(FakeLeaseStore):
    """S3 answers 503 SlowDown to the lease write that hands the lease over."""

    def replace_lease(self, key: str, body: bytes, etag: str) -> str | None:
        if b'"heir"' in body:
            raise StoreError(f"PutObject lease {key!r}: SlowDown: injected")
        return super().replace_lease(key, body, etag)


def test_a_throttled_handover_keeps_the_checkpoint_for_the_redelivery() -> None:
    # Given a copy at its handover point whose lease write S3 throttles
    store, clock = ThrottledHandoverStore(), Clock()
    flight = SingleFlight(store, clock)  # type: ignore[arg-type]
    lease = flight.acquire("k", "w1", seconds=900)
    assert lease is not None
    session = LeaseSession(flight, lease, store, "k")  # type: ignore[arg-type]
    checkpoint = Checkpoint("up-1", LENGTH, PART, ETAG, None, None)
    # When it hands over, the record fails (SQS redelivers it)
    with pytest.raises(ContinuationNotSent, match="SlowDown"):
        session.hand_over(
            checkpoint, BackfillMessage(uri="/k"), max_hops=48, queue_url="q", sqs=None
        )
    # Then the lease is kept for the redelivery, expired, with the checkpoint
    assert session.keep_lease
    body = json.loads(store.objects[lease_key("k")][0])
    assert body["checkpoint"]["uploadId"] == "up-1" and body["expiresAt"] < clock.now


# ---------------------------------------------------------------- message and configuration


def test_a_continuation_message_round_trips_its_hop_and_token() -> None:
    message = BackfillMessage(uri="/v/clip.mp4", hop=3, handover="0b1c2d3e-aaaa")
    body = to_json(message)
    assert json.loads(body) == {
        "v": 1,
        "type": "backfill",
        "uri": "/v/clip.mp4",
        "hop": 3,
        "handover": "0b1c2d3e-aaaa",
    }
    assert parse_backfill(body) == message
    assert "hop" not in json.loads(to_json(BackfillMessage(uri="/a")))


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"hop": -1}, "hop"),
        ({"hop": 1001}, "hop"),
        ({"hop": "2"}, "hop"),
        ({"hop": True}, "hop"),
        ({"handover": "short"}, "handover"),
        ({"handover": "x" * 65}, "handover"),
        ({"handover": "a/b/../c-d-e-f"}, "handover"),
        ({"handover": 12345678}, "handover"),
    ],
)
def test_bad_continuation_fields_are_named(fields: dict[str, Any], field: str) -> None:
    body = json.dumps({"v": 1, "type": "backfill", "uri": "/a", **fields})
    with pytest.raises(MessageError) as error:
        parse_backfill(body)
    assert error.value.field == field


BASE_ENV = {"EDGEFILL_BUCKET": "bucket-1", "EDGEFILL_ORIGIN_URL": "https://origin.example.com"}


def test_resume_settings_default_and_parse() -> None:
    config = BackfillConfig.from_env(BASE_ENV)
    assert (config.handover_seconds, config.max_hops, config.backfill_queue_url) == (
        60.0,
        48,
        None,
    )
    queue = "https://sqs.us-east-1.amazonaws.com/123456789012/backfill"
    config = BackfillConfig.from_env(
        {
            **BASE_ENV,
            "EDGEFILL_HANDOVER_SECONDS": "2.5",
            "EDGEFILL_MAX_HOPS": "4",
            "EDGEFILL_BACKFILL_QUEUE_URL": queue,
        }
    )
    assert (config.handover_seconds, config.max_hops, config.backfill_queue_url) == (2.5, 4, queue)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("EDGEFILL_HANDOVER_SECONDS", "soon"),
        ("EDGEFILL_HANDOVER_SECONDS", "0"),
        ("EDGEFILL_HANDOVER_SECONDS", "900"),
        ("EDGEFILL_HANDOVER_SECONDS", "nan"),
        ("EDGEFILL_MAX_HOPS", "0"),
        ("EDGEFILL_MAX_HOPS", "many"),
        ("EDGEFILL_BACKFILL_QUEUE_URL", "not a url"),
    ],
)
def test_bad_resume_settings_name_the_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigError) as error:
        BackfillConfig.from_env({**BASE_ENV, variable: value})
    assert error.value.variable == variable


# ---------------------------------------------------------------- the copy at its handover


class _LateThirdPart(FakeOrigin):
    """Part 3's ranged GET outlasts the handover point and then fails (as the read budget
    ends a read at the cleanup margin)."""

    def get_range_into(
        self, url: str, start: int, expected: Any, buffer: memoryview, budget: Any = None
    ) -> None:
        if start // 1024 + 1 == 3:
            time.sleep(1.5)
            raise OriginError("deadline: the copy budget ran out", permanent=False)
        buffer[:] = self.data[start : start + len(buffer)]


@pytest.mark.skipif(not md5_state.available(), reason="no libcrypto MD5 in this process")
def test_a_part_failing_after_the_handover_point_is_dropped_and_the_rest_handed_over() -> None:
    # Given 8 parts of 1 KiB from an S3 origin (MD5 checked), a handover point 1 s away,
    # and part 3 that only fails after it
    data = bytes(i % 251 for i in range(8 * 1024))
    origin, store = _LateThirdPart(data), FakeStore()
    store.release_part_one.set()
    saved: list[Checkpoint] = []
    progress = Progress(inherited=None, save=lambda checkpoint: saved.append(checkpoint) or True)
    now = time.monotonic()
    plan = CopyPlan(
        max_object_bytes=10**9,
        part_bytes=1024,
        parts_in_flight=3,
        deadline=now + 5,
        handover_at=now + 1.0,
    )
    # When the copy runs
    url = "https://origin.example.com/o.bin"
    result = copy_object(origin, store, "o.bin", url, plan, progress=progress)  # type: ignore[arg-type]
    # Then it hands over instead of failing, part 3 dropped; parts 4 and 5 went up but
    # kept their buffers waiting to be hashed after part 3 (the memory bound), so no
    # further part started before the handover point
    assert result.handover is not None and not result.created
    assert sorted(store.parts) == [1, 2, 4, 5]
    assert not store.aborted
    # And the checkpoint lists only parts 1-2: the MD5 state covers them, and the bytes of
    # parts 4-5 cannot be hashed after the missing part 3 by another invocation
    assert [part.number for part in result.handover.parts] == [1, 2]
    state = result.handover.md5_state
    assert state is not None and state.length == 2048
    again = ResumableMD5(state)
    again.update(data[2048:])
    assert again.hexdigest() == hashlib.md5(data).hexdigest()
    assert saved, "progress was saved while the copy ran"
