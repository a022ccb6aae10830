"""Only real edges: hostile DNS answers never point the warmer at another name or network."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import dns.message
import dns.rrset
import pytest

from edgefill.lab.dns import LabDNSServer
from shared.config import PrewarmConfig
from shared.edns import EdgeResolver, edge_address_problem, resolve_edges

DOMAIN = "d111abc.cloudfront.net"


class HostileDNS:
    """A UDP DNS server on loopback that answers every query with the same answer
    section, whatever it was asked: ``records`` are (owner, type, value) triples."""

    def __init__(self, records: list[tuple[str, str, str]]) -> None:
        self.records = records
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.settimeout(0.1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def resolver(self) -> str:
        return f"127.0.0.1:{self._sock.getsockname()[1]}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                wire, peer = self._sock.recvfrom(4096)
            except TimeoutError:
                continue
            query = dns.message.from_wire(wire)
            response = dns.message.make_response(query)
            for owner, kind, value in self.records:
                response.answer.append(dns.rrset.from_text(owner, 60, "IN", kind, value))
            self._sock.sendto(response.to_wire(), peer)

    def __enter__(self) -> HostileDNS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sock.close()


def resolve(resolver: str, target: str, **env: str) -> tuple[str | None, str | None]:
    """(edge address, error reason) of ``target``."""
    config = PrewarmConfig.from_env(
        {"EDGEFILL_DISTRIBUTION_DOMAIN": DOMAIN, "EDGEFILL_RESOLVER": resolver, **env}
    )
    host, port = config.resolver_host, config.resolver_port
    resolution = resolve_edges([target], config, EdgeResolver(host, port, timeout=0.5, attempts=1))
    edge, error = resolution.edges.get(target), resolution.errors.get(target)
    return (edge.address if edge else None), (error.reason if error else None)


@pytest.fixture
def lab_dns() -> Iterator[LabDNSServer]:
    with LabDNSServer(
        DOMAIN, pop_answers={"NRT20-P2": "127.0.0.3"}, default_address="10.1.2.3"
    ) as s:
        yield s


def test_given_an_answer_with_a_record_for_another_name_then_only_the_questions_own_is_used() -> (
    None
):
    # Given an answer that also carries an A record for a name nobody asked about, first
    records = [
        ("evil.example.net.", "A", "203.0.113.66"),
        (f"{DOMAIN}.", "A", "13.224.1.1"),
    ]
    with HostileDNS(records) as server:
        # When the region's edge is resolved
        address, error = resolve(server.resolver, "us-east-1")
    # Then the edge is the question name's own record
    assert (address, error) == ("13.224.1.1", None)


def test_given_only_records_for_other_names_then_the_target_fails_named() -> None:
    with HostileDNS([("evil.example.net.", "A", "13.224.9.9")]) as server:
        address, error = resolve(server.resolver, "us-east-1")
    assert address is None
    assert error == f"no A record for {DOMAIN}"


def test_given_a_cname_chain_then_the_records_at_its_end_are_used() -> None:
    records = [
        ("sneaky.example.net.", "A", "13.224.6.6"),  # off the chain: ignored
        (f"{DOMAIN}.", "CNAME", "hop.cloudfront.net."),
        ("hop.cloudfront.net.", "CNAME", "end.cloudfront.net."),
        ("end.cloudfront.net.", "A", "13.224.2.2"),
    ]
    with HostileDNS(records) as server:
        address, error = resolve(server.resolver, "eu-west-1")
    assert (address, error) == ("13.224.2.2", None)


def test_given_a_cname_loop_then_it_ends_without_an_edge() -> None:
    records = [
        (f"{DOMAIN}.", "CNAME", "a.example.net."),
        ("a.example.net.", "CNAME", f"{DOMAIN}."),
    ]
    with HostileDNS(records) as server:
        address, error = resolve(server.resolver, "eu-west-1")
    assert address is None and error == f"no A record for {DOMAIN}"


@pytest.mark.parametrize(
    "address",
    ["10.0.0.7", "127.0.0.1", "169.254.169.254", "192.168.1.1", "100.64.0.1", "0.0.0.0"],
)
def test_given_a_non_global_address_then_the_target_fails_naming_it(address: str) -> None:
    # Given an answer pointing the distribution at a private, loopback or metadata address
    with HostileDNS([(f"{DOMAIN}.", "A", address)]) as server:
        # When resolved without EDGEFILL_ALLOW_PRIVATE_EDGES
        edge, error = resolve(server.resolver, "us-east-1")
    # Then the target fails, the address named; no edge is used
    assert edge is None
    assert error is not None and address in error and "not a global unicast address" in error


def test_given_one_private_address_among_global_ones_then_the_target_fails() -> None:
    records = [(f"{DOMAIN}.", "A", "13.224.1.1"), (f"{DOMAIN}.", "A", "10.9.9.9")]
    with HostileDNS(records) as server:
        edge, error = resolve(server.resolver, "us-east-1")
    assert edge is None and error is not None and "10.9.9.9" in error


def test_given_the_lab_flag_then_private_edges_are_accepted(lab_dns: LabDNSServer) -> None:
    # The lab DNS server answers 127.0.0.3 for the POP and 10.1.2.3 for the domain
    assert resolve(lab_dns.resolver, "NRT20-P2", EDGEFILL_ALLOW_PRIVATE_EDGES="true") == (
        "127.0.0.3",
        None,
    )
    edge, error = resolve(lab_dns.resolver, "NRT20-P2")
    assert edge is None and error is not None and "127.0.0.3" in error
    edge, error = resolve(lab_dns.resolver, "us-east-1")
    assert edge is None and error is not None and "10.1.2.3" in error


def test_edge_address_problem_accepts_only_global_unicast() -> None:
    assert edge_address_problem("13.224.1.1") is None
    assert edge_address_problem("2600:9000:2000::1") is None
    assert edge_address_problem("224.0.0.1") is not None
    assert edge_address_problem("::1") is not None
    assert edge_address_problem("not-an-ip") is not None
