"""Benchmark: the prewarm engine against a warm script built the common way.

Six local HTTPS edges (127.0.0.2-7, one port) and the lab DNS server run in a child
process and emulate a far-away edge with a 30 ms round trip: a new connection pays one
RTT for TCP and one for the TLS handshake, each request one RTT, each DNS answer one RTT.
6 targets × 50 paths × 3 encodings = 900 warms.

The baseline is built like the common warm script: for every request two DNS lookups
(the region's address, then the EDNS query with it as client subnet), a fresh TLS
connection, no timeouts, no retries, 100 threads. Both run in the same process, several
times; the medians are compared.

Targets (exit status 1 when one is missed):
- engine wall ≤ 1/3 of the baseline wall;
- DNS queries = number of targets; TLS handshakes ≤ edges × concurrency;
- engine wall ≤ 1.25 × ideal, ideal = warms × RTT ÷ concurrency (default concurrency).

Run: .venv/bin/python bench/bench_prewarm.py [--rounds N] [--concurrency C]
"""

from __future__ import annotations

import argparse
import multiprocessing
import socket
import ssl
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

RTT = 0.030
DOMAIN = "d111bench.cloudfront.net"
VIEWER = "cdn.bench.example"
PATHS = tuple(f"/assets/file-{index:02d}.js" for index in range(50))
ENCODINGS = ("br+gzip", "gzip", "identity")
BODY = b"x" * 10_000
BASELINE_THREADS = 100
# target → (edge address, address the baseline script looks up first for the region/POP)
TARGETS: dict[str, tuple[str, str]] = {
    "us-east-1": ("127.0.0.2", "54.80.0.10"),
    "eu-west-1": ("127.0.0.3", "34.240.0.10"),
    "ap-northeast-1": ("127.0.0.4", "13.112.0.10"),
    "ap-southeast-2": ("127.0.0.5", "13.54.0.10"),
    "sa-east-1": ("127.0.0.6", "18.228.0.10"),
    "NRT20-P2": ("127.0.0.7", "13.112.0.20"),
}


# ---- the far-away side (child process) -----------------------------------------------


