"""Fixtures for every test: fake AWS credentials, and moto in server mode over real HTTP.

No test reaches AWS: credentials are fake, the region is fixed, and every endpoint a test
uses is a loopback server it started itself.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import requests
from hypothesis import HealthCheck, settings

from edgefill.lab.aws import MotoProcess
from edgefill.lab.moto_zygote import ZYGOTE_VARIABLE, MotoZygote

# Hypothesis: no example database (it would be written into the checkout, as .hypothesis/);
# a failure prints the blob that replays it instead. The too_slow health check times how
# fast examples are generated, which on a loaded 2-core machine running the suite's
# workers measures the machine, not the test; the example counts are each test's own.
settings.register_profile(
    "edgefill",
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("edgefill")

_FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}
_CLEARED = ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_SQS")


_ZYGOTE = pytest.StashKey[MotoZygote]()


def pytest_configure(config: pytest.Config) -> None:
    """One moto zygote for the run (``edgefill/lab/moto_zygote.py``), started by the
    process that starts the xdist workers (they inherit its variable): every moto server
    of the suite's workers, labs and session servers, is forked from it with moto already
    loaded, instead of a new interpreter importing it (about 2.3 s of CPU each, some
    fifteen times a run). Not for a collection alone; not when a zygote is already named.
    The CLI processes that start a lab get it too (``tests/cli_process.with_moto_zygote``)."""
    if hasattr(config, "workerinput") or config.option.collectonly:
        return
    if os.environ.get(ZYGOTE_VARIABLE):
        return
    zygote = MotoZygote()
    os.environ[ZYGOTE_VARIABLE] = zygote.start()
    config.stash[_ZYGOTE] = zygote


def pytest_unconfigure(config: pytest.Config) -> None:
    zygote = config.stash.get(_ZYGOTE, None)
    if zygote is not None:
        os.environ.pop(ZYGOTE_VARIABLE, None)
        zygote.stop()


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under make test's --dist loadgroup each test is scheduled on its own, so every xdist
    worker that ran one test of a module set the module's fixtures up again: a regions
    lab (6 s) up to four times. A module with a module-scoped fixture therefore runs on
    one worker (its own xdist group). Tests that already have a group keep it (tests/e2e
    and tests/unit's conftests, whose hooks pytest calls before this one; the e2e tests
    share the package's one lab)."""
    for item in items:
        if item.get_closest_marker("xdist_group") is not None:
            continue
        info = getattr(item, "_fixtureinfo", None)
        definitions = info.name2fixturedefs.values() if info is not None else ()
        if any(d.scope == "module" for defs in definitions for d in defs):
            item.add_marker(pytest.mark.xdist_group(item.path.stem))


@pytest.fixture(autouse=True)
def fake_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test runs with fake credentials and no endpoint pointing at real AWS."""
    for name, value in _FAKE_AWS.items():
        monkeypatch.setenv(name, value)
    for name in _CLEARED:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "edgefill-test")


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """One moto server (S3 + SQS) on a free loopback port for the session (for each xdist
    worker: its own); yields its URL. It runs in a child process, as in the lab: on the
    tests' GIL its request handling would compete with the threads the tests run, and the
    suite's CPU could not use a second core."""
    server = MotoProcess("127.0.0.1")
    port = server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def moto(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """moto with empty state, and botocore's endpoint variables pointing at it."""
    requests.post(f"{moto_server}/moto-api/reset", timeout=10).raise_for_status()
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    return moto_server


# The s3 and sqs fixtures' clients, one per service and moto for the worker. Building a
# client costs 10 to 20 ms of CPU (its class, its endpoint rules), and about a thousand
# tests ask for one: about 12 s of samples in a py-spy profile of the suite. A client holds no
# state of a test's but the event handlers the test registers, which the fixture checks
# are gone when the test ends.
_CLIENTS: dict[tuple[str, str], Any] = {}


def _shared_client(service: str, endpoint: str) -> Any:
    client = _CLIENTS.get((service, endpoint))
    if client is None:
        client = boto3.client(service, region_name="us-east-1", endpoint_url=endpoint)
        _CLIENTS[service, endpoint] = client
    return client


def event_handlers(client: Any) -> list[tuple[str, int]]:
    """Every (event, handler id) registered on ``client``'s events, in trie order."""
    found: list[tuple[str, int]] = []
    nodes = [("", client.meta.events._emitter._handlers._root)]
    while nodes:
        name, node = nodes.pop()
        if node["values"] is not None:
            found.extend((name, id(handler)) for part in node["values"] for handler in part)
        nodes.extend((f"{name}.{chunk}", child) for chunk, child in node["children"].items())
    return found


def _lent(service: str, endpoint: str) -> Iterator[Any]:
    client = _shared_client(service, endpoint)
    before = event_handlers(client)
    yield client
    left = sorted(set(event_handlers(client)) - set(before))
    assert not left, (
        f"the test left event handlers on the shared {service} client: {left}; "
        "unregister them when done (tests/integration/backfill_world.py's refusing does)"
    )


@pytest.fixture
def s3(moto: str) -> Iterator[Any]:
    """An S3 client talking to moto over HTTP (shared by the worker's tests)."""
    yield from _lent("s3", moto)


@pytest.fixture
def sqs(moto: str) -> Iterator[Any]:
    """An SQS client talking to moto over HTTP (shared by the worker's tests)."""
    yield from _lent("sqs", moto)
