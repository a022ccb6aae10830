"""The prewarm message's ``expand`` field (issue 14)."""

from __future__ import annotations

import json

import pytest

from shared.messages import MessageError, PrewarmMessage, parse_prewarm, to_json


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
