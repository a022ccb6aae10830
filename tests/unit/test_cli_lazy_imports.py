"""A command imports only what it uses (issue 23): ``edgefill --help``, ``edgefill COMMAND
--help``, a usage error and a shell completion build the parser and nothing more (``COMMAND
--help`` its own group's alone); a ``warm`` that names no stack and no cap never loads boto3.

Structural, in a fresh interpreter running the CLI's entry point: the modules are those in
``sys.modules`` at exit, and those ``-X importtime`` reports on stderr, which it does however
the process ends (argcomplete leaves by ``os._exit``, skipping atexit) but only for imports
made by an ``import`` statement (not ``importlib.import_module``'s own module). The
start-up time is bench/bench_cli_start.py's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from bench.bench_cli_start import loopback_warm
from edgefill import cli
from edgefill.commands import values
from shared import messages

ROOT = Path(__file__).resolve().parents[2]
ENTRY = """
import atexit, json, sys
def record() -> None:
    with open(sys.argv[2], "w") as file:
        json.dump(sorted(sys.modules), file)
atexit.register(record)
from edgefill.cli import main
sys.exit(main(json.loads(sys.argv[1])))
"""

# What building the parser must not load (a name stands for its submodules too): the AWS
# SDK and the HTTP stacks (HTTP/2's too, which the warm engine may use), DNS, rich (loaded
# when something is printed through the console), the warm engine, the doctor's checks,
# the worker's settings and the message models (whose two rules the help states come from
# edgefill.commands.values), moto and the lab.
NOT_AT_START = (
    "boto3",
    "botocore",
    "s3transfer",
    "requests",
    "urllib3",
    "httpx",
    "httpcore",
    "h2",
    "hpack",
    "hyperframe",
    "dns",
    "rich",
    "prewarm_worker.engine",
    "edgefill.doctor",
    "shared.config",
    "shared.messages",
    "moto",
    "edgefill.lab",
)
COMMANDS = [
    ["prewarm"],
    ["backfill"],
    ["status"],
    ["redrive"],
    ["estimate"],
    ["doctor"],
    ["edge-logs"],
    ["warm"],
    ["lab"],
    ["lab", "up"],
    ["demo"],
    ["refresh"],
    ["invalidate"],
    ["check"],
]


def imported_by(
    argv: list[str], env: dict[str, str] | None = None, *, exits_at_once: bool = False
) -> tuple[int, set[str]]:
    """(exit status, every module imported) of ``edgefill ARGV`` in a fresh interpreter;
    ``exits_at_once``: the process leaves by ``os._exit`` (no ``sys.modules`` at exit)."""
    with tempfile.TemporaryDirectory() as directory:
        at_exit = Path(directory) / "modules.json"
        done = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", ENTRY, json.dumps(argv), str(at_exit)],
            cwd=ROOT,
            env=env if env is not None else clean_env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        modules = {
            line.rpartition("|")[2].strip()
            for line in done.stderr.splitlines()
            if line.startswith("import time:") and "|" in line
        }
        assert "edgefill.cli" in modules, done.stderr[-2000:]
        assert at_exit.exists() is not exits_at_once, done.stderr[-2000:]
        if at_exit.exists():
            modules |= set(json.loads(at_exit.read_text()))
    return done.returncode, modules


def clean_env() -> dict[str, str]:
    """This environment without the operator's AWS and edgefill settings."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "EDGEFILL_"))}


def heavy(modules: set[str], names: tuple[str, ...] = NOT_AT_START) -> list[str]:
    return sorted(m for m in modules if any(m == n or m.startswith(n + ".") for n in names))


def test_the_top_level_help_loads_no_command_implementation() -> None:
    code, modules = imported_by(["--help"])
    assert code == 0
    assert heavy(modules) == []
    assert set(cli.COMMAND_GROUPS) <= modules  # it lists every group's commands


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_each_commands_help_loads_only_its_own_parsers(command: list[str]) -> None:
    code, modules = imported_by([*command, "--help"])
    assert code == 0
    assert heavy(modules) == []
    # Of the command groups, only the one registering the command was imported
    assert modules & set(cli.COMMAND_GROUPS) == {cli.GROUP_OF[command[0]]}


@pytest.mark.parametrize(
    "argv",
    [
        ["warm", "/a.jpg", "--concurency", "4"],
        ["warm", "/a.jpg", "--max-bytes", "lots"],
        ["doctor", "--stack", "no such stack!"],
        ["nope"],
    ],
    ids=["unknown-flag", "bad-size", "bad-stack-name", "unknown-command"],
)
def test_a_usage_error_is_refused_before_anything_heavy_loads(argv: list[str]) -> None:
    code, modules = imported_by(argv)
    assert code == 2
    assert heavy(modules) == []


