"""``edgefill lab up``: starts everything, prints what to paste, stops cleanly on Ctrl-C."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import time
from pathlib import Path

import requests

from edgefill.lab.lab import still_listening
from tests.cli_process import edgefill_process, with_moto_zygote

ROOT = Path(__file__).parents[2]


def test_lab_up_serves_until_interrupted_and_leaves_nothing(tmp_path: Path) -> None:
    # Given `edgefill lab up` in its own process (without pollers: fast, no workers needed)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_ENDPOINT", "EDGEFILL_"))}
    env = with_moto_zygote(env)
    env["COLUMNS"] = "400"  # one printed command per line
    env["TMPDIR"] = str(tmp_path)  # where it leaves its handler log
    process = edgefill_process(["lab", "up", "--no-pollers", "--large-mib", "0"], env)
    printed: list[str] = []
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 60
        while not any("Ctrl-C" in line for line in printed):
            assert time.monotonic() < deadline, "lab up did not get ready"
            line = process.stdout.readline()
            assert line, f"lab up ended early: {process.stderr.read() if process.stderr else ''}"
            printed.append(line)
        text = "".join(printed)
        # Then it printed a curl command that works as printed (TLS verified with the lab CA)
        curl = next(line for line in printed if line.startswith("curl "))
        cacert = re.search(r"--cacert (\S+)", curl)
        resolve = re.search(r"--resolve ([^:]+):(\d+):(\S+)", curl)
        url = re.search(r"(https://\S+)", curl)
        assert cacert and resolve and url
        host, port, address = resolve.groups()
        answer = _get_via(address, int(port), host, url.group(1), cacert.group(1))
        assert answer.status_code == 200 and answer.headers["X-Cache"].startswith("Miss")
        assert "edgefill status --stack edgefill" in text and "edgefill prewarm --stack" in text
        assert "edgefill (us-east-1), edgefill-regional (us-east-1)" in text
        # When the operator presses Ctrl-C
        process.send_signal(signal.SIGINT)
        rest, errors = process.communicate(timeout=30)
        assert process.returncode == 0
        # Then the table and the commands were printed once, and no handler's log line or
        # EMF metric line (the edge function logged the failover) reached the terminal
        screen = text + rest + errors
        assert screen.count("Try it") == 1
        assert '"_aws"' not in screen and '"level"' not in screen, screen[-2000:]
        log_file = re.search(r"handler logs\s*│?\s*(\S+\.log)", text)
        assert log_file is not None, text
        assert '"level"' in Path(log_file.group(1)).read_text(encoding="utf-8")
        assert Path(log_file.group(1)).parent == tmp_path  # TMPDIR, as the operator's
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    # Then nothing listens on the POP's port any more
    assert still_listening([(address, int(port))]) == []


def _get_via(address: str, port: int, host: str, url: str, cacert: str) -> requests.Response:
    """GET ``url`` with its host name pinned to ``address`` (what curl --resolve does)."""
    from urllib3.util import connection

    original = connection.create_connection

    def pinned(target: tuple[str, int], *args: object, **kwargs: object) -> socket.socket:
        if target[0] == host:
            target = (address, target[1])
        return original(target, *args, **kwargs)  # type: ignore[arg-type]

    connection.create_connection = pinned  # type: ignore[assignment]
    try:
        return requests.get(url, verify=cacert, timeout=20)
    finally:
        connection.create_connection = original  # type: ignore[assignment]


def test_lab_up_json_prints_the_endpoints_as_one_document(tmp_path: Path) -> None:
    from tests.json_keys import snake_case_keys

    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_ENDPOINT", "EDGEFILL_"))}
    env = with_moto_zygote(env)
    env["TMPDIR"] = str(tmp_path)  # where it leaves its handler log
    process = edgefill_process(["lab", "up", "--no-pollers", "--large-mib", "0", "--json"], env)
    try:
        assert process.stdout is not None
        lines: list[str] = []
        while not lines or lines[-1] != "}\n":
            line = process.stdout.readline()
            assert line, "lab up --json ended before its document"
            lines.append(line)
        document = json.loads("".join(lines))
        process.send_signal(signal.SIGINT)
        assert process.wait(30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert snake_case_keys(document) == []
    assert {pop["code"] for pop in document["pops"]} >= {"NRT20-P2", "GRU3-P1"}
    assert document["caBundle"].endswith(".pem") and document["logFile"].endswith(".log")
