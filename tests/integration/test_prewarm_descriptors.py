"""Open sockets stay bounded whatever the number of edges a container has warmed."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.edge_http import DEFAULT_MAX_POOLS, SPARE_CONNECTIONS, EdgeClient
from tests.integration.prewarm_edges import FakeEdge, start_edges

ROOT = Path(__file__).resolve().parents[2]
EDGES = 45
CONCURRENCY = 30
PATHS = 60  # two per thread: every thread works every edge


@pytest.fixture(scope="module")
def many_edges() -> Iterator[tuple[int, list[str]]]:
    # Plain HTTP edges: the descriptors count the same as with TLS, at a fraction of the CPU.
    edges = [FakeEdge(f"127.0.0.{10 + index}", None, (), "IAD89-C1") for index in range(EDGES)]
    port = start_edges(edges)
    yield port, [edge.address for edge in edges]
    for edge in edges:
        edge.stop()


@pytest.mark.slow
def test_given_45_rotating_edges_under_lambdas_1024_descriptors_when_warmed_then_all_succeed(
    many_edges: tuple[int, list[str]],
) -> None:
    # Given 45 edge addresses, one after another, as DNS rotates them over a container's
    # life, 30 warm threads and a process limited to 1,024 descriptors (a child process,
    # so this test's own edges are not limited)
    port, addresses = many_edges
    # When every edge is warmed by all 30 threads
    child = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.integration.warm_many_edges",
            str(port),
            str(CONCURRENCY),
            str(PATHS),
            *addresses,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert child.returncode == 0, child.stderr[-2000:]
    outcome = json.loads(child.stdout.strip().splitlines()[-1])
    # Then every warm succeeded (before the bound: "Too many open files" past ~35 edges)
    assert outcome["failed"] == 0, outcome["errors"]
    assert outcome["ok"] == EDGES * PATHS
    # And the sockets open at once never passed the concurrency plus a small constant
    assert outcome["peakOpenConnections"] <= outcome["maxOpen"] == CONCURRENCY + 4
    assert outcome["peakDescriptors"] < CONCURRENCY + 64
    assert outcome["pools"] <= 16


def test_given_many_viewer_hosts_when_each_is_warmed_then_pools_and_sockets_stay_bounded(
    many_edges: tuple[int, list[str]],
) -> None:
    # Given one client for 4 threads' worth of connections
    port, addresses = many_edges
    client = EdgeClient(protocol="http", port=port, maxsize=4)
    # When 100 (edge, viewer host) pairs are requested one after another
    for index in range(100):
        response = client.get(addresses[index % len(addresses)], f"h{index}.example", "/a", None)
        assert response.status == 200 and response.complete
    # Then at most max_pools pools are kept, evicted ones closed with their sockets
    assert client.pools == DEFAULT_MAX_POOLS
    assert client.evicted_pools == 100 - DEFAULT_MAX_POOLS
    assert client.peak_open_connections <= client.max_open == 4 + SPARE_CONNECTIONS
    assert client.open_connections <= client.max_open
    client.close()
    assert client.open_connections == 0
