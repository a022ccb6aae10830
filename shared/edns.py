"""Edge resolution: which CloudFront edge address serves a region or a POP.

CloudFront answers a DNS query for the distribution domain with the edge closest to the
client subnet the resolver forwards (EDNS Client Subnet, RFC 7871). To see the edge a
viewer in ``ap-northeast-1`` sees, we ask for the distribution domain with a client
subnet from that region; to reach one POP we ask for the distribution's label under
that POP (``d111.NRT20-P2.cloudfront.net``).

One query per distinct (name, subnet) per run, never per request; answers are cached
for their TTL by the ``EdgeResolver`` a container keeps. UDP with a timeout and retries,
TCP when the answer comes back truncated. Every failure is a ``ResolveError`` that names
the target and says whether trying again later could help.

Only real edges: an answer's A records count only when their owner is the question name
or a name on its CNAME chain (a resolver or a spoofer may add records for other names),
and every address must be global unicast (``ipaddress.ip_address(a).is_global``), so a
poisoned or hostile answer cannot point the warmer at a private network, loopback or
the instance metadata service. Any other address fails that target, named.
``EDGEFILL_ALLOW_PRIVATE_EDGES=true`` lifts the second rule for the lab and the tests,
whose edges live on 127.0.0.x; the template never sets it.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Final

import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype

from shared.config import Network, PrewarmConfig
from shared.messages import is_pop_code, is_region_code

# One representative /24 per AWS region with CloudFront presence, taken from the EC2
# prefixes AWS publishes for that region in ip-ranges.json (the enclosing published prefix
# is in the comment). CloudFront maps a subnet to the edge its viewers would reach, so an
# EC2 block of the region stands for "a viewer in that region". Override or extend with
# EDGEFILL_REGION_SUBNETS when a region is missing or a closer network matters.
REGION_SUBNETS: Final[Mapping[str, str]] = {
    "us-east-1": "54.80.0.0/24",  # 54.80.0.0/13
    "us-east-2": "18.216.0.0/24",  # 18.216.0.0/14
    "us-west-1": "54.183.0.0/24",  # 54.183.0.0/16
    "us-west-2": "34.208.0.0/24",  # 34.208.0.0/12
    "ca-central-1": "35.182.0.0/24",  # 35.182.0.0/15
    "sa-east-1": "18.228.0.0/24",  # 18.228.0.0/16
    "eu-west-1": "34.240.0.0/24",  # 34.240.0.0/13
    "eu-west-2": "35.176.0.0/24",  # 35.176.0.0/15
    "eu-west-3": "35.180.0.0/24",  # 35.180.0.0/16
    "eu-central-1": "18.184.0.0/24",  # 18.184.0.0/15
    "eu-north-1": "13.48.0.0/24",  # 13.48.0.0/15
    "eu-south-1": "15.160.0.0/24",  # 15.160.0.0/16
    "ap-northeast-1": "13.112.0.0/24",  # 13.112.0.0/14
    "ap-northeast-2": "13.124.0.0/24",  # 13.124.0.0/16
    "ap-northeast-3": "13.208.0.0/24",  # 13.208.0.0/16
    "ap-southeast-1": "13.228.0.0/24",  # 13.228.0.0/15
    "ap-southeast-2": "13.54.0.0/24",  # 13.54.0.0/15
    "ap-south-1": "13.232.0.0/24",  # 13.232.0.0/14
    "ap-east-1": "18.162.0.0/24",  # 18.162.0.0/16
    "me-south-1": "15.185.0.0/24",  # 15.185.0.0/16
    "af-south-1": "13.244.0.0/24",  # 13.244.0.0/15
}

DEFAULT_TIMEOUT: Final = 2.0  # seconds per UDP or TCP exchange
DEFAULT_ATTEMPTS: Final = 3  # exchanges before a target is reported unreachable
# Answers are kept at most this long even when the TTL says more: edges move.
MAX_CACHE_SECONDS: Final = 300
# Distinct names resolved at once; each costs one round trip to the resolver.
RESOLVE_CONCURRENCY: Final = 16
# CNAME links followed from the question name; CloudFront answers with none, a public
# resolver's chain is a link or two. A longer chain (or a loop) is not followed further.
MAX_CNAME_LINKS: Final = 8


class ResolveError(Exception):
    """A target that could not be resolved. ``retryable`` is True when the same query may
    succeed later (timeouts, SERVFAIL), False when it cannot (NXDOMAIN, unknown region)."""

    def __init__(self, target: str, reason: str, retryable: bool) -> None:
        super().__init__(f"{target}: {reason}")
        self.target = target
        self.reason = reason
        self.retryable = retryable


@dataclass(frozen=True, slots=True)
class Question:
    """What to ask for one target: a name, and the client subnet to send with it."""

    target: str
    name: str
    subnet: Network | None

    @property
    def key(self) -> tuple[str, str | None]:
        return self.name, None if self.subnet is None else str(self.subnet)


@dataclass(frozen=True, slots=True)
class Answer:
    """The A records answering a question, their TTL and how they came (udp or tcp)."""

    addresses: tuple[str, ...]
    ttl: int
    transport: str


@dataclass(frozen=True, slots=True)
class Edge:
    """The edge a target resolved to: ``address`` is the one the warmer connects to."""

    target: str
    address: str
    addresses: tuple[str, ...]
    name: str
    subnet: str | None
    ttl: int
    transport: str
    cached: bool = False


@dataclass
class Resolution:
    """Edges per target, errors per target, and how many queries went to the resolver."""

    edges: dict[str, Edge] = field(default_factory=dict)
    errors: dict[str, ResolveError] = field(default_factory=dict)
    queries: int = 0

    @property
    def unreachable(self) -> bool:
        """True when nothing resolved and some target failed for a reason that may pass."""
        return not self.edges and any(error.retryable for error in self.errors.values())


def region_subnets(config: PrewarmConfig) -> dict[str, Network]:
    """The built-in table with ``EDGEFILL_REGION_SUBNETS`` overrides applied."""
    table: dict[str, Network] = {
        region: ipaddress.ip_network(cidr) for region, cidr in REGION_SUBNETS.items()
    }
    table.update(dict(config.region_subnets))
    return table


def question_for(target: str, config: PrewarmConfig, subnets: Mapping[str, Network]) -> Question:
    """The DNS question that finds ``target``'s edge, or ``ResolveError`` naming it."""
    if is_pop_code(target):
        label, _, rest = config.distribution_domain.partition(".")
        return Question(target, f"{label}.{target}.{rest}", None)
    if is_region_code(target):
        subnet = subnets.get(target)
        if subnet is None:
            raise ResolveError(
                target,
                "no client subnet is known for this region; add it to EDGEFILL_REGION_SUBNETS",
                retryable=False,
            )
        return Question(target, config.distribution_domain, subnet)
    raise ResolveError(
        target,
        "is neither an AWS region code (us-east-1) nor a CloudFront POP code (NRT20-P2)",
        retryable=False,
    )


