"""The prewarm message's ``expand`` field (issue 14)."""

from __future__ import annotations

import json

import pytest

from shared.messages import (
    MAX_BODY_BYTES,
    MessageError,
    PrewarmMessage,
    parse,
    parse_prewarm,
    prewarm_messages,
    to_json,
)


def body(**fields: object) -> str:
    return json.dumps({"v": 1, "type": "prewarm", "paths": ["/v/master.m3u8"], **fields})


def test_expand_true_round_trips_and_false_is_left_out() -> None:
    message = parse_prewarm(body(expand=True))
    assert message.expand is True
    assert json.loads(to_json(message))["expand"] is True
    assert parse_prewarm(to_json(message)) == message
    plain = parse_prewarm(body())
    assert plain.expand is False and "expand" not in json.loads(to_json(plain))
    assert parse_prewarm(body(expand=None)).expand is False
    assert parse_prewarm(body(expand=False)) == plain


@pytest.mark.parametrize("value", [1, 0, "true", [], {}])
def test_expand_must_be_a_boolean(value: object) -> None:
    with pytest.raises(MessageError) as raised:
        parse_prewarm(body(expand=value))
    assert raised.value.field == "expand"


def test_expand_is_checked_when_built_in_code_too() -> None:
    with pytest.raises(MessageError, match="expand"):
        PrewarmMessage(paths=("/a",), expand="yes")  # type: ignore[arg-type]


# ---------------------------------------------------------------- depth and variables (19, 21)


@pytest.mark.parametrize("kind", ["backfill", "prewarm"])
def test_depth_and_variables_round_trip_on_both_messages(kind: str) -> None:
    fields = {"uri": "/v/a.m3u8"} if kind == "backfill" else {"paths": ["/v/a.m3u8"]}
    raw = {"v": 1, "type": kind, **fields, "depth": 1, "variables": {"base": "/v", "t": "x y"}}
    message = parse(json.dumps(raw))
    assert message.depth == 1 and message.variables == (("base", "/v"), ("t", "x y"))
    assert json.loads(to_json(message))["variables"] == {"base": "/v", "t": "x y"}
    assert parse(to_json(message)) == message
    # Absent, they are 0 and unset, and left out
    plain = parse(json.dumps({"v": 1, "type": kind, **fields}))
    assert plain.depth == 0 and plain.variables is None
    assert "depth" not in to_json(plain) and "variables" not in to_json(plain)


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"depth": 3}, "depth"),
        ({"depth": -1}, "depth"),
        ({"depth": "1"}, "depth"),
        ({"depth": True}, "depth"),
        ({"variables": ["a"]}, "variables"),
        ({"variables": {"a b": "x"}}, "variables"),
        ({"variables": {"a": 1}}, "variables.a"),
        ({"variables": {"a": "line\nbreak"}}, "variables.a"),
        ({"variables": {"a": "x" * (64 * 1024)}}, "variables"),
    ],
)
def test_bad_depth_or_variables_name_the_field(extra: dict[str, object], field: str) -> None:
    for fields in ({"type": "backfill", "uri": "/a"}, {"type": "prewarm", "paths": ["/a"]}):
        with pytest.raises(MessageError) as raised:
            parse(json.dumps({"v": 1, **fields, **extra}))
        assert raised.value.field == field


def test_prewarm_messages_are_sized_by_bytes_as_well_as_by_paths() -> None:
    # Given 1,000 signed segment URIs of 7 KB: 7 MB, far over SQS's 1 MiB in one message
    paths = [f"/v/seg-{n:04d}.m4s?sig=" + "s" * 7000 for n in range(1000)]
    messages = prewarm_messages(
        paths, targets=("us-east-1",), encodings=("gzip",), host="h.example"
    )
    # Then each message fits, and together they carry every path once, in order
    assert len(messages) >= 7
    assert all(len(to_json(m).encode()) <= MAX_BODY_BYTES for m in messages)
    assert [p for m in messages for p in m.paths] == paths
    # And the path count still bounds them
    short = prewarm_messages([f"/s{n}" for n in range(25)], max_paths=10, host="h.example")
    assert [len(m.paths) for m in short] == [10, 10, 5]


def test_a_path_that_cannot_fit_with_its_fields_is_a_named_failure() -> None:
    targets = tuple(f"us-{'x' * 6000}-{n % 9 + 1}" for n in range(200))  # 1.2 MB of targets
    with pytest.raises(MessageError) as raised:
        prewarm_messages(["/a"], targets=targets)
    assert raised.value.field == "body"


def test_prewarm_messages_never_carry_more_than_the_contract_allows() -> None:
    # (the task cap of one target and one encoding would allow 20,000)
    messages = prewarm_messages([f"/s{n}" for n in range(2500)], max_paths=20_000)
    assert [len(m.paths) for m in messages] == [1000, 1000, 500]
