"""Every exception in message parsing is classified: whatever a queue delivers,
``parse_backfill`` / ``parse_prewarm`` either return a message or raise ``MessageError``,
and the backfill worker skips a malformed message for good (never retried)."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from backfill_worker.record import Backfiller
from shared.config import BackfillConfig
from shared.messages import MessageError, parse, parse_backfill, parse_prewarm
from shared.observability import worker_logger, worker_metrics
from tests.budget import examples

# JSON values of every kind, including the ones Python's json accepts beyond the standard
# (NaN, Infinity) and strings holding lone surrogates.
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=10**40, max_value=10**200),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["backfill", "prewarm", "/a", "/img/a%20b.jpg", "us-east-1", "gzip"]),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
_FIELDS = st.sampled_from(
    ["v", "type", "uri", "query", "host", "distribution", "requestId", "edgeRegion", "at",
     "paths", "targets", "encodings", "source", "attempt", "mode", "expand"]
)  # fmt: skip
# Objects close to real messages: a valid head, then arbitrary values for real fields.
_NEAR_MESSAGES = st.builds(
    lambda kind, fields: {"v": 1, "type": kind, **fields},
    st.sampled_from(["backfill", "prewarm"]),
    st.dictionaries(_FIELDS, _VALUES, max_size=6),
)


def _json_text(value: Any) -> str:
    return json.dumps(value, allow_nan=True)


def _nested(depth: int, opener: str = "[", closer: str = "]") -> str:
    return opener * depth + closer * depth


_BODIES = st.one_of(
    st.text(max_size=200),
    st.binary(max_size=200),
    _VALUES.map(_json_text),
    _NEAR_MESSAGES.map(_json_text),
    _NEAR_MESSAGES.map(_json_text).map(lambda text: text.encode("utf-16")),
    st.integers(min_value=1, max_value=200_000).map(_nested),
    st.integers(min_value=1, max_value=5000).map(lambda n: '{"v":1,"type":' + _nested(n) + "}"),
)

_HOSTILE = [
    _nested(100_000),
    _nested(100_000, '{"a":', "}").replace("}", "", 1) + "1}",
    '{"v":' + _nested(5000) + "}",
    '{"v":1,"type":"backfill","uri":"/a","host":' + _nested(990) + "}",
    '{"v":1,"type":' + _nested(990, "{", "}").replace("{}", '{"a":1}') + "}",
    '{"v":' + "9" * 5000 + "}",
    '{"v":' + "9" * 4000 + "}",
    '{"v":1,"type":"prewarm","paths":["/a"],"attempt":' + "9" * 4000 + "}",
    '{"v":1,"type":"prewarm","paths":["/a"],"attempt":1e999}',
    '{"v":1e999}',
    '{"v":NaN}',
    '{"v":1,"type":"backfill","uri":"/\\ud800"}',
    '{"v":1,"type":"prewarm","paths":["/a"],"targets":["\\udfff"]}',
    '{"v":1,"type":"backfill","uri":"/a","requestId":"\\ud800"}',
    "\ud800",
    b"\xff\xfe\xfd",
    b"\xef\xbb\xbf{}",
    b'{"v":1,"type":"backfill","uri":"/\xc3"}',
    "",
    "null",
    '{"v":true}',
    '{"v":1,"type":{"a":[1,2]}}',
    '{"v":1,"type":"backfill","uri":"/a","v":2}',
]


def _classified(parser: Any, body: Any) -> None:
    try:
        parser(body)
    except MessageError as error:
        assert error.field and error.reason
        str(error).encode("utf-8")  # printable in a log line: no lone surrogate


@pytest.mark.parametrize("parser", [parse, parse_backfill, parse_prewarm])
@pytest.mark.parametrize("body", _HOSTILE, ids=range(len(_HOSTILE)))
def test_hostile_bodies_raise_only_message_errors(parser: Any, body: Any) -> None:
    _classified(parser, body)


def test_deep_nesting_is_named_as_such() -> None:
    with pytest.raises(MessageError, match="nested too deeply") as caught:
        parse_backfill(_nested(100_000))
    assert caught.value.field == "body"


@settings(max_examples=examples(1500), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_BODIES)
@example(_nested(50_000))
def test_any_body_parses_or_raises_a_message_error(body: Any) -> None:
    for parser in (parse, parse_backfill, parse_prewarm):
        _classified(parser, body)


# ---------------------------------------------------------------- the backfill worker


class Untouchable:
    """A store or origin that a malformed message must never reach."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"a malformed message reached {name}")


@pytest.fixture(scope="module")
def worker() -> Backfiller:
    config = BackfillConfig.from_env(
        {"EDGEFILL_BUCKET": "edgefill-regional", "EDGEFILL_ORIGIN_URL": "https://o.example"}
    )
    return Backfiller(
        config=config,
        store=Untouchable(),  # type: ignore[arg-type]
        origin=Untouchable(),  # type: ignore[arg-type]
        sqs=None,
        logger=worker_logger("backfill"),
        metrics=worker_metrics("backfill"),
    )


def _skipped_for_good(worker: Backfiller, body: Any) -> None:
    try:
        parse_backfill(body)
        return  # a valid message is not this test's business
    except MessageError:
        pass
    # When the worker gets it / Then it is skipped (the record succeeds: never retried)
    outcome = worker.backfill(body)
    assert (outcome.status, outcome.reason) == ("skipped", "bad_message")


@pytest.mark.parametrize("body", _HOSTILE, ids=range(len(_HOSTILE)))
def test_the_worker_skips_a_hostile_body_for_good(worker: Backfiller, body: Any) -> None:
    logging.disable(logging.CRITICAL)
    try:
        _skipped_for_good(worker, body)
    finally:
        logging.disable(logging.NOTSET)


@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_BODIES)
def test_the_worker_skips_any_malformed_body_for_good(worker: Backfiller, body: Any) -> None:
    logging.disable(logging.CRITICAL)
    try:
        _skipped_for_good(worker, body)
    finally:
        logging.disable(logging.NOTSET)
