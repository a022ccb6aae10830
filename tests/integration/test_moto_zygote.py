"""The moto zygote: moto servers forked with moto already loaded, for the test suite."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from edgefill.lab import moto_zygote
from edgefill.lab.aws import MotoProcess
from edgefill.lab.moto_zygote import ZYGOTE_VARIABLE, MotoZygote

pytestmark = pytest.mark.xdist_group("moto_zygote")  # one zygote for the module


def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    until = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < until, "timed out"
        time.sleep(0.02)


def port_open(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def zygote() -> Iterator[MotoZygote]:
    started = MotoZygote()
    path = started.start()
    wait_for(lambda: Path(path).exists())
    yield started
    started.stop()


@pytest.fixture
def forked_mode(zygote: MotoZygote, monkeypatch: pytest.MonkeyPatch) -> MotoZygote:
    monkeypatch.setenv(ZYGOTE_VARIABLE, zygote.path)
    return zygote


def s3(port: int) -> Any:
    return boto3.client("s3", region_name="us-east-1", endpoint_url=f"http://127.0.0.1:{port}")


def test_each_moto_process_is_forked_from_the_zygote_and_keeps_its_own_state(
    forked_mode: MotoZygote,
) -> None:
    # Given two moto servers asked for under the zygote's variable
    first, second = MotoProcess(), MotoProcess()
    try:
        ports = first.start(), second.start()
        # Then both are the zygote's children, not ours, and each is a moto of its own
        assert first._forked is not None and first._child is None
        assert second._forked is not None and ports[0] != ports[1]
        s3(ports[0]).create_bucket(Bucket="only-in-the-first")
        s3(ports[0]).put_object(Bucket="only-in-the-first", Key="k", Body=b"v")
        assert s3(ports[0]).get_object(Bucket="only-in-the-first", Key="k")["Body"].read() == b"v"
        assert s3(ports[1]).list_buckets()["Buckets"] == []
        assert first.running and second.running
    finally:
        first.stop()
        second.stop()
    # And a stopped one no longer listens when stop() returns
    assert not first.running and not port_open(ports[0]) and not port_open(ports[1])


def test_a_client_that_dies_without_stopping_leaves_no_server(forked_mode: MotoZygote) -> None:
    # Given a forked moto whose client goes away without a word (its process died)
    forked = moto_zygote.connect(forked_mode.path, "127.0.0.1")
    assert forked is not None
    conn, port = forked
    assert port_open(port)
    conn.close()
    # Then the server stops on its own
    wait_for(lambda: not port_open(port))


def test_without_a_zygote_a_moto_process_starts_its_own_child(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the variable naming a socket that nobody listens on (a zygote gone or not ready)
    monkeypatch.setenv(ZYGOTE_VARIABLE, str(tmp_path / "nobody.sock"))
    moto = MotoProcess()
    try:
        port = moto.start()
        # Then the process starts moto itself, as outside the suite
        assert moto._forked is None and moto._child is not None and port_open(port)
    finally:
        moto.stop()
    assert not port_open(port)


def test_a_host_moto_cannot_serve_on_is_a_named_error(forked_mode: MotoZygote) -> None:
    # Given a host that is no address of this machine
    moto = MotoProcess("not a host")
    # Then starting it fails, naming why, and nothing is left behind
    with pytest.raises(RuntimeError, match="moto did not start: cannot listen on 'not a host'"):
        moto.start()
    assert not moto.running


def test_the_zygote_ends_when_the_process_that_started_it_closes_its_stdin() -> None:
    started = MotoZygote()
    path = started.start()
    wait_for(lambda: Path(path).exists())
    process = started._process
    assert process is not None and process.stdin is not None
    process.stdin.close()
    process.wait(10)
    assert process.returncode == 0 and not os.path.exists(path)
    started._process = None
    started.stop()


def test_a_host_moto_cannot_serve_on_is_a_named_error_without_a_zygote_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(ZYGOTE_VARIABLE, raising=False)
    moto = MotoProcess("not a host")
    with pytest.raises(RuntimeError, match="moto did not start: cannot listen on 'not a host'"):
        moto.start()
    assert not moto.running
