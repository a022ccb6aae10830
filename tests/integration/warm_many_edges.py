"""Child process of ``test_prewarm_descriptors``: warm many rotating edges under a limit.

Run as ``python -m tests.integration.warm_many_edges PORT CONCURRENCY PATHS ADDRESS...``.
It lowers its own ``RLIMIT_NOFILE`` to Lambda's 1,024 (so the test process that runs
the edges is not limited), then warms one target whose edge address changes from one
message to the next, as CloudFront's DNS answers rotate over a container's life. It
prints one JSON line: tasks ok and failed, the first errors, the most sockets the client
held open and the most descriptors the process had open.
"""

from __future__ import annotations

import json
import os
import resource
import sys

from prewarm_worker.engine import WarmContext, WarmPlan, WarmSettings, warm
from shared.config import PrewarmConfig
from shared.edge_http import EdgeClient
from shared.edns import Answer, EdgeResolver, Question

LAMBDA_DESCRIPTORS = 1024


class RotatingResolver(EdgeResolver):
    """Answers every question with the address of the current round, without DNS."""

    def __init__(self) -> None:
        super().__init__("127.0.0.1")
        self.address = ""

    def lookup(self, question: Question) -> tuple[Answer, bool]:
        return Answer((self.address,), 60, "udp"), False


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def main(argv: list[str]) -> int:
    port, concurrency, paths = int(argv[0]), int(argv[1]), int(argv[2])
    addresses = argv[3:]
    resource.setrlimit(resource.RLIMIT_NOFILE, (LAMBDA_DESCRIPTORS, LAMBDA_DESCRIPTORS))
    config = PrewarmConfig.from_env(
        {
            "EDGEFILL_DISTRIBUTION_DOMAIN": "d111abc.cloudfront.net",
            "EDGEFILL_PROTOCOL": "http",
            "EDGEFILL_EDGE_PORT": str(port),
            "EDGEFILL_ALLOW_PRIVATE_EDGES": "true",
        }
    )
    resolver = RotatingResolver()
    client = EdgeClient(protocol="http", port=port, maxsize=concurrency)
    settings = WarmSettings(concurrency=concurrency, request_attempts=1)
    plan = WarmPlan(
        tuple(f"/many/{index}.js" for index in range(paths)),
        ("us-east-1",),
        ("gzip",),
        "d111abc.cloudfront.net",
    )
    ok = failed = 0
    errors: list[str] = []
    peak_descriptors = open_descriptors()

    def sample(_: object) -> None:
        nonlocal peak_descriptors
        peak_descriptors = max(peak_descriptors, open_descriptors())

    for address in addresses:
        resolver.address = address
        report = warm(plan, WarmContext(config, resolver, client, settings), progress=sample)
        ok += report.ok
        failed += report.failed
        errors.extend(str(f.error) for f in report.failures[: 3 - len(errors)])
    print(
        json.dumps(
            {
                "ok": ok,
                "failed": failed,
                "errors": errors,
                "peakOpenConnections": client.peak_open_connections,
                "maxOpen": client.max_open,
                "peakDescriptors": peak_descriptors,
                "pools": client.pools,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
