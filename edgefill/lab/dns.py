"""The lab's DNS server: CloudFront's authoritative answers, by EDNS Client Subnet, on loopback.

CloudFront picks the edge for a viewer from the client subnet its resolver forwards
(RFC 7871). ``LabDNSServer`` answers the same way, over UDP and TCP on one loopback port:

- an A query for the distribution domain → the address mapped to the longest
  ``subnet_answers`` prefix containing the query's ECS subnet (``default_address``
  without ECS or without a match), with the ECS option echoed and its scope set, as a
  real authoritative server does;
- ``<first label>.<POP>.<rest of the domain>`` (``d111.NRT20-P2.cloudfront.net``) → the
  address of that POP in ``pop_answers``;
- names in ``static_answers`` → their address (e.g. a name a warm script resolves first);
- any other name → NXDOMAIN (the distribution domain with no mapping and no default
  answers NOERROR with no data).

Faults for the tests and the lab: ``drop`` (no answer at all), ``servfail`` and
``truncate`` (UDP answers carry only the TC bit, so the client must retry over TCP),
for every query or only for one name or one subnet. ``latency`` delays each answer (an
emulated round trip) without serialising them: each query is answered in its own worker.
``queries`` counts what was asked by (name, subnet, transport).
"""

from __future__ import annotations

import contextlib
import ipaddress
import selectors
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Final, Literal

import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

Fault = Literal["drop", "servfail", "truncate"]
Transport = Literal["udp", "tcp"]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

FAULTS: Final = ("drop", "servfail", "truncate")
# Enough workers that a benchmark baseline with 100 threads never queues behind the latency.
_WORKERS: Final = 256
_POLL_SECONDS: Final = 0.05
_TCP_IDLE_SECONDS: Final = 10.0


@dataclass(frozen=True, slots=True)
class QueryKey:
    """One kind of question: the name asked (lower case, no trailing dot), the ECS subnet
    carried (``"198.51.100.0/24"``, or ``None``) and the transport."""

    name: str
    subnet: str | None
    transport: Transport