@pytest.mark.parametrize(
    ("line", "expected"),
    [("edgefill pre", {"prewarm"}), ("edgefill warm --max-", {"--max-bytes", "--max-usd"})],
    ids=["command", "flag"],
)
def test_shell_completion_completes_without_loading_anything_heavy(
    line: str, expected: set[str], tmp_path: Path
) -> None:
    # Given the shell's completion hook asking for LINE<TAB> (argcomplete's protocol)
    answer = tmp_path / "completions"
    env = clean_env() | {
        "_ARGCOMPLETE": "1",
        "_ARGCOMPLETE_IFS": "\n",
        "COMP_LINE": line,
        "COMP_POINT": str(len(line)),
        "_ARGCOMPLETE_STDOUT_FILENAME": str(answer),
    }
    code, modules = imported_by([], env, exits_at_once=True)
    # Then the completions are written and only the parsers (and argcomplete) were loaded
    assert code == 0
    assert {word.strip() for word in answer.read_text().splitlines()} == expected
    assert "argcomplete" in modules
    assert heavy(modules) == []


def test_a_warm_without_a_stack_or_a_cap_runs_without_boto3() -> None:
    # Given a warm of one path at one region's edge, no --stack, no --max-bytes/--max-usd
    # (the start-up benchmark's own loopback edge and lab DNS server)
    with loopback_warm() as argv:
        # When it runs to the end
        code, modules = imported_by(argv)
    # Then every encoding was warmed (exit 0), by the engine, and the AWS SDK never loaded
    assert code == 0
    assert "prewarm_worker.engine" in modules
    assert heavy(modules, ("boto3", "s3transfer")) == []
    # And neither did the Lambda handler's module (Powertools, SQS, the DLQ), the playlist
    # expansion (no --expand) or rich's progress bar (stderr is a pipe: nothing live shows)
    unused = ("aws_lambda_powertools", "prewarm_worker.worker", "prewarm_worker.expand")
    assert heavy(modules, (*unused, "rich.progress", "rich.live")) == []


def test_a_warm_on_a_terminal_shows_its_progress_bar() -> None:
    # Given the same warm with stderr on a terminal (rich's TTY_COMPATIBLE=1 stands for one)
    with loopback_warm() as argv:
        code, modules = imported_by(argv, clean_env() | {"TTY_COMPATIBLE": "1"})
    # Then the progress bar was built (the silent twin is only for pipes and files)
    assert code == 0
    assert "rich.progress" in modules


def test_a_parsed_warm_loads_neither_the_sdk_nor_the_engine() -> None:
    # Given a warm command line that a test parses without running it
    probe = (
        "import sys; from edgefill import cli; "
        "cli.build_parser().parse_args(['warm', '/a.jpg', '--targets', 'us-east-1']); "
        "print(' '.join(m for m in sys.modules if m.split('.')[0] in "
        "('boto3', 'botocore', 'requests', 'rich', 'dns') or m == 'prewarm_worker.engine'))"
    )
    assert printed_by(probe) == ""


def test_the_http2_client_loads_the_http1_stack_only_for_an_http1_pool() -> None:
    # Given a fresh interpreter with the warm engine loaded and an HTTP/2 edge client made
    probe = (
        "import sys; import prewarm_worker.engine; "
        "from shared.edge_http2 import Http2EdgeClient; client = Http2EdgeClient(); "
        "before = [m for m in ('urllib3', 'http.client') if m in sys.modules]; "
        "client._new_pool('127.0.0.1', 'cdn.example.com'); "
        "after = [m for m in ('urllib3', 'http.client') if m in sys.modules]; "
        "print(before, after)"
    )
    # Then urllib3 and http.client (about 30 ms of a warm's start) were not loaded until
    # the client made its first HTTP/1.1 pool (an edge whose ALPN does not offer h2)
    assert printed_by(probe) == "[] ['urllib3', 'http.client']"


def printed_by(probe: str) -> str:
    """What ``python -c probe`` prints, run in a fresh interpreter at the project's root."""
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def test_the_rules_the_help_restates_are_the_message_models() -> None:
    # The parser states them without importing shared.messages; they must not drift apart.
    assert values.ENCODINGS == messages.ENCODINGS
    assert values.MAX_PATHS == messages.MAX_PATHS
