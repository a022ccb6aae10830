"""Edge resolution against the lab DNS server: ECS, POP names, TCP fallback, errors, cache."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from edgefill.lab.dns import LabDNSServer
from shared.config import PrewarmConfig
from shared.edns import REGION_SUBNETS, EdgeResolver, resolve_edges

DOMAIN = "d111abc.cloudfront.net"
TOKYO = REGION_SUBNETS["ap-northeast-1"]
VIRGINIA = REGION_SUBNETS["us-east-1"]


@pytest.fixture
def dns_server() -> Iterator[LabDNSServer]:
    with LabDNSServer(
        DOMAIN,
        subnet_answers={TOKYO: "127.0.0.3", VIRGINIA: "127.0.0.2", "192.0.2.0/24": "127.0.0.4"},
        pop_answers={"NRT20-P2": "127.0.0.3"},
        ttl=30,
    ) as server:
        yield server


def config_for(server: LabDNSServer, **env: str) -> PrewarmConfig:
    return PrewarmConfig.from_env(
        {
            "EDGEFILL_DISTRIBUTION_DOMAIN": DOMAIN,
            "EDGEFILL_RESOLVER": server.resolver,
            "EDGEFILL_ALLOW_PRIVATE_EDGES": "true",  # the lab's edges live on 127.0.0.x
            **env,
        }
    )


def resolver_for(config: PrewarmConfig, clock: list[float] | None = None) -> EdgeResolver:
    now = clock if clock is not None else [0.0]
    return EdgeResolver(
        config.resolver_host, config.resolver_port, timeout=0.3, attempts=2, clock=lambda: now[0]
    )


def test_given_regions_and_a_pop_when_resolved_then_one_query_each_with_the_right_question(
    dns_server: LabDNSServer,
) -> None:
    config = config_for(dns_server)
    resolution = resolve_edges(
        ["ap-northeast-1", "us-east-1", "NRT20-P2", "ap-northeast-1"], config, resolver_for(config)
    )
    assert {t: e.address for t, e in resolution.edges.items()} == {
        "ap-northeast-1": "127.0.0.3",
        "us-east-1": "127.0.0.2",
        "NRT20-P2": "127.0.0.3",
    }
    assert resolution.queries == 3 == dns_server.query_count
    assert dns_server.count(name=DOMAIN, subnet=TOKYO, transport="udp") == 1
    assert dns_server.count(name="d111abc.NRT20-P2.cloudfront.net", subnet=None) == 1
    assert resolution.edges["NRT20-P2"].name == "d111abc.NRT20-P2.cloudfront.net"
    assert resolution.edges["us-east-1"].ttl == 30


def test_given_an_override_when_resolved_then_its_subnet_is_sent(dns_server: LabDNSServer) -> None:
    config = config_for(
        dns_server, EDGEFILL_REGION_SUBNETS=json.dumps({"eu-west-1": "192.0.2.9/24"})
    )
    resolution = resolve_edges(["eu-west-1"], config, resolver_for(config))
    assert resolution.edges["eu-west-1"].address == "127.0.0.4"
    assert dns_server.count(subnet="192.0.2.0/24") == 1


def test_given_a_fresh_answer_when_resolved_again_then_the_cache_answers_until_the_ttl_ends(
    dns_server: LabDNSServer,
) -> None:
    config = config_for(dns_server)
    clock = [100.0]
    resolver = resolver_for(config, clock)
    resolve_edges(["us-east-1"], config, resolver)
    clock[0] += 29
    again = resolve_edges(["us-east-1"], config, resolver)
    assert again.queries == 0 and again.edges["us-east-1"].cached
    clock[0] += 2
    expired = resolve_edges(["us-east-1"], config, resolver)
    assert expired.queries == 1 and not expired.edges["us-east-1"].cached
    assert dns_server.query_count == 2


def test_given_a_truncated_udp_answer_when_resolved_then_tcp_is_used(
    dns_server: LabDNSServer,
) -> None:
    dns_server.set_fault("truncate")
    config = config_for(dns_server)
    resolution = resolve_edges(["ap-northeast-1"], config, resolver_for(config))
    edge = resolution.edges["ap-northeast-1"]
    assert edge.address == "127.0.0.3" and edge.transport == "tcp"
    assert dns_server.count(transport="udp") == 1 and dns_server.count(transport="tcp") == 1


@pytest.mark.parametrize(
    ("fault", "words", "retryable"),
    [
        ("servfail", "SERVFAIL", True),
        ("drop", "did not answer", True),
    ],
)
def test_given_a_failing_resolver_when_resolved_then_the_error_names_the_target(
    dns_server: LabDNSServer, fault: str, words: str, retryable: bool
) -> None:
    dns_server.set_fault(fault, subnet=TOKYO)  # type: ignore[arg-type]
    config = config_for(dns_server)
    resolution = resolve_edges(["ap-northeast-1", "us-east-1"], config, resolver_for(config))
    assert resolution.edges["us-east-1"].address == "127.0.0.2"
    error = resolution.errors["ap-northeast-1"]
    assert error.target == "ap-northeast-1" and words in str(error)
    assert str(error).startswith("ap-northeast-1: ")
    assert error.retryable is retryable
    assert not resolution.unreachable  # one target resolved: the message can be processed


def test_given_unknown_names_when_resolved_then_nxdomain_and_no_answer_are_named(
    dns_server: LabDNSServer,
) -> None:
    config = config_for(dns_server)
    resolution = resolve_edges(["LAX3-C4", "eu-north-1", "sa-east-1"], config, resolver_for(config))
    assert "NXDOMAIN" in str(resolution.errors["LAX3-C4"])
    assert "d111abc.LAX3-C4.cloudfront.net" in str(resolution.errors["LAX3-C4"])
    # The domain exists, but nothing maps eu-north-1's subnet and there is no default.
    assert "no A record" in str(resolution.errors["eu-north-1"])
    assert not any(e.retryable for e in resolution.errors.values())
    assert not resolution.unreachable


def test_given_no_resolver_listening_when_resolved_then_every_target_is_unreachable() -> None:
    config = PrewarmConfig.from_env(
        {"EDGEFILL_DISTRIBUTION_DOMAIN": DOMAIN, "EDGEFILL_RESOLVER": "127.0.0.1:9"}
    )
    resolution = resolve_edges(["us-east-1", "NRT20-P2"], config, resolver_for(config))
    assert set(resolution.errors) == {"us-east-1", "NRT20-P2"}
    assert resolution.unreachable
    assert all("127.0.0.1:9" in str(e) for e in resolution.errors.values())
