"""EDGEFILL_BACKFILL_QUEUE_URL, EDGEFILL_EXPAND_PLAYLISTS and EDGEFILL_EXPAND_MAX."""

from __future__ import annotations

import pytest

from shared.config import BackfillConfig, ConfigError

BASE = {"EDGEFILL_BUCKET": "edgefill-regional", "EDGEFILL_ORIGIN_URL": "https://origin.example"}
QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/edgefill-backfill"


def test_expansion_is_off_when_unset() -> None:
    config = BackfillConfig.from_env(BASE)
    assert config.expand_playlists is False and config.backfill_queue_url is None
    assert config.expand_max == 20_000


def test_expansion_on_with_a_queue_and_a_cap() -> None:
    config = BackfillConfig.from_env(
        {
            **BASE,
            "EDGEFILL_BACKFILL_QUEUE_URL": QUEUE,
            "EDGEFILL_EXPAND_PLAYLISTS": "TRUE",
            "EDGEFILL_EXPAND_MAX": "300",
        }
    )
    assert config.expand_playlists and config.backfill_queue_url == QUEUE
    assert config.expand_max == 300


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"EDGEFILL_EXPAND_PLAYLISTS": "true"}, "EDGEFILL_EXPAND_PLAYLISTS"),  # no queue
        ({"EDGEFILL_EXPAND_PLAYLISTS": "yes", "EDGEFILL_BACKFILL_QUEUE_URL": QUEUE}, None),
        ({"EDGEFILL_EXPAND_MAX": "0"}, "EDGEFILL_EXPAND_MAX"),
        ({"EDGEFILL_EXPAND_MAX": "2000000"}, "EDGEFILL_EXPAND_MAX"),
        ({"EDGEFILL_EXPAND_MAX": "lots"}, "EDGEFILL_EXPAND_MAX"),
        ({"EDGEFILL_BACKFILL_QUEUE_URL": "sqs://queue"}, "EDGEFILL_BACKFILL_QUEUE_URL"),
    ],
)
def test_bad_expansion_settings_name_the_variable(
    env: dict[str, str], variable: str | None
) -> None:
    with pytest.raises(ConfigError) as raised:
        BackfillConfig.from_env({**BASE, **env})
    assert raised.value.variable == (variable or "EDGEFILL_EXPAND_PLAYLISTS")
