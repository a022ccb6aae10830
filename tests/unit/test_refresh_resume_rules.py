"""A refresh's replacing copy across invocations: the checkpoint names the copy it
replaces, read back only when it has its shape, and a refresh continuation keeps its
mode."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from backfill_worker.freshness.revalidation import replaced_etag
from backfill_worker.transfer.checkpoint import CheckpointError
from backfill_worker.transfer.progress import Progress
from shared.messages import parse_backfill, to_json
from tests.unit.test_backfill_resume_rules import parse, valid_raw

S3_ETAG = '"9b2cf535f27731c974343645a3985328"'


def test_a_refresh_checkpoint_round_trips_the_etag_it_replaces() -> None:
    # Given a checkpoint of a replacing copy
    checkpoint = dataclasses.replace(parse(valid_raw()), replaces=S3_ETAG)
    # When it is written to the lease and read back / Then it still names that copy
    assert parse(json.loads(json.dumps(checkpoint.to_dict()))).replaces == S3_ETAG


def test_a_fill_checkpoint_names_no_copy_and_keeps_its_old_shape() -> None:
    checkpoint = parse(valid_raw())
    assert checkpoint.replaces is None and "replaces" not in checkpoint.to_dict()


@pytest.mark.parametrize("value", [7, "", "\x00\n", "é" * 3, "x" * 513, ["a"]])
def test_a_garbled_replaces_is_rejected_naming_the_field(value: Any) -> None:
    with pytest.raises(CheckpointError, match="checkpoint.replaces"):
        parse(valid_raw(replaces=value))


@pytest.mark.parametrize(
    ("inherited", "expected"),
    [
        (None, None),
        ({"uploadId": "u"}, None),  # a fill's checkpoint
        ({"replaces": S3_ETAG}, S3_ETAG),
        ({"replaces": 7}, None),
        ({"replaces": ""}, None),
        (["replaces"], None),
        ("garbage", None),
    ],
)
def test_the_copy_an_inherited_checkpoint_replaces(inherited: Any, expected: Any) -> None:
    progress = Progress(inherited=inherited, save=lambda checkpoint: True)
    assert replaced_etag(progress) == expected
    assert replaced_etag(None) is None


def test_a_refresh_continuation_keeps_its_mode_hop_and_token() -> None:
    # Given a refresh message, continued the way LeaseSession.hand_over does
    message = parse_backfill(
        json.dumps({"v": 1, "type": "backfill", "uri": "/a", "mode": "refresh"})
    )
    token = "0b6a4b8e-4a5f-4d3c-9a59-2f0c9f6f1a11"
    continuation = dataclasses.replace(message, hop=message.hop + 1, handover=token)
    # When it is sent and read back / Then it is still a refresh, with the next hop
    again = parse_backfill(to_json(continuation))
    assert (again.mode, again.hop, again.handover) == ("refresh", 1, token)
