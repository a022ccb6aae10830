"""An interrupted ``prewarm``/``backfill`` says exactly which messages were sent, and
``--skip-sent FILE`` makes the same command again send only the rest (issue 22).

The Ctrl-C is a real SIGINT to this process, sent while SQS (a fake here: the queue is not
what is tested) is answering the third batch."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from edgefill import cli
from edgefill.commands import aws_flags
from edgefill.operations import QueueUrls

QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/prewarm"


class SlowToInterrupt:
    """SendMessageBatch that records each body and, on call ``interrupt_on``, presses
    Ctrl-C (the batch itself is still accepted, as SQS would)."""

    def __init__(self, interrupt_on: int | None = None) -> None:
        self.calls = 0
        self.bodies: list[str] = []
        self.interrupt_on = interrupt_on

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.calls += 1
        if self.calls == self.interrupt_on:
            os.kill(os.getpid(), signal.SIGINT)
            wait_for_the_stop_notice()
        self.bodies += [entry["MessageBody"] for entry in Entries]
        return {"Successful": [{"Id": entry["Id"]} for entry in Entries], "Failed": []}


def wait_for_the_stop_notice() -> None:
    """Until the CLI has taken the Ctrl-C in (its main thread runs the signal handler
    while this batch is being answered, as when SQS is slower than a Ctrl-C)."""
    deadline = time.monotonic() + 10
    while "stopping: no new work starts" not in sys.stderr.getvalue():  # type: ignore[attr-defined]
        assert time.monotonic() < deadline, "the Ctrl-C was never noticed"
        time.sleep(0.01)


def use(monkeypatch: pytest.MonkeyPatch, sqs: SlowToInterrupt) -> None:
    monkeypatch.setattr(
        aws_flags, "regional_queues", lambda args: [(None, None, sqs, QueueUrls(QUEUE, QUEUE))]
    )


def sent_paths(bodies: list[str]) -> list[str]:
    return [path for body in bodies for path in json.loads(body)["paths"]]


def test_ctrl_c_mid_send_reports_the_sent_and_the_rest_and_a_rerun_sends_the_rest(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given 100 paths, one a message, and a journal
    paths_file = tmp_path / "launch.txt"
    paths = [f"/launch/{index}.jpg" for index in range(100)]
    paths_file.write_text("\n".join(paths) + "\n", encoding="utf-8")
    journal = tmp_path / "sent.txt"
    argv = ["prewarm", "--paths-file", str(paths_file), "--paths-per-message", "1"]
    argv += ["--targets", "us-east-1", "--skip-sent", str(journal), "--json"]
    first = SlowToInterrupt(interrupt_on=3)
    use(monkeypatch, first)
    # When Ctrl-C lands during the third batch of ten
    code = cli.main(argv)
    captured = capsys.readouterr()
    # Then no batch started after it: 30 messages sent, and the report says so exactly
    assert code == 130
    assert first.calls == 3 and len(first.bodies) == 30
    report = json.loads(captured.out)
    assert report["interrupted"] is True and report["sent"] == 30 and report["failed"] == 0
    assert report["notSentPaths"] == paths[30:]
    assert "30 of 100 prewarm messages sent" in captured.err
    assert "stopped by the operator" in captured.err
    # And the journal lists exactly the paths SQS accepted
    listed = [line for line in journal.read_text().splitlines() if not line.startswith("#")]
    assert listed == sent_paths(first.bodies) == paths[:30]
    # When the same command runs again
    second = SlowToInterrupt()
    use(monkeypatch, second)
    assert cli.main(argv) == 0
    # Then it sends only the 70 paths not sent, and a third run sends nothing
    assert sent_paths(second.bodies) == paths[30:]
    assert "70 of 100" not in capsys.readouterr().err
    third = SlowToInterrupt()
    use(monkeypatch, third)
    assert cli.main(argv) == 0
    assert third.calls == 0
    assert "nothing left to send" in capsys.readouterr().err


def test_without_a_journal_the_paths_not_sent_are_printed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    sqs = SlowToInterrupt(interrupt_on=1)
    use(monkeypatch, sqs)
    paths = [f"/p/{index}" for index in range(15)]
    code = cli.main(["backfill", *paths, "--backfill-queue-url", QUEUE])
    captured = capsys.readouterr()
    assert code == 130
    assert "not sent: /p/10" in captured.err and "not sent: /p/14" in captured.err
    assert "not sent: /p/9" not in captured.err
    assert "--skip-sent FILE records what is sent" in captured.err
