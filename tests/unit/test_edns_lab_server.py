"""The lab DNS server answers like CloudFront's authoritative servers do, by client subnet."""

from __future__ import annotations

import time
from collections.abc import Iterator

import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rcode
import pytest

from edgefill.lab.dns import LabDNSServer

DOMAIN = "d111abc.cloudfront.net"


@pytest.fixture
def server() -> Iterator[LabDNSServer]:
    with LabDNSServer(
        DOMAIN,
        subnet_answers={"198.51.100.0/24": "127.0.0.2", "203.0.113.0/24": "127.0.0.3"},
        pop_answers={"NRT20-P2": "127.0.0.4"},
        default_address="127.0.0.9",
        static_answers={"ec2.us-east-1.amazonaws.com": "198.51.100.7"},
        ttl=42,
    ) as running:
        yield running


def ask(
    server: LabDNSServer, name: str, subnet: str | None = None, tcp: bool = False
) -> dns.message.Message:
    options = []
    if subnet is not None:
        address, _, length = subnet.partition("/")
        options.append(dns.edns.ECSOption(address, int(length)))
    query = dns.message.make_query(name, "A", use_edns=0 if options else None, options=options)
    host, port = server.address
    send = dns.query.tcp if tcp else dns.query.udp
    return send(query, host, port=port, timeout=2)


def addresses(response: dns.message.Message) -> list[str]:
    return [item.address for rrset in response.answer for item in rrset]


def test_given_a_client_subnet_when_asked_then_its_edge_answers_and_the_scope_is_echoed(
    server: LabDNSServer,
) -> None:
    response = ask(server, DOMAIN, "198.51.100.0/24")
    assert addresses(response) == ["127.0.0.2"]
    assert response.answer[0].ttl == 42
    (ecs,) = [o for o in response.options if isinstance(o, dns.edns.ECSOption)]
    assert (ecs.address, ecs.srclen, ecs.scopelen) == ("198.51.100.0", 24, 24)
    assert addresses(ask(server, DOMAIN, "203.0.113.0/24")) == ["127.0.0.3"]
    assert addresses(ask(server, DOMAIN)) == ["127.0.0.9"]
    assert server.count(name=DOMAIN, subnet="198.51.100.0/24", transport="udp") == 1


def test_given_a_pop_when_its_name_is_asked_then_the_pop_answers_and_unknown_names_do_not_exist(
    server: LabDNSServer,
) -> None:
    assert server.pop_name("NRT20-P2") == "d111abc.NRT20-P2.cloudfront.net"
    assert addresses(ask(server, "d111abc.nrt20-p2.cloudfront.net")) == ["127.0.0.4"]
    assert addresses(ask(server, "ec2.us-east-1.amazonaws.com")) == ["198.51.100.7"]
    assert ask(server, "d111abc.FRA2-C1.cloudfront.net").rcode() == dns.rcode.NXDOMAIN
    assert ask(server, "other.example").rcode() == dns.rcode.NXDOMAIN


def test_given_truncation_when_asked_over_udp_then_tc_is_set_and_tcp_answers(
    server: LabDNSServer,
) -> None:
    server.set_fault("truncate")
    udp = ask(server, DOMAIN, "198.51.100.0/24")
    assert udp.flags & dns.flags.TC and not udp.answer
    assert addresses(ask(server, DOMAIN, "198.51.100.0/24", tcp=True)) == ["127.0.0.2"]
    assert server.count(transport="tcp") == 1


def test_given_faults_for_one_subnet_when_asked_then_only_that_subnet_fails(
    server: LabDNSServer,
) -> None:
    server.set_fault("servfail", subnet="203.0.113.0/24")
    assert ask(server, DOMAIN, "203.0.113.0/24").rcode() == dns.rcode.SERVFAIL
    assert addresses(ask(server, DOMAIN, "198.51.100.0/24")) == ["127.0.0.2"]
    server.set_fault("drop", subnet="203.0.113.0/24")
    host, port = server.address
    query = dns.message.make_query(
        DOMAIN, "A", use_edns=0, options=[dns.edns.ECSOption("203.0.113.0", 24)]
    )
    with pytest.raises(dns.exception.Timeout):
        dns.query.udp(query, host, port=port, timeout=0.3)
    server.set_fault(None, subnet="203.0.113.0/24")
    assert addresses(ask(server, DOMAIN, "203.0.113.0/24")) == ["127.0.0.3"]


def test_given_latency_when_many_ask_at_once_then_answers_are_not_serialised() -> None:
    from concurrent.futures import ThreadPoolExecutor

    # Serialised, 20 answers would take 20 × the latency (6 s); the bound is half of that,
    # so a loaded machine's slowness cannot fail it, but answers taken in turn would.
    latency = 0.3
    with LabDNSServer(DOMAIN, default_address="127.0.0.2", latency=latency) as server:
        started = time.perf_counter()
        with ThreadPoolExecutor(20) as pool:
            results = list(pool.map(lambda _: addresses(ask(server, DOMAIN)), range(20)))
        elapsed = time.perf_counter() - started
    assert results == [["127.0.0.2"]] * 20
    assert latency <= elapsed < 20 * latency / 2
    assert server.query_count == 20
