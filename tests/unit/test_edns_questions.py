"""Which DNS question finds a target's edge, and the built-in region subnet table."""

from __future__ import annotations

import ipaddress
import json

import pytest

from shared.config import ConfigError, PrewarmConfig
from shared.edns import REGION_SUBNETS, ResolveError, question_for, region_subnets
from shared.messages import is_region_code

DOMAIN = "d111abc.cloudfront.net"


def config(**env: str) -> PrewarmConfig:
    return PrewarmConfig.from_env({"EDGEFILL_DISTRIBUTION_DOMAIN": DOMAIN, **env})


def test_the_built_in_table_holds_one_public_24_per_region() -> None:
    assert len(REGION_SUBNETS) >= 20
    seen = set()
    for region, cidr in REGION_SUBNETS.items():
        network = ipaddress.ip_network(cidr)
        assert is_region_code(region)
        assert network.prefixlen == 24 and network.is_global, (region, cidr)
        assert network not in seen
        seen.add(network)


def test_given_a_region_when_asked_then_the_distribution_domain_carries_its_subnet() -> None:
    cfg = config()
    question = question_for("ap-northeast-1", cfg, region_subnets(cfg))
    assert question.name == DOMAIN
    assert str(question.subnet) == REGION_SUBNETS["ap-northeast-1"]


def test_given_a_pop_when_asked_then_the_pop_follows_the_first_label() -> None:
    cfg = config()
    question = question_for("NRT20-P2", cfg, region_subnets(cfg))
    assert question.name == "d111abc.NRT20-P2.cloudfront.net" and question.subnet is None


def test_given_an_override_when_asked_then_it_replaces_or_extends_the_table() -> None:
    cfg = config(
        EDGEFILL_REGION_SUBNETS=json.dumps(
            {"us-east-1": "198.51.100.0/24", "il-central-1": "203.0.113.0/24"}
        )
    )
    table = region_subnets(cfg)
    assert str(table["us-east-1"]) == "198.51.100.0/24"
    assert str(table["il-central-1"]) == "203.0.113.0/24"
    assert str(table["eu-west-1"]) == REGION_SUBNETS["eu-west-1"]


@pytest.mark.parametrize(
    ("target", "words"),
    [
        ("xx-nowhere-1", "no client subnet is known"),
        ("nrt20-p2", "neither"),
        ("", "neither"),
        ("NRT20P2", "neither"),
    ],
)
def test_given_a_bad_target_when_asked_then_the_error_names_it(target: str, words: str) -> None:
    cfg = config()
    with pytest.raises(ResolveError) as raised:
        question_for(target, cfg, region_subnets(cfg))
    assert raised.value.target == target and words in raised.value.reason
    assert not raised.value.retryable


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("EDGEFILL_CONCURRENCY", "0"),
        ("EDGEFILL_CONCURRENCY", "1000"),
        ("EDGEFILL_REQUEST_ATTEMPTS", "x"),
        ("EDGEFILL_MAX_ATTEMPTS", "-1"),
        ("EDGEFILL_RETRY_DELAY", "901"),
        ("EDGEFILL_REQUEST_TIMEOUT", "1.5"),
    ],
)
def test_given_bad_prewarm_tuning_when_configured_then_the_variable_is_named(
    name: str, value: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        config(**{name: value})
    assert raised.value.variable == name


def test_given_no_tuning_when_configured_then_the_defaults_apply() -> None:
    cfg = config()
    assert (cfg.concurrency, cfg.request_attempts, cfg.max_attempts, cfg.retry_delay) == (
        30,
        3,
        5,
        30,
    )
