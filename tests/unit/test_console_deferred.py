"""The CLI's consoles are made at their first use and behave as the rich Console they stand
for; ``run_guarded`` names botocore's errors as before, without importing botocore itself."""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    ProfileNotFound,
)
from rich.console import Console

from edgefill import console
from edgefill.operations import OperatorError

ROOT = Path(__file__).resolve().parents[2]


def run_in_fresh_interpreter(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return done.stdout


def test_rich_is_imported_at_the_first_print_not_before() -> None:
    stdout = run_in_fresh_interpreter(
        "import sys\n"
        "from edgefill.console import err, escape, out\n"
        "before = 'rich' in sys.modules\n"
        "out.print('[bold]printed[/bold]')\n"
        "print(before, 'rich.console' in sys.modules)\n"
    )
    # Then rich came with the first print, and the markup was rendered, not shown
    assert stdout.splitlines() == ["printed", "False True"]


def test_each_console_is_made_once_however_many_threads_first_use_it() -> None:
    # Given a console nobody has used yet, and threads that all reach it at once
    fresh = console._DeferredConsole(stderr=True)
    start = threading.Barrier(8)
    seen: list[Any] = []

    def first_use() -> None:
        start.wait()
        seen.append(console.rich_console(fresh))

    threads = [threading.Thread(target=first_use) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Then they all got one Console, the one every later attribute comes from
    assert len({id(made) for made in seen}) == 1
    assert isinstance(seen[0], Console)
    assert fresh.stderr is True and fresh.file is seen[0].file


def test_writing_an_attribute_sets_it_on_the_console() -> None:
    # Given a console redirected to a buffer through the proxy (as ``redirected`` does)
    fresh = console._DeferredConsole(highlight=False)
    buffer = io.StringIO()
    fresh.file = buffer
    fresh.print("to the buffer")
    # Then the Console itself writes there
    assert console.rich_console(fresh).file is buffer
    assert buffer.getvalue() == "to the buffer\n"


def test_rich_console_passes_a_console_through() -> None:
    real = Console()
    assert console.rich_console(real) is real
    assert isinstance(console.rich_console(console.out), Console)


@pytest.mark.parametrize(
    ("text", "shown"),
    [("plain", "plain"), ("[/red] é", "[/red] é"), ("[bold]x[/bold]", "[bold]x[/bold]")],
)
def test_escaped_text_prints_as_written(text: str, shown: str) -> None:
    buffer = io.StringIO()
    Console(file=buffer, highlight=False).print(console.escape(text))
    assert buffer.getvalue() == shown + "\n"


def fails_with(error: BaseException) -> Any:
    def run(args: argparse.Namespace) -> int:
        raise error

    return run


@pytest.mark.parametrize(
    ("error", "code", "message"),
    [
        (OperatorError("bad [/red] input"), 2, "edgefill: error: bad [/red] input"),
        (NoCredentialsError(), 2, "no AWS credentials found (set AWS_PROFILE or keys)"),
        (ProfileNotFound(profile="nope"), 2, "(profiles live in ~/.aws/config"),
        (
            ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "SendMessage"),
            1,
            "AWS call failed: An error occurred (AccessDenied)",
        ),
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:9"), 1, "AWS call failed"),
        (KeyboardInterrupt(), 130, "interrupted by the operator"),
    ],
    ids=["operator", "credentials", "profile", "client", "botocore", "ctrl-c"],
)
def test_the_errors_an_operator_can_meet_become_an_exit_code_and_one_line(
    error: BaseException, code: int, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert console.run_guarded(fails_with(error), argparse.Namespace()) == code
    assert message in " ".join(capsys.readouterr().err.split())


def test_any_other_error_is_not_swallowed() -> None:
    # Given a bug (not an operator's or AWS's error) with botocore loaded
    assert "botocore.exceptions" in sys.modules
    with pytest.raises(ZeroDivisionError):
        console.run_guarded(fails_with(ZeroDivisionError("bug")), argparse.Namespace())


def test_without_botocore_loaded_an_error_is_not_taken_for_an_aws_one() -> None:
    # Given a fresh interpreter where no AWS call was made, and a command that fails
    stdout = run_in_fresh_interpreter(
        "import argparse, sys\n"
        "from edgefill import console\n"
        "def run(args):\n"
        "    raise LookupError('bug')\n"
        "try:\n"
        "    console.run_guarded(run, argparse.Namespace())\n"
        "except LookupError:\n"
        "    print('raised', 'botocore' in sys.modules)\n"
    )
    # Then the error propagates, and looking at it did not load botocore
    assert stdout.strip() == "raised False"