class EdgeResolver:
    """Asks one resolver for A records with an optional client subnet; caches by TTL.

    Thread-safe. A container keeps one, so warm invocations reuse answers still fresh.
    """

    def __init__(
        self,
        host: str,
        port: int = 53,
        timeout: float = DEFAULT_TIMEOUT,
        attempts: int = DEFAULT_ATTEMPTS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.attempts = max(1, attempts)
        self._clock = clock
        self._lock = threading.Lock()
        # Bounded by the distinct (name, subnet) pairs asked: targets × distributions.
        self._cache: dict[tuple[str, str | None], tuple[float, Answer]] = {}
        self.queries = 0

    def cached(self, question: Question) -> Answer | None:
        with self._lock:
            hit = self._cache.get(question.key)
            if hit is None:
                return None
            expires, answer = hit
            if self._clock() >= expires:
                del self._cache[question.key]
                return None
            return answer

    def lookup(self, question: Question) -> tuple[Answer, bool]:
        """The answer to ``question`` and whether it came from the cache."""
        answer = self.cached(question)
        if answer is not None:
            return answer, True
        answer = self._ask(question)
        if answer.ttl > 0:
            with self._lock:
                expires = self._clock() + min(answer.ttl, MAX_CACHE_SECONDS)
                self._cache[question.key] = (expires, answer)
        return answer, False

    def _ask(self, question: Question) -> Answer:
        options: list[dns.edns.Option] = []
        if question.subnet is not None:
            subnet = question.subnet
            options.append(dns.edns.ECSOption(str(subnet.network_address), subnet.prefixlen))
        query = dns.message.make_query(question.name, "A", use_edns=0, options=options)
        where = f"resolver {self.host}:{self.port}"
        problem = "no answer"
        for _ in range(self.attempts):
            with self._lock:
                self.queries += 1
            try:
                response = dns.query.udp(
                    query, self.host, port=self.port, timeout=self.timeout, ignore_unexpected=True
                )
                transport = "udp"
                if response.flags & dns.flags.TC:
                    # Too big for UDP: the same question over TCP, as RFC 7766 asks.
                    response = dns.query.tcp(query, self.host, port=self.port, timeout=self.timeout)
                    transport = "tcp"
            except dns.exception.Timeout:
                problem = f"{where} did not answer within {self.timeout:g} s"
                continue
            except (OSError, EOFError, dns.exception.DNSException) as error:
                problem = f"{where} is unreachable ({type(error).__name__}: {error})"
                continue
            return _answer_of(question, response, transport)
        raise ResolveError(
            question.target,
            f"{problem} for {question.name} after {self.attempts} attempts",
            retryable=True,
        )


def _answer_of(question: Question, response: dns.message.Message, transport: str) -> Answer:
    rcode = response.rcode()
    if rcode == dns.rcode.NXDOMAIN:
        raise ResolveError(question.target, f"{question.name} does not exist (NXDOMAIN)", False)
    if rcode == dns.rcode.SERVFAIL:
        raise ResolveError(
            question.target, f"the resolver failed on {question.name} (SERVFAIL)", True
        )
    if rcode != dns.rcode.NOERROR:
        raise ResolveError(
            question.target,
            f"the resolver refused {question.name} ({dns.rcode.to_text(rcode)})",
            True,
        )
    # CloudFront answers A records directly; a public resolver may put a CNAME chain first.
    # Records for any name off that chain are ignored.
    owners = _cname_chain(question.name, response)
    addresses: list[str] = []
    ttls: list[int] = []
    for rrset in response.answer:
        if rrset.rdtype == dns.rdatatype.A and _name_text(rrset.name) in owners:
            addresses.extend(item.address for item in rrset)
            ttls.append(rrset.ttl)
    if not addresses:
        raise ResolveError(question.target, f"no A record for {question.name}", False)
    return Answer(tuple(addresses), min(ttls), transport)


def _name_text(name: dns.name.Name) -> str:
    return name.to_text(omit_final_dot=True).lower()


def _cname_chain(question_name: str, response: dns.message.Message) -> set[str]:
    """The question name and the names its CNAME records lead to, in order, at most
    ``MAX_CNAME_LINKS`` links (a loop ends where it would revisit a name)."""
    cnames = {
        _name_text(rrset.name): _name_text(rrset[0].target)
        for rrset in response.answer
        if rrset.rdtype == dns.rdatatype.CNAME and len(rrset)
    }
    current = question_name.rstrip(".").lower()
    chain = {current}
    for _ in range(MAX_CNAME_LINKS):
        following = cnames.get(current)
        if following is None or following in chain:
            break
        chain.add(following)
        current = following
    return chain


def _answer_problem(answer: Answer) -> str | None:
    """The first address of ``answer`` that cannot be an edge, explained, else None."""
    return next(filter(None, map(edge_address_problem, answer.addresses)), None)


def edge_address_problem(address: str) -> str | None:
    """Why ``address`` cannot be a CloudFront edge (not global unicast), else None."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return f"{address[:60]!r} is not an IP address"
    if not parsed.is_global or parsed.is_multicast:
        return f"{address} is not a global unicast address (private, loopback, reserved...)"
    return None


def resolve_edges(
    targets: Iterable[str],
    config: PrewarmConfig,
    resolver: EdgeResolver,
    on_target: Callable[[str, Edge | ResolveError], None] | None = None,
) -> Resolution:
    """Resolve every target once: one query per distinct (name, subnet), all in parallel.

    Never raises for a bad target: its ``ResolveError`` lands in ``Resolution.errors``.
    ``on_target`` hears each target as soon as it is settled (from a resolver thread), so
    a caller can start on the edges already known while a slow target times out.
    """
    resolution = Resolution()
    lock = threading.Lock()

    def settle(target: str, outcome: Edge | ResolveError) -> None:
        with lock:
            if isinstance(outcome, ResolveError):
                resolution.errors[target] = outcome
            else:
                resolution.edges[target] = outcome
        if on_target is not None:
            on_target(target, outcome)

    subnets = region_subnets(config)
    askers: dict[tuple[str, str | None], list[str]] = {}
    distinct: dict[tuple[str, str | None], Question] = {}
    for target in dict.fromkeys(targets):
        try:
            question = question_for(target, config, subnets)
        except ResolveError as error:
            settle(target, error)
            continue
        askers.setdefault(question.key, []).append(target)
        distinct.setdefault(question.key, question)

    def ask(question: Question) -> None:
        try:
            answer, cached = resolver.lookup(question)
        except ResolveError as error:
            for target in askers[question.key]:
                settle(target, ResolveError(target, error.reason, error.retryable))
            return
        problem = None if config.allow_private_edges else _answer_problem(answer)
        for target in askers[question.key]:
            if problem is not None:
                reason = f"{question.name} answered {problem}; refused as an edge"
                settle(target, ResolveError(target, reason, retryable=False))
            else:
                settle(target, _edge(target, question, answer, cached))

    before = resolver.queries
    if distinct:
        with ThreadPoolExecutor(min(RESOLVE_CONCURRENCY, len(distinct))) as pool:
            list(pool.map(ask, distinct.values()))
    resolution.queries = resolver.queries - before
    return resolution


def _edge(target: str, question: Question, answer: Answer, cached: bool) -> Edge:
    return Edge(
        target=target,
        address=answer.addresses[0],
        addresses=answer.addresses,
        name=question.name,
        subnet=question.key[1],
        ttl=answer.ttl,
        transport=answer.transport,
        cached=cached,
    )
