"""Placement benchmark (issue 20, point 8): one copy and one warm under two placements.

    .venv/bin/python bench/bench_placement.py [--rounds N] [--size-mib M]

A real copy (the backfill worker's copy path, ``bench_backfill``'s worker subprocess)
from the lab origin into moto's S3 (server mode), and a real warm (the prewarm engine
in a subprocess of its own) against local HTTPS edges. Every connection to the origin,
the bucket and the edges goes through an ``rtt.RTTProxy`` (its own process): each way
is delayed by half the placement's round trip, so the TCP handshake, the TLS handshake,
each request/response exchange and each multipart-upload call cost what they cost on a
link of that RTT, and the worker's real protocol decides how many there are.

Placements (round trips from the worker):

    placement      origin   bucket   edges
    us-east-1      200 ms   220 ms   200 ms   (today: the stack in us-east-1, bucket and
                                              edges in Asia, origin in Hong Kong)
    beside          60 ms     1 ms     2 ms   (a regional stack beside its bucket)

The two alternate within the run (us-east-1, beside, beside, us-east-1, …); the median
of each leg counts, and the ratio beside / us-east-1 is printed per leg. DNS answers
(CloudFront's authoritative servers are anycast, near either placement) are not delayed.

Sizes: a 32 MiB object is four 8 MiB parts (the default part size), so the copy makes
every call a multi-part copy makes (create, parallel ranged GETs and part uploads,
complete) while the bytes themselves, which cross loopback in a fraction of a second,
do not hide the round trips. A bigger object would only add loopback transfer time to
both placements; the emulation charges latency, not a TCP window, so it would not show
the far placement's real bandwidth loss either (see ``rtt.py``). The warm is 2 regions ×
50 paths × 3 encodings = 300 requests of 10 kB at the engine's default concurrency:
enough rounds of the pool (300 / 30 = 10) that the handshakes do not dominate, and a few
seconds at 200 ms. The whole run takes about 30 s.

Exit status 1 when a copy or a warm fails (wrong bytes, a failed warm); the ratios are
measurements, not targets.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(ROOT), str(BENCH)]

from rtt import ProxyHost  # noqa: E402

MIB = 1024 * 1024
DOMAIN = "d111placement.cloudfront.net"
VIEWER = "cdn.placement.example"
WARM_REGIONS = {"ap-southeast-1": "127.0.0.2", "ap-northeast-1": "127.0.0.3"}
WARM_PATHS = tuple(f"/assets/segment-{index:02d}.ts" for index in range(50))
WARM_ENCODINGS = ("br+gzip", "gzip", "identity")
WARM_BODY = b"x" * 10_000


@dataclass(frozen=True)
class Placement:
    name: str
    origin_rtt: float
    bucket_rtt: float
    edge_rtt: float


PLACEMENTS = (
    Placement("us-east-1", origin_rtt=0.200, bucket_rtt=0.220, edge_rtt=0.200),
    Placement("beside", origin_rtt=0.060, bucket_rtt=0.001, edge_rtt=0.002),
)

# Documented prices (USD per GB), checked 2026-12-02; see docs/BENCHMARKS.md for the pages.
# A copy through a worker in us-east-1 writes each byte into a bucket in another region:
# S3 charges the worker's PUTs nothing, but the bytes leave us-east-1 for the bucket's
# region at the inter-region rate. Beside its bucket, the same PUT is in-region: free.
# The origin → worker leg is data transfer in (free) or the origin's own egress, the same
# for both placements; a warm's responses are CloudFront data transfer out to a viewer,
# priced by the edge, the same wherever the worker stands.
INTER_REGION_OUT_OF_US_EAST_1 = 0.02
IN_REGION = 0.00
# Lambda duration, x86, first tier: the same rate in us-east-1 and ap-southeast-1. The
# memory sizes are template.yaml's (BackfillFunction 1769 MB, PrewarmFunction 512 MB).
LAMBDA_GB_SECOND = 0.0000166667
MEMORY_GB = {"copy": 1769 / 1024, "warm": 512 / 1024}


# ---- the edges behind the proxies (this process) ---------------------------------------


class _EdgeHandler(BaseHTTPRequestHandler):
    """A CloudFront edge that answers every warm as a miss filled: 200, the body, X-Cache."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Length", str(len(WARM_BODY)))
        self.send_header("X-Cache", "Miss from cloudfront")
        self.send_header("X-Amz-Cf-Pop", "SIN2-P1")
        self.end_headers()
        self.wfile.write(WARM_BODY)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