class FarEdges:
    """Six HTTPS edges; every connection has its own thread and answers one RTT late.

    Deliberately lean (no http.server): a real edge adds no measurable time of its own,
    so neither should the emulation; ``time.sleep`` keeps the emulated RTT within a few
    hundred microseconds, where an event loop's millisecond timers would run late.
    """

    def __init__(self, context: ssl.SSLContext) -> None:
        self.context = context
        # late_us: how much later than one RTT the answers went out, summed: the
        # emulation's own lag (CPU contention), reported next to the results.
        self.counts = {"handshakes": 0, "requests": 0, "late_us": 0}
        self._lock = threading.Lock()
        self.port = 0
        for target, (address, _) in TARGETS.items():
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((address, self.port))
            listener.listen(512)
            self.port = listener.getsockname()[1]
            pop = target if target.isupper() else "IAD89-C1"
            threading.Thread(target=self._accept, args=(listener, pop), daemon=True).start()

    def reset(self) -> None:
        with self._lock:
            self.counts.update(handshakes=0, requests=0, late_us=0)

    def _count(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self.counts[name] += amount

    def _accept(self, listener: socket.socket, pop: str) -> None:
        while True:
            client, _ = listener.accept()
            threading.Thread(target=self._connection, args=(client, pop), daemon=True).start()

    def _connection(self, client: socket.socket, pop: str) -> None:
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        time.sleep(RTT)  # TCP: SYN, SYN-ACK
        time.sleep(RTT)  # TLS 1.3: ClientHello, ServerHello ... Finished
        try:
            tls = self.context.wrap_socket(client, server_side=True)
        except (ssl.SSLError, OSError):
            client.close()
            return
        self._count("handshakes")
        head = (
            f"HTTP/1.1 200 OK\r\nContent-Length: {len(BODY)}\r\n"
            f"X-Cache: Miss from cloudfront\r\nX-Amz-Cf-Pop: {pop}\r\n\r\n"
        ).encode()
        pending = b""
        try:
            while True:
                while b"\r\n\r\n" not in pending:
                    data = tls.recv(65536)
                    if not data:
                        return
                    pending += data
                request, _, pending = pending.partition(b"\r\n\r\n")
                if not request.startswith(b"GET "):
                    return
                arrived = time.perf_counter()
                time.sleep(RTT)  # request out, first byte back
                self._count("requests")
                self._count("late_us", int((time.perf_counter() - arrived - RTT) * 1e6))
                tls.sendall(head + BODY)
        except (ssl.SSLError, OSError):
            pass
        finally:
            tls.close()


def serve(conn: Connection) -> None:
    """Child process: edges + DNS with emulated RTT; answers "stats", "reset", "stop"."""
    from edgefill.lab.dns import LabDNSServer
    from edgefill.lab.tls import LabCA
    from shared.edns import REGION_SUBNETS

    ca = LabCA(Path(tempfile.mkdtemp(prefix="bench-prewarm-ca-")))
    edges = FarEdges(ca.server_context(VIEWER))
    subnet_answers = {REGION_SUBNETS[t]: a for t, (a, _) in TARGETS.items() if t in REGION_SUBNETS}
    dns_server = LabDNSServer(
        DOMAIN,
        subnet_answers=subnet_answers,
        pop_answers={"NRT20-P2": TARGETS["NRT20-P2"][0]},
        static_answers={f"ec2.{t}.amazonaws.com": first for t, (_, first) in TARGETS.items()},
        ttl=60,
        latency=RTT,
    ).start()
    conn.send({"ca": str(ca.bundle_path), "edge_port": edges.port, "resolver": dns_server.resolver})
    while (command := conn.recv()) != "stop":
        if command == "reset":
            edges.reset()
            dns_server.reset_counts()
        conn.send({**edges.counts, "dns": dns_server.query_count})
    dns_server.stop()
    conn.send("stopped")


# ---- the two warmers ------------------------------------------------------------------


def run_engine(env: dict[str, str], concurrency: int | None) -> tuple[float, Any]:
    from prewarm_worker.engine import WarmContext, WarmPlan, WarmSettings, warm
    from shared.config import PrewarmConfig
    from shared.edge_http import EdgeClient
    from shared.edns import EdgeResolver

    config = PrewarmConfig.from_env(env)
    settings = WarmSettings.from_config(config)
    if concurrency is not None:
        settings = WarmSettings(concurrency=concurrency)
    started = time.perf_counter()
    # A fresh resolver and client, as a cold container would have.
    client = EdgeClient(port=config.port, maxsize=settings.concurrency)
    resolver = EdgeResolver(config.resolver_host, config.resolver_port)
    plan = WarmPlan(PATHS, tuple(TARGETS), ENCODINGS, VIEWER)
    report = warm(plan, WarmContext(config, resolver, client, settings))
    wall = time.perf_counter() - started
    client.close()
    return wall, report


def run_baseline(resolver: str, edge_port: int, ca: str) -> tuple[float, int]:
    """Like the common script: dig the region's address, dig the edge with it as
    client subnet, then curl --resolve with a fresh connection; 100 at a time."""
    import dns.edns
    import dns.message
    import dns.query
    import urllib3

    host, port = resolver.rsplit(":", 1)

    def dig(name: str, subnet: str | None = None) -> str:
        options = [dns.edns.ECSOption(subnet, 24)] if subnet else []
        query = dns.message.make_query(name, "A", use_edns=0 if options else None, options=options)
        response = dns.query.udp(query, host, port=int(port))
        return str(response.answer[0][0].address)

    def one(task: tuple[str, str, str]) -> int:
        path, target, encoding = task
        first = dig(f"ec2.{target}.amazonaws.com")
        if target == "NRT20-P2":
            label, _, rest = DOMAIN.partition(".")
            edge = dig(f"{label}.{target}.{rest}")
        else:
            edge = dig(DOMAIN, first)
        pool = urllib3.HTTPSConnectionPool(
            edge,
            edge_port,
            server_hostname=VIEWER,
            assert_hostname=VIEWER,
            ca_certs=ca,
            cert_reqs="CERT_REQUIRED",
            retries=False,
        )
        headers = {"Host": VIEWER}
        if encoding != "identity":
            headers["Accept-Encoding"] = encoding.replace("+", ", ")
        response = pool.request("GET", path, headers=headers)
        pool.close()
        return response.status

    tasks = [(p, t, e) for t in TARGETS for e in ENCODINGS for p in PATHS]
    started = time.perf_counter()
    with ThreadPoolExecutor(BASELINE_THREADS) as pool:
        statuses = list(pool.map(one, tasks))
    return time.perf_counter() - started, sum(status == 200 for status in statuses)


# ---- driver ----------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=None, help="engine threads")
    args = parser.parse_args()

    parent, child = multiprocessing.get_context("fork").Pipe()
    far = multiprocessing.get_context("fork").Process(target=serve, args=(child,), daemon=True)
    far.start()
    info = parent.recv()
    env = {
        "EDGEFILL_DISTRIBUTION_DOMAIN": DOMAIN,
        "EDGEFILL_VIEWER_HOST": VIEWER,
        "EDGEFILL_RESOLVER": info["resolver"],
        "EDGEFILL_EDGE_PORT": str(info["edge_port"]),
        "EDGEFILL_ALLOW_PRIVATE_EDGES": "true",  # the bench's edges live on 127.0.0.x
    }
    import os

    os.environ["REQUESTS_CA_BUNDLE"] = info["ca"]

    from shared.config import PrewarmConfig

    concurrency = args.concurrency or PrewarmConfig.from_env(env).concurrency
    warms = len(PATHS) * len(TARGETS) * len(ENCODINGS)

    def stats() -> dict[str, int]:
        parent.send("stats")
        result: dict[str, int] = parent.recv()
        return result

    def reset() -> None:
        parent.send("reset")
        parent.recv()

    engine_walls: list[float] = []
    baseline_walls: list[float] = []
    engine_stats: list[dict[str, int]] = []
    ok = True
    for round_number in range(1, args.rounds + 1):
        reset()
        wall, report = run_engine(env, args.concurrency)
        seen = stats()
        engine_walls.append(wall)
        engine_stats.append(seen)
        if report.ok != warms:
            print(f"engine: {report.failed} warms failed: {report.failures[:3]}")
            ok = False
        reset()
        base_wall, base_ok = run_baseline(info["resolver"], info["edge_port"], info["ca"])
        base_seen = stats()
        baseline_walls.append(base_wall)
        print(
            f"round {round_number}: engine {wall:.3f} s ({seen['handshakes']} handshakes, "
            f"{seen['dns']} DNS queries, {seen['requests']} requests, edges answered "
            f"{seen['late_us'] / max(1, seen['requests']) / 1000:.1f} ms late) | baseline "
            f"{base_wall:.3f} s ({base_seen['handshakes']} handshakes, {base_seen['dns']} DNS "
            f"queries, {base_ok} ok)"
        )
    parent.send("stop")
    parent.recv()
    far.join(timeout=10)

    engine = statistics.median(engine_walls)
    baseline = statistics.median(baseline_walls)
    ideal = warms * RTT / concurrency
    dns_queries = max(s["dns"] for s in engine_stats)
    handshakes = max(s["handshakes"] for s in engine_stats)
    edges = len({address for address, _ in TARGETS.values()})
    checks = [
        ("engine / baseline", engine / baseline, "≤ 0.333", engine <= baseline / 3),
        ("DNS queries / targets", dns_queries / len(TARGETS), "= 1", dns_queries == len(TARGETS)),
        (
            "TLS handshakes / (edges × concurrency)",
            handshakes / (edges * concurrency),
            "≤ 1",
            handshakes <= edges * concurrency,
        ),
        ("engine / ideal", engine / ideal, "≤ 1.25", engine <= 1.25 * ideal),
    ]
    print(
        f"\n{warms} warms, RTT {RTT * 1000:.0f} ms, engine concurrency {concurrency}, "
        f"baseline {BASELINE_THREADS} threads, median of {args.rounds} rounds"
    )
    print(f"engine {engine:.3f} s | baseline {baseline:.3f} s | ideal {ideal:.3f} s")
    for name, value, target, passed in checks:
        print(f"  {name:40s} {value:7.3f}  target {target:8s} {'ok' if passed else 'MISSED'}")
        ok = ok and passed
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
