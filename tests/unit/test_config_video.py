"""Video configuration: EDGEFILL_BACKFILL_QUEUE_URL, EDGEFILL_EXPAND_PLAYLISTS,
EDGEFILL_EXPAND_MAX, EDGEFILL_VIEWER_HOSTS and the prewarm worker's EDGEFILL_ORIGIN_URL."""

from __future__ import annotations

import pytest

from shared.config import BackfillConfig, ConfigError, PrewarmConfig

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


def test_viewer_hosts_take_names_ports_and_wildcard_aliases() -> None:
    config = BackfillConfig.from_env(
        {
            **BASE,
            "EDGEFILL_VIEWER_HOSTS": (
                "d111.cloudfront.net, Video.Example.com,*.cdn.example.com,lab:8443,"
            ),
        }
    )
    assert config.viewer_hosts == (
        "d111.cloudfront.net",
        "video.example.com",
        "*.cdn.example.com",
        "lab:8443",
    )
    assert BackfillConfig.from_env(BASE).viewer_hosts == ()


@pytest.mark.parametrize(
    "value", ["not a host", "*.", "a.*.example.com", "*.example.com:443", "h:0", "h:99999", "h:x"]
)
def test_a_bad_viewer_host_names_the_variable(value: str) -> None:
    with pytest.raises(ConfigError) as raised:
        BackfillConfig.from_env({**BASE, "EDGEFILL_VIEWER_HOSTS": value})
    assert raised.value.variable == "EDGEFILL_VIEWER_HOSTS"


def test_the_prewarm_worker_may_be_told_the_full_origin() -> None:
    env = {"EDGEFILL_DISTRIBUTION_DOMAIN": "d111.cloudfront.net"}
    assert PrewarmConfig.from_env(env).origin_url is None
    told = PrewarmConfig.from_env({**env, "EDGEFILL_ORIGIN_URL": "https://origin.example/vod/"})
    assert told.origin_url == "https://origin.example/vod"
    with pytest.raises(ConfigError) as raised:
        PrewarmConfig.from_env({**env, "EDGEFILL_ORIGIN_URL": "ftp://origin.example"})
    assert raised.value.variable == "EDGEFILL_ORIGIN_URL"