class _S3Front(BaseHTTPRequestHandler):
    """What S3 is and moto's server is not, in front of moto: HTTPS, and connections kept
    alive (moto answers ``Connection: close``, so without it every call would pay a new
    TCP handshake that S3 does not charge). ``Expect: 100-continue`` is answered here as
    S3 answers it: one round trip before a part's body leaves.

    Each request is relayed whole to moto over loopback (no RTT behind this front)."""

    protocol_version = "HTTP/1.1"
    moto_port = 0  # set on the subclass made per run
    calls: list[str]  # the S3 calls relayed, in the order they arrived (set with moto_port)

    def _relay(self) -> None:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body: bytes | None = _read_chunked(self.rfile)
        else:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        if body is not None:
            headers["Content-Length"] = str(len(body))
        moto = http.client.HTTPConnection("127.0.0.1", self.moto_port, timeout=120)
        try:
            moto.request(self.command, self.path, body=body, headers=headers)
            answer = moto.getresponse()
            self.calls.append(_s3_call(self.command, self.path, answer.status))
            data = answer.read()
        finally:
            moto.close()
        self.send_response_only(answer.status, answer.reason)
        for name, value in answer.getheaders():
            if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                self.send_header(name, value)
        self.send_header("Content-Length", answer.getheader("Content-Length") or str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _relay  # noqa: N815

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


def _s3_call(method: str, target: str, status: int) -> str:
    """``PUT part 200``, ``GET .edgefill/… 404``: the call, which kind of key, the status."""
    parts = urlsplit(target)
    names = {item.partition("=")[0] for item in parts.query.split("&") if item} - {"x-id"}
    key = parts.path.lstrip("/").partition("/")[2]  # path style: /bucket/key
    if not key.startswith("placement-"):
        key = "/".join(key.split("/")[:2]) + "/…" if "/" in key else key or "(bucket)"
    else:
        key = "object"
    call = {"uploads": "create", "partNumber": "part"}.get(min(names, default=""), "")
    if names == {"uploadId"}:
        call = "complete" if method == "POST" else "abort" if method == "DELETE" else "list"
    return f"{method} {call or key} {status}"


_HOP_BY_HOP = frozenset(
    ("connection", "keep-alive", "transfer-encoding", "expect", "proxy-connection", "te")
)


def _read_chunked(stream: Any) -> bytes:
    parts: list[bytes] = []
    while True:
        size = int(stream.readline().split(b";")[0].strip(), 16)
        if size == 0:
            while stream.readline() not in (b"\r\n", b"\n", b""):
                pass  # trailers: none that S3 needs here
            return b"".join(parts)
        parts.append(stream.read(size))
        stream.readline()


# ---- worker subprocess: the warm -----------------------------------------------------------


def run_warm() -> dict[str, Any]:
    """The prewarm engine as the worker runs it: configuration from the environment, a
    fresh resolver and edge client (a cold container), the engine's default concurrency."""
    from prewarm_worker.engine import WarmContext, WarmPlan, warm
    from shared.config import PrewarmConfig
    from shared.edge_http import EdgeClient
    from shared.edns import EdgeResolver

    config = PrewarmConfig.from_env(os.environ)
    started = time.perf_counter()
    client = EdgeClient(port=config.port, maxsize=config.concurrency)
    resolver = EdgeResolver(config.resolver_host, config.resolver_port)
    plan = WarmPlan(WARM_PATHS, tuple(WARM_REGIONS), WARM_ENCODINGS, VIEWER)
    report = warm(plan, WarmContext.for_config(config, resolver, client))
    seconds = time.perf_counter() - started
    client.close()
    return {
        "seconds": seconds,
        "ok": report.ok,
        "failed": report.failed,
        "failures": [str(failure) for failure in report.failures[:3]],
        "concurrency": config.concurrency,
    }


# ---- orchestration ---------------------------------------------------------------------------


def warm_subprocess(env: dict[str, str]) -> dict[str, Any]:
    completed = subprocess.run(
        [sys.executable, __file__, "--worker", "warm"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"warm worker failed:\n{completed.stderr[-3000:]}")
    return dict(json.loads(completed.stdout.strip().splitlines()[-1]))


def main(rounds: int, size_mib: int) -> int:  # noqa: PLR0915
    # The proxies' process is forked first, while this process has no thread to copy.
    proxies = ProxyHost()

    import bench_backfill as backfill

    from edgefill.lab.dns import LabDNSServer
    from edgefill.lab.origin import LabOrigin
    from edgefill.lab.tls import LabCA, TLSThreadingHTTPServer
    from shared.edns import REGION_SUBNETS

    size = size_mib * MIB
    path = f"/placement-{size_mib}.bin"
    legs: dict[str, dict[str, list[dict[str, Any]]]] = {
        p.name: {"copy": [], "warm": []} for p in PLACEMENTS
    }
    failures: list[str] = []
    with (
        backfill.MotoProcess() as moto,
        tempfile.TemporaryDirectory(prefix="bench-placement-") as tmp,
    ):
        # Everything the worker talks to speaks TLS, as the real origin, S3 and edges do:
        # each new connection pays its TLS handshake's round trip through the proxy.
        ca = LabCA(Path(tmp))
        origin = LabOrigin(ssl_context=ca.server_context("127.0.0.1"))
        origin.start()
        moto_port = int(moto.url.rsplit(":", 1)[1])
        front_handler: type[_S3Front] = type(
            "_Front", (_S3Front,), {"moto_port": moto_port, "calls": []}
        )
        front = TLSThreadingHTTPServer(
            ("127.0.0.1", 0), front_handler, ca.server_context("127.0.0.1")
        )
        edges = TLSThreadingHTTPServer(
            ("127.0.0.1", 0), _EdgeHandler, ca.server_context(VIEWER, DOMAIN)
        )
        for server in (front, edges):
            threading.Thread(target=server.serve_forever, daemon=True).start()
        dns_server = LabDNSServer(
            DOMAIN,
            subnet_answers={REGION_SUBNETS[r]: address for r, address in WARM_REGIONS.items()},
            ttl=60,
        ).start()
        origin.put_generated(path, size, seed=20)
        origin.etag(path)  # the lab origin's MD5, computed before any clock starts
        s3 = backfill.moto_client("s3", moto.url)
        origin_port = int(origin.url.rsplit(":", 1)[1])

        # Each placement: its own proxies, one per far side (the edges share one port).
        routes: dict[str, dict[str, str]] = {}
        for placement in PLACEMENTS:
            name = placement.name
            _, origin_at = proxies.add(
                f"{name}/origin", ("127.0.0.1", origin_port), placement.origin_rtt
            )
            _, bucket_at = proxies.add(
                f"{name}/bucket", ("127.0.0.1", front.server_address[1]), placement.bucket_rtt
            )
            edge_port = 0
            for region, address in WARM_REGIONS.items():
                _, edge_port = proxies.add(
                    f"{name}/edge {region}",
                    ("127.0.0.1", edges.server_address[1]),
                    placement.edge_rtt,
                    (address, edge_port),
                )
            routes[name] = {
                "origin": f"https://127.0.0.1:{origin_at}",
                "bucket": f"https://127.0.0.1:{bucket_at}",
                "edge_port": str(edge_port),
            }

        base_env = {
            **os.environ,
            **backfill.FAKE_AWS,
            "EDGEFILL_BUCKET": backfill.BUCKET,
            "REQUESTS_CA_BUNDLE": str(ca.bundle_path),  # the origin client and the edges
            "AWS_CA_BUNDLE": str(ca.bundle_path),  # boto3, to the S3 front
        }

        # moto builds much on its first multipart upload: pay that before any clock.
        moto.reset()
        s3.create_bucket(Bucket=backfill.BUCKET)
        s3.upload_fileobj(_Zeros(12 * MIB), backfill.BUCKET, "warm-up")

        # The machine is shared: the placements alternate, each going first in turn.
        order = [p for i in range(rounds) for p in (PLACEMENTS[:: 1 if i % 2 == 0 else -1])]
        for placement in order:
            route = routes[placement.name]
            copy_env = {
                **base_env,
                "AWS_ENDPOINT_URL": route["bucket"],
                "EDGEFILL_ORIGIN_URL": route["origin"],
            }
            moto.reset()
            s3.create_bucket(Bucket=backfill.BUCKET)
            proxies.reset()
            front_handler.calls.clear()
            copy = backfill.subprocess_run(copy_env, "--worker", "copy", "--uri", path)
            counts = proxies.counts()
            copy["origin"] = counts[f"{placement.name}/origin"]
            copy["bucket"] = counts[f"{placement.name}/bucket"]
            copy["s3_calls"] = list(front_handler.calls)
            sha_ok = backfill.s3_sha256(s3, path[1:]) == origin.sha256(path)
            if copy["status"] != "copied" or not sha_ok:
                failures.append(f"{placement.name}: copy {copy['status']}, sha256 ok {sha_ok}")
            legs[placement.name]["copy"].append(copy)

            warm_env = {
                **base_env,
                "EDGEFILL_DISTRIBUTION_DOMAIN": DOMAIN,
                "EDGEFILL_VIEWER_HOST": VIEWER,
                "EDGEFILL_RESOLVER": dns_server.resolver,
                "EDGEFILL_EDGE_PORT": route["edge_port"],
                "EDGEFILL_ALLOW_PRIVATE_EDGES": "true",  # the bench's edges are 127.0.0.x
            }
            proxies.reset()
            warm = warm_subprocess(warm_env)
            counts = proxies.counts()
            warm["edges"] = {
                key: sum(
                    c[key] for n, c in counts.items() if n.startswith(f"{placement.name}/edge")
                )
                for key in ("connections", "exchanges")
            }
            if warm["failed"]:
                failures.append(
                    f"{placement.name}: {warm['failed']} warms failed {warm['failures']}"
                )
            legs[placement.name]["warm"].append(warm)
            print(
                f"{placement.name:10s} copy {copy['seconds']:6.2f} s (origin "
                f"{copy['origin']['connections']} conn / {copy['origin']['exchanges']} exch, "
                f"bucket {copy['bucket']['connections']} conn / {copy['bucket']['exchanges']} "
                f"exch) | warm {warm['seconds']:6.2f} s ({warm['ok']} ok, "
                f"{warm['edges']['connections']} conn / {warm['edges']['exchanges']} exch)",
                flush=True,
            )
        dns_server.stop()
        for server in (front, edges):
            server.shutdown()
            server.server_close()
        origin.stop()
    proxies.stop()
    report(legs, size)
    for failure in failures:
        print(f"FAILED: {failure}")
    return 1 if failures else 0


class _Zeros:
    """A file-like of ``size`` zero bytes, for moto's warm-up upload."""

    def __init__(self, size: int) -> None:
        self.left = size

    def read(self, amount: int = -1) -> bytes:
        amount = self.left if amount < 0 else min(amount, self.left)
        self.left -= amount
        return b"\0" * amount


def _runs(items: list[str]) -> str:
    """``a, b ×4, c``: consecutive repeats collapsed."""
    out: list[str] = []
    count = 0
    for index, item in enumerate(items):
        count += 1
        if index + 1 == len(items) or items[index + 1] != item:
            out.append(f"{item} ×{count}" if count > 1 else item)
            count = 0
    return ", ".join(out)


def report(legs: dict[str, dict[str, list[dict[str, Any]]]], size: int) -> None:
    far, near = (p.name for p in PLACEMENTS)

    def median(name: str, leg: str) -> float:
        return statistics.median(run["seconds"] for run in legs[name][leg])

    rounds = len(legs[far]["copy"])
    print(f"\nmedian of {rounds} rounds each; ratio = {near} / {far}")
    print(f"{'leg':32s} {far:>10s} {near:>10s} {'ratio':>7s}")
    for leg, label in (("copy", f"copy {size // MIB} MiB"), ("warm", "warm 300 requests")):
        a, b = median(far, leg), median(near, leg)
        print(f"{label:32s} {a:9.2f}s {b:9.2f}s {b / a:7.3f}")
    for leg, side in (("copy", "origin"), ("copy", "bucket"), ("warm", "edges")):
        for key in ("connections", "exchanges"):
            values = [
                statistics.median(run[side][key] for run in legs[name][leg]) for name in (far, near)
            ]
            print(f"  {leg} {side} {key:22s} {values[0]:10.0f} {values[1]:10.0f}")
    calls = legs[far]["copy"][0]["s3_calls"]
    print(f"  copy's S3 calls ({len(calls)}, in arrival order): {_runs(calls)}")
    gb = size / 1e9
    far_cost, near_cost = INTER_REGION_OUT_OF_US_EAST_1, IN_REGION
    runs = {"copy": f"copies of {size // MIB} MiB", "warm": "warm runs of 300 requests"}
    for leg in ("copy", "warm"):
        extra = (median(far, leg) - median(near, leg)) * MEMORY_GB[leg] * LAMBDA_GB_SECOND
        print(f"Lambda duration, {leg}: ${extra * 1e6:.1f} more in {far} per million {runs[leg]}")
    print(
        f"transfer, worker → bucket per GB copied: {far} ${far_cost:.3f} (inter-region out of "
        f"us-east-1), {near} ${near_cost:.3f} (same region): ${far_cost - near_cost:.3f}/GB "
        f"saved; this object: ${(far_cost - near_cost) * gb:.5f}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", choices=["warm"])
    parser.add_argument("--rounds", type=int, default=3, help="runs of each placement")
    parser.add_argument("--size-mib", type=int, default=32, help="size of the copied object")
    arguments = parser.parse_args()
    if arguments.worker == "warm":
        print(json.dumps(run_warm()))
    else:
        if arguments.rounds < 1 or arguments.size_mib < 1:
            parser.error("--rounds and --size-mib must be at least 1")
        sys.exit(main(arguments.rounds, arguments.size_mib))
