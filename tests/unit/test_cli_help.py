"""Each command module's ``--help``: what it says, and that the parser is assembled from
``COMMAND_GROUPS`` alone (a command's own group from ``GROUP_OF``)."""

from __future__ import annotations

import argparse
import importlib
import sys
import types

import pytest

from edgefill import cli
from edgefill.commands import doctor, estimate, freshness, lab, queue_commands, warm

# (argv before --help, the module that registers it, phrases its help must contain)
HELP_TEXTS = [
    (
        ["prewarm"],
        queue_commands,
        ["Queue prewarm messages", "--targets", "--dry-run", "--stack", "--max-bytes", "--max-usd"],
    ),
    (["backfill"], queue_commands, ["Queue backfill messages", "--host", "--paths-file"]),
    (["status"], queue_commands, ["oldest message's age", "--json", "--backfill-dlq-url"]),
    (["redrive"], queue_commands, ["message move task", "--queue", "--wait"]),
    (
        ["warm"],
        warm,
        ["prewarm worker's engine", "--region-subnets", "--max-bytes", "--max-usd", "--bucket"],
    ),
    (
        ["estimate"],
        estimate,
        ["dated public price table", "--targets", "--origin-url", "--prices", "--json", "--stack"],
    ),
    (
        ["doctor"],
        doctor,
        ["origin group", "Exit 0 when every check passes", "--canary", "--json", "--stack"],
    ),
    (
        ["edge-logs"],
        doctor,
        [
            "a group Lambda creates without retention",
            "--retention-days",
            "--create-missing",
            "--regions",
        ],
    ),
    (["lab"], lab, ["The local lab", "up"]),
    (["lab", "up"], lab, ["until Ctrl-C", "--edge-port", "--no-pollers", "--large-mib"]),
    (["demo"], lab, ["narrated and checked"]),
    (["refresh"], freshness, ["mode refresh", "keeps, replaces or deletes", "--dry-run"]),
    (
        ["invalidate"],
        freshness,
        ["CreateInvalidation", "--wait", "--distribution-id", "--stack", "--timeout"],
    ),
    (
        ["check"],
        freshness,
        ["compare versions", "x-amz-meta-origin-etag", "--json", "--bucket", "--targets"],
    ),
]


def test_every_registered_command_has_its_help_tested() -> None:
    (commands,) = [a for a in cli.build_parser()._actions if a.dest == "command"]
    tested = {argv[0] for argv, _, _ in HELP_TEXTS}
    assert set(commands.choices) == tested


@pytest.mark.parametrize(("argv", "module", "phrases"), HELP_TEXTS, ids=lambda v: str(v))
def test_each_command_prints_its_own_help(
    argv: list[str], module: object, phrases: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the command's --help
    code = cli.main([*argv, "--help"])
    # Then it exits 0 and prints its usage and what it does
    assert code == 0
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    assert f"usage: edgefill {' '.join(argv)}" in text
    for phrase in phrases:
        assert phrase in text
    # And the command comes from the module named for its group
    assert module.__name__ in cli.COMMAND_GROUPS  # type: ignore[attr-defined]
    assert cli.GROUP_OF[argv[0]] == module.__name__  # type: ignore[attr-defined]


def test_each_command_is_built_from_the_group_that_registers_it() -> None:
    # Given each group registering its commands on a parser of its own
    registered: dict[str, str] = {}
    for group in cli.COMMAND_GROUPS:
        commands = argparse.ArgumentParser().add_subparsers()
        importlib.import_module(group).register(commands)
        registered |= dict.fromkeys(commands.choices, group)
    # Then GROUP_OF names that group for every command, and no command that none registers
    assert registered == cli.GROUP_OF


@pytest.mark.parametrize("command", ["warm", "edge-logs", "demo"])
def test_a_command_line_builds_its_own_groups_parsers_only(command: str) -> None:
    (commands,) = [a for a in cli.build_parser(command)._actions if a.dest == "command"]
    group = cli.GROUP_OF[command]
    assert set(commands.choices) == {name for name, of in cli.GROUP_OF.items() if of == group}


@pytest.mark.parametrize("first", [None, "--help", "-h", "--version", "wram", "/a.jpg"])
def test_any_other_first_word_builds_every_command(first: str | None) -> None:
    (commands,) = [a for a in cli.build_parser(first)._actions if a.dest == "command"]
    assert set(commands.choices) == set(cli.GROUP_OF)


def test_top_level_help_lists_every_registered_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--help"]) == 0
    text = capsys.readouterr().out
    commands = ("prewarm", "backfill", "status", "redrive", "estimate", "doctor", "warm", "lab")
    commands += ("refresh", "invalidate", "check")
    for command in (*commands, "demo"):
        assert command in text


def test_a_group_is_added_by_registering_one_module(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a new command group module in the list
    hello = types.ModuleType("hello_commands")

    def register(commands: object) -> None:
        parser = commands.add_parser("hello", help="say hello")  # type: ignore[attr-defined]
        parser.set_defaults(run=lambda args: 7)

    hello.register = register  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "hello_commands", hello)
    monkeypatch.setattr(cli, "COMMAND_GROUPS", (*cli.COMMAND_GROUPS, "hello_commands"))
    # Then the CLI runs it and returns its exit code
    assert cli.main(["hello"]) == 7
    # And once GROUP_OF names its group, `edgefill hello` builds that group alone and runs it
    monkeypatch.setitem(cli.GROUP_OF, "hello", "hello_commands")
    assert cli.main(["hello"]) == 7
    (commands,) = [a for a in cli.build_parser("hello")._actions if a.dest == "command"]
    assert set(commands.choices) == {"hello"}


def test_an_unknown_command_is_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["nope"]) == 2
    assert "invalid choice" in capsys.readouterr().err
