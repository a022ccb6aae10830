"""Each command module's ``--help``: what it says, and that the parser is assembled from
``COMMAND_GROUPS`` alone."""

from __future__ import annotations

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
    assert module in cli.COMMAND_GROUPS


def test_top_level_help_lists_every_registered_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--help"]) == 0
    text = capsys.readouterr().out
    commands = ("prewarm", "backfill", "status", "redrive", "estimate", "doctor", "warm", "lab")
    commands += ("refresh", "invalidate", "check")
    for command in (*commands, "demo"):
        assert command in text


def test_a_group_is_added_by_registering_one_module(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a new command group module in the list
    class Hello:
        @staticmethod
        def register(commands: object) -> None:
            parser = commands.add_parser("hello", help="say hello")  # type: ignore[attr-defined]
            parser.set_defaults(run=lambda args: 7)

    monkeypatch.setattr(cli, "COMMAND_GROUPS", (*cli.COMMAND_GROUPS, Hello))
    # Then the CLI runs it and returns its exit code
    assert cli.main(["hello"]) == 7


def test_an_unknown_command_is_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["nope"]) == 2
    assert "invalid choice" in capsys.readouterr().err
