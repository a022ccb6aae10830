"""S3's conditional writes are atomic; moto's check the condition, then write, with nothing
held between, so two workers racing for one lease in the lab could both "win" it (seen in
CI: two copies of one small object, the first's lease release refused). The lab's moto
makes each conditional write one step (``edgefill/lab/moto_tuning.py``).

These tests run moto in this process, so that its write can be slowed down: the window
between check and write, which a loaded machine opens by preempting a server thread, is
then wide enough for every racer every time, and the test fails without the lock."""

from __future__ import annotations

import inspect
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto.s3.models import S3Backend
from moto.s3.responses import S3Response
from moto.server import ThreadedMotoServer

from edgefill.lab.moto_tuning import CONDITIONAL_WRITES, atomic_conditional_writes

RACERS = 6
# How long a write that passed its check waits for another racer to pass its own. A fixed
# 50 ms sleep was not always enough: on a loaded CI machine one run saw no second racer
# arrive within it (so the test of moto as shipped found one winner). Each arrival now
# restarts the wait, and the wait ends as soon as every racer has arrived.
WINDOW = 0.1


class _Gate:
    """Where moto's writes wait, between its check of a condition and the write."""

    def __init__(self) -> None:
        self._arrived = 0
        self._changed = threading.Condition()

    def wait(self) -> None:
        with self._changed:
            self._arrived += 1
            self._changed.notify_all()
            while self._arrived < RACERS and self._changed.wait(WINDOW):
                pass  # another racer arrived: wait for the rest


@pytest.fixture
def slow_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto's backend writes wait, as a preempted thread would, until every racer has
    passed its check or none arrives for WINDOW seconds."""
    gate = _Gate()
    for name in ("put_object", "delete_object"):
        original = getattr(S3Backend, name)

        def slowed(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            gate.wait()
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(S3Backend, name, slowed)


@pytest.fixture
def s3(slow_writes: None) -> Iterator[Any]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        port = server.get_host_and_port()[1]
        client = boto3.client(
            "s3",
            region_name="us-east-1",
            endpoint_url=f"http://127.0.0.1:{port}",
            config=Config(max_pool_connections=RACERS, retries={"max_attempts": 1}),
        )
        yield client
    finally:
        server.stop()


@pytest.fixture
def atomic(monkeypatch: pytest.MonkeyPatch) -> None:
    """The lab's change, for this test only."""
    for name, handler in atomic_conditional_writes(S3Response).items():
        monkeypatch.setattr(S3Response, name, handler)


def bucket(s3: Any) -> str:
    name = f"race-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


def race(attempt: Callable[[int], bool]) -> int:
    """Run ``attempt`` in RACERS threads released together; how many returned True."""
    start = threading.Barrier(RACERS)
    won: list[bool] = []

    def run(n: int) -> None:
        start.wait()
        won.append(attempt(n))

    threads = [threading.Thread(target=run, args=(n,)) for n in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(won) == RACERS, "a racer raised (its error is printed above)"
    return sum(won)


def succeeds(call: Callable[[], Any]) -> bool:
    """True when ``call`` succeeded, False when S3 refused it for its condition."""
    try:
        call()
    except ClientError as error:
        assert error.response["Error"]["Code"] in ("PreconditionFailed", "NoSuchKey"), error
        return False
    return True


def creates_that_won(s3: Any, name: str) -> int:
    return race(
        lambda n: succeeds(
            lambda: s3.put_object(Bucket=name, Key="lease", Body=b"%d" % n, IfNoneMatch="*")
        )
    )


def test_without_the_change_moto_lets_several_creates_of_one_key_win(s3: Any) -> None:
    # The check the change is for: moto as shipped, its window open, lets more than one in
    assert creates_that_won(s3, bucket(s3)) > 1


def test_of_creates_of_one_key_at_once_exactly_one_wins(s3: Any, atomic: None) -> None:
    name = bucket(s3)
    assert creates_that_won(s3, name) == 1
    # And the lease holds the winner's body, which every later create leaves alone
    assert not succeeds(lambda: s3.put_object(Bucket=name, Key="lease", IfNoneMatch="*"))


def test_of_replaces_of_one_version_at_once_exactly_one_wins(s3: Any, atomic: None) -> None:
    name = bucket(s3)
    etag = s3.put_object(Bucket=name, Key="lease", Body=b"first")["ETag"]
    won = race(
        lambda n: succeeds(
            lambda: s3.put_object(Bucket=name, Key="lease", Body=b"%d" % n, IfMatch=etag)
        )
    )
    assert won == 1


def test_of_a_release_racing_a_takeover_only_one_succeeds(s3: Any, atomic: None) -> None:
    # Given a lease, and its holder deleting it by its ETag while others replace it
    name = bucket(s3)
    etag = s3.put_object(Bucket=name, Key="lease", Body=b"first")["ETag"]

    def attempt(n: int) -> bool:
        if n == 0:
            return succeeds(lambda: s3.delete_object(Bucket=name, Key="lease", IfMatch=etag))
        return succeeds(
            lambda: s3.put_object(Bucket=name, Key="lease", Body=b"%d" % n, IfMatch=etag)
        )

    # Then exactly one of them acted on that version
    assert race(attempt) == 1


def test_the_change_covers_every_handler_it_names() -> None:
    handlers = atomic_conditional_writes(S3Response)
    assert set(handlers) == set(CONDITIONAL_WRITES)
    for name, handler in handlers.items():
        assert inspect.unwrap(handler) is getattr(S3Response, name)


def test_the_lab_moto_shares_one_botocore_loader_and_loads_its_burst_models_first() -> None:
    # Given a process that tuned its moto as the lab's child does (tune_moto), When moto
    # makes botocore sessions (one per backend) and routes requests, Then every session
    # reads through one data loader, and the S3 and SQS routers and code are loaded before
    # any request (SQS's first request took 0.3 s, past the edge's 0.5 s on a loaded machine).
    # (In a process of its own: the tuning patches botocore for the whole process.)
    probe = (
        "from edgefill.lab.moto_tuning import tune_moto, BURST_SERVICES\n"
        "tune_moto(); tune_moto()\n"
        "import botocore.session as s\n"
        "from moto.core.routing import get_service_router\n"
        "a, b = s.Session(), s.Session()\n"
        "print(a.get_component('data_loader') is b.get_component('data_loader'))\n"
        "print(get_service_router.cache_info().currsize == len(BURST_SERVICES))\n"
        "import sys\n"
        "code = ('moto.iam.models', 'moto.s3.urls', 'moto.sqs.urls', 'moto.sqs.models')\n"
        "print(all(name in sys.modules for name in code))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.split() == ["True", "True", "True"]
