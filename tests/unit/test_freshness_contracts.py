"""The freshness contracts: backfill "mode", prewarm "afterInvalidation", the variables."""

from __future__ import annotations

import json

import pytest

from shared.config import BackfillConfig, ConfigError, PrewarmConfig
from shared.messages import (
    BackfillMessage,
    MessageError,
    PrewarmMessage,
    parse_backfill,
    parse_prewarm,
    to_json,
)

BACKFILL_ENV = {"EDGEFILL_BUCKET": "edge-bucket", "EDGEFILL_ORIGIN_URL": "https://origin.test"}
PREWARM_ENV = {"EDGEFILL_DISTRIBUTION_DOMAIN": "d111.cloudfront.net"}


def test_backfill_mode_defaults_to_fill_and_round_trips_refresh() -> None:
    # Given a v1 backfill message without mode / Then it is a fill, written without mode
    plain = parse_backfill('{"v": 1, "type": "backfill", "uri": "/a.jpg"}')
    assert plain.mode == "fill"
    assert "mode" not in json.loads(to_json(plain))
    # Given a refresh / Then it survives the round trip
    refresh = BackfillMessage(uri="/a%20b.jpg", mode="refresh")
    assert parse_backfill(to_json(refresh)) == refresh
    assert json.loads(to_json(refresh))["mode"] == "refresh"


@pytest.mark.parametrize("mode", ["Refresh", "delete", "", 1, None, ["refresh"]])
def test_backfill_mode_rejects_anything_else(mode: object) -> None:
    body = json.dumps({"v": 1, "type": "backfill", "uri": "/a.jpg", "mode": mode})
    with pytest.raises(MessageError) as raised:
        parse_backfill(body)
    assert raised.value.field == "mode"


def test_prewarm_after_invalidation_round_trips() -> None:
    message = PrewarmMessage(paths=("/a.jpg",), after_invalidation="I2J0I21PCUYOIK")
    assert parse_prewarm(to_json(message)) == message
    assert json.loads(to_json(message))["afterInvalidation"] == "I2J0I21PCUYOIK"
    assert "afterInvalidation" not in json.loads(to_json(PrewarmMessage(paths=("/a.jpg",))))


@pytest.mark.parametrize("value", ["", "i2j0", "I2J0/../x", "A" * 65, 42, ["I2J0"], "I2J0\n"])
def test_prewarm_after_invalidation_rejects_hostile_values(value: object) -> None:
    body = json.dumps({"v": 1, "type": "prewarm", "paths": ["/a"], "afterInvalidation": value})
    with pytest.raises(MessageError) as raised:
        parse_prewarm(body)
    assert raised.value.field == "afterInvalidation"


def test_backfill_freshness_variables() -> None:
    # Given nothing set / Then no invalidations, no queue, a day's lifetime
    config = BackfillConfig.from_env(BACKFILL_ENV)
    assert (config.distribution_id, config.backfill_queue_url) == (None, None)
    assert config.revalidate_after == 86_400
    # Given all three / Then they are read
    config = BackfillConfig.from_env(
        {
            **BACKFILL_ENV,
            "EDGEFILL_DISTRIBUTION_ID": "E2EXAMPLE1234",
            "EDGEFILL_BACKFILL_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/1/backfill",
            "EDGEFILL_REVALIDATE_AFTER": "3600",
        }
    )
    assert config.distribution_id == "E2EXAMPLE1234"
    assert config.backfill_queue_url == "https://sqs.us-east-1.amazonaws.com/1/backfill"
    assert config.revalidate_after == 3600


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("EDGEFILL_DISTRIBUTION_ID", "e2example"),
        ("EDGEFILL_DISTRIBUTION_ID", "E2EX/../Y"),
        ("EDGEFILL_DISTRIBUTION_ID", "arn:aws:cloudfront::1:distribution/E2EXAMPLE"),
        ("EDGEFILL_BACKFILL_QUEUE_URL", "file:///etc/passwd"),
        ("EDGEFILL_REVALIDATE_AFTER", "1 day"),
        ("EDGEFILL_REVALIDATE_AFTER", "0"),
        ("EDGEFILL_REVALIDATE_AFTER", "10"),  # below a minute
        ("EDGEFILL_REVALIDATE_AFTER", str(11 * 365 * 86_400)),
    ],
)
def test_backfill_freshness_variables_named_in_errors(variable: str, value: str) -> None:
    with pytest.raises(ConfigError) as raised:
        BackfillConfig.from_env({**BACKFILL_ENV, variable: value})
    assert raised.value.variable == variable


def test_prewarm_distribution_id() -> None:
    assert PrewarmConfig.from_env(PREWARM_ENV).distribution_id is None
    config = PrewarmConfig.from_env({**PREWARM_ENV, "EDGEFILL_DISTRIBUTION_ID": "E2EXAMPLE1234"})
    assert config.distribution_id == "E2EXAMPLE1234"
    with pytest.raises(ConfigError) as raised:
        PrewarmConfig.from_env({**PREWARM_ENV, "EDGEFILL_DISTRIBUTION_ID": "nope!"})
    assert raised.value.variable == "EDGEFILL_DISTRIBUTION_ID"


def test_a_refresh_names_the_due_entry_that_stands_for_it() -> None:
    # Given a refresh the sweep sent / Then its retryAt survives the round trip
    message = BackfillMessage(uri="/a.jpg", mode="refresh", retry_at="2026-11-30T07:00:00Z")
    assert parse_backfill(to_json(message)) == message
    assert json.loads(to_json(message))["retryAt"] == "2026-11-30T07:00:00Z"
    assert "retryAt" not in json.loads(to_json(BackfillMessage(uri="/a.jpg")))


@pytest.mark.parametrize("value", ["", "tomorrow", "٢٠٢٦-11-30T07:00:00Z", 1, ["x"], "x" * 600])
def test_retry_at_rejects_anything_but_an_rfc3339_time(value: object) -> None:
    body = json.dumps({"v": 1, "type": "backfill", "uri": "/a", "retryAt": value})
    with pytest.raises(MessageError) as raised:
        parse_backfill(body)
    assert raised.value.field == "retryAt"


def test_the_revalidation_floor_and_the_sweeps_look_ahead() -> None:
    config = BackfillConfig.from_env(BACKFILL_ENV)
    assert (config.min_revalidate, config.sweep_lookahead) == (900, 900)
    config = BackfillConfig.from_env(
        {**BACKFILL_ENV, "EDGEFILL_MIN_REVALIDATE": "3600", "EDGEFILL_SWEEP_LOOKAHEAD": "0"}
    )
    assert (config.min_revalidate, config.sweep_lookahead) == (3600, 0)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("EDGEFILL_MIN_REVALIDATE", "0"),
        ("EDGEFILL_MIN_REVALIDATE", "86401"),
        ("EDGEFILL_SWEEP_LOOKAHEAD", "901"),  # SQS delays a message at most 900 s
        ("EDGEFILL_SWEEP_LOOKAHEAD", "-1"),
    ],
)
def test_floor_and_look_ahead_out_of_range_are_named(variable: str, value: str) -> None:
    with pytest.raises(ConfigError) as raised:
        BackfillConfig.from_env({**BACKFILL_ENV, variable: value})
    assert raised.value.variable == variable