class LabDNSServer:
    """A dnspython DNS server on ``host`` (UDP and TCP, same port; port 0 picks a free one).

    Use as a context manager or call ``start``/``stop``. ``address`` is ``(host, port)``
    once started; ``resolver`` is the ``host:port`` form ``EDGEFILL_RESOLVER`` takes.
    """

    def __init__(
        self,
        domain: str,
        subnet_answers: Mapping[str, str] | None = None,
        pop_answers: Mapping[str, str] | None = None,
        default_address: str | None = None,
        static_answers: Mapping[str, str] | None = None,
        ttl: int = 60,
        latency: float = 0.0,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.domain = _norm(domain)
        label, _, suffix = self.domain.partition(".")
        if not suffix:
            raise ValueError(f"domain {domain!r} needs at least two labels")
        self._label, self._suffix = label, suffix
        # Longest prefix first, so the most specific mapping wins.
        self._subnets: list[tuple[Network, str]] = sorted(
            (
                (ipaddress.ip_network(cidr, strict=False), _address(address))
                for cidr, address in (subnet_answers or {}).items()
            ),
            key=lambda item: item[0].prefixlen,
            reverse=True,
        )
        self._pops = {
            pop.lower(): _address(address) for pop, address in (pop_answers or {}).items()
        }
        self._static = {
            _norm(name): _address(addr) for name, addr in (static_answers or {}).items()
        }
        self.default_address = None if default_address is None else _address(default_address)
        self.ttl = ttl
        self.latency = latency
        self._host, self._port = host, port
        self._faults: dict[tuple[str | None, str | None], Fault] = {}
        self._lock = threading.Lock()
        self.queries: Counter[QueryKey] = Counter()
        self._udp: socket.socket | None = None
        self._tcp: socket.socket | None = None
        self._stopping = threading.Event()
        self._loop: threading.Thread | None = None
        self._workers: ThreadPoolExecutor | None = None

    # ---- configuration -------------------------------------------------------------

    def set_fault(
        self, fault: Fault | None, name: str | None = None, subnet: str | None = None
    ) -> None:
        """Inject ``fault`` for every query, or only for ``name`` and/or the ECS ``subnet``
        (``None`` clears it). The most specific rule wins."""
        if fault is not None and fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; expected one of {', '.join(FAULTS)}")
        key = (
            None if name is None else _norm(name),
            None if subnet is None else _subnet_text(subnet),
        )
        with self._lock:
            if fault is None:
                self._faults.pop(key, None)
            else:
                self._faults[key] = fault

    def pop_name(self, pop: str) -> str:
        """The name this server answers for ``pop``: ``<label>.<POP>.<suffix>``."""
        return f"{self._label}.{pop}.{self._suffix}"

    # ---- counters ------------------------------------------------------------------

    @property
    def query_count(self) -> int:
        """Every query received, over both transports."""
        with self._lock:
            return sum(self.queries.values())

    def count(
        self, name: str | None = None, subnet: str | None = None, transport: Transport | None = None
    ) -> int:
        """Queries received matching every filter given."""
        wanted_name = None if name is None else _norm(name)
        wanted_subnet = None if subnet is None else _subnet_text(subnet)
        with self._lock:
            return sum(
                n
                for key, n in self.queries.items()
                if (wanted_name is None or key.name == wanted_name)
                and (wanted_subnet is None or key.subnet == wanted_subnet)
                and (transport is None or key.transport == transport)
            )

    def reset_counts(self) -> None:
        with self._lock:
            self.queries.clear()

    # ---- lifecycle -----------------------------------------------------------------

    @property
    def address(self) -> tuple[str, int]:
        if self._udp is None:
            raise RuntimeError("the DNS server is not started")
        host, port = self._udp.getsockname()[:2]
        return host, port

    @property
    def resolver(self) -> str:
        """``host:port`` for ``EDGEFILL_RESOLVER``."""
        host, port = self.address
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    def start(self) -> LabDNSServer:
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        # UDP and TCP must share the port number, as a real resolver's do: a client
        # retries a truncated answer over TCP on the same port. Port 0 may pick a UDP
        # port whose TCP twin is taken, so try a few times.
        for _ in range(20):
            udp = socket.socket(family, socket.SOCK_DGRAM)
            udp.bind((self._host, self._port))
            port = udp.getsockname()[1]
            tcp = socket.socket(family, socket.SOCK_STREAM)
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                tcp.bind((self._host, port))
            except OSError:
                udp.close()
                tcp.close()
                if self._port:
                    raise
                continue
            tcp.listen(128)
            break
        else:
            raise OSError("could not bind UDP and TCP on one free port")
        udp.setblocking(False)
        tcp.setblocking(False)
        self._udp, self._tcp = udp, tcp
        self._stopping.clear()
        self._workers = ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix="lab-dns")
        self._loop = threading.Thread(target=self._serve, name="lab-dns-loop", daemon=True)
        self._loop.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._loop is not None:
            self._loop.join(timeout=5)
        if self._workers is not None:
            self._workers.shutdown(wait=True, cancel_futures=True)
        for sock in (self._udp, self._tcp):
            if sock is not None:
                sock.close()
        self._loop = self._workers = None

    def __enter__(self) -> LabDNSServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- serving -------------------------------------------------------------------

    def _serve(self) -> None:
        assert self._udp is not None and self._tcp is not None and self._workers is not None
        selector = selectors.DefaultSelector()
        selector.register(self._udp, selectors.EVENT_READ, "udp")
        selector.register(self._tcp, selectors.EVENT_READ, "tcp")
        with selector:
            while not self._stopping.is_set():
                for key, _ in selector.select(timeout=_POLL_SECONDS):
                    if key.data == "udp":
                        self._receive_udp()
                    else:
                        self._accept_tcp()

    def _receive_udp(self) -> None:
        assert self._udp is not None and self._workers is not None
        try:
            wire, peer = self._udp.recvfrom(65535)
        except (BlockingIOError, OSError):
            return
        self._submit(self._answer_udp, wire, peer)

    def _accept_tcp(self) -> None:
        assert self._tcp is not None
        try:
            conn, _ = self._tcp.accept()
        except (BlockingIOError, OSError):
            return
        conn.setblocking(True)
        conn.settimeout(_TCP_IDLE_SECONDS)
        threading.Thread(target=self._serve_tcp, args=(conn,), daemon=True).start()

    def _submit(self, fn: object, *args: object) -> None:
        assert self._workers is not None
        with contextlib.suppress(RuntimeError):  # raised only while shutting down
            self._workers.submit(fn, *args)  # type: ignore[arg-type]

    def _answer_udp(self, wire: bytes, peer: tuple[str, int]) -> None:
        reply = self._reply(wire, "udp")
        if reply is not None and self._udp is not None and not self._stopping.is_set():
            with contextlib.suppress(OSError):  # the client went away: nothing to tell it
                self._udp.sendto(reply, peer)

    def _serve_tcp(self, conn: socket.socket) -> None:
        with conn:
            while not self._stopping.is_set():
                try:
                    header = _recv_exact(conn, 2)
                    if header is None:
                        return
                    wire = _recv_exact(conn, struct.unpack("!H", header)[0])
                    if wire is None:
                        return
                except OSError:
                    return
                reply = self._reply(wire, "tcp")
                if reply is None:
                    continue  # "drop": the client times out
                try:
                    conn.sendall(struct.pack("!H", len(reply)) + reply)
                except OSError:
                    return

    def _reply(self, wire: bytes, transport: Transport) -> bytes | None:
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return None  # not DNS: a real server ignores it too
        if not query.question:
            return None
        question = query.question[0]
        name = _norm(question.name.to_text())
        ecs = _ecs_of(query)
        subnet = None if ecs is None else _subnet_text(f"{ecs.address}/{ecs.srclen}")
        with self._lock:
            self.queries[QueryKey(name, subnet, transport)] += 1
            fault = self._fault_for(name, subnet)
        if self.latency:
            time.sleep(self.latency)
        if fault == "drop":
            return None
        response = dns.message.make_response(query)
        if fault == "servfail":
            response.set_rcode(dns.rcode.SERVFAIL)
            return response.to_wire()
        if fault == "truncate" and transport == "udp":
            response.flags |= dns.flags.TC
            return response.to_wire()
        known, address, scope = self._lookup(name, ecs)
        if ecs is not None:
            response.use_edns(0, options=[dns.edns.ECSOption(ecs.address, ecs.srclen, scope)])
        if not known:
            response.set_rcode(dns.rcode.NXDOMAIN)
        elif address is None:
            pass  # the name exists but has no address for this client: NOERROR, no data
        elif question.rdtype == dns.rdatatype.A and ":" not in address:
            response.answer.append(
                dns.rrset.from_text(question.name, self.ttl, dns.rdataclass.IN, "A", address)
            )
        elif question.rdtype == dns.rdatatype.AAAA and ":" in address:
            response.answer.append(
                dns.rrset.from_text(question.name, self.ttl, dns.rdataclass.IN, "AAAA", address)
            )
        # Any other type for a known name: NOERROR with no data, as DNS says.
        return response.to_wire()

    def _fault_for(self, name: str, subnet: str | None) -> Fault | None:
        for key in ((name, subnet), (name, None), (None, subnet), (None, None)):
            if key in self._faults:
                return self._faults[key]
        return None

    def _lookup(self, name: str, ecs: dns.edns.ECSOption | None) -> tuple[bool, str | None, int]:
        """Whether ``name`` exists, the address answering it and the ECS scope covered."""
        with self._lock:
            if name == self.domain:
                if ecs is not None:
                    client = ipaddress.ip_network(f"{ecs.address}/{ecs.srclen}", strict=False)
                    for network, address in self._subnets:
                        if client.version == network.version and client.subnet_of(network):  # type: ignore[arg-type]
                            return True, address, network.prefixlen
                return True, self.default_address, 0
            if name in self._static:
                return True, self._static[name], 0
            label, _, rest = name.partition(".")
            pop, _, suffix = rest.partition(".")
            if label == self._label and suffix == self._suffix and pop in self._pops:
                return True, self._pops[pop], 0
        return False, None, 0


def _ecs_of(message: dns.message.Message) -> dns.edns.ECSOption | None:
    for option in message.options:
        if isinstance(option, dns.edns.ECSOption):
            return option
    return None


def _recv_exact(conn: socket.socket, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def _norm(name: str) -> str:
    return name.rstrip(".").lower()


def _address(value: str) -> str:
    return str(ipaddress.ip_address(value))


def _subnet_text(subnet: str) -> str:
    return str(ipaddress.ip_network(subnet, strict=False))
