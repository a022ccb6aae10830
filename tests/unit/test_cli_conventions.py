"""The CLI behaves the way AWS people already work (issue 22): flags never abbreviated,
``--version``, ``--json`` on every command, ``--profile``/``--region``/``--endpoint-url``
on every command that talks to AWS (one definition), the region read as the AWS CLI v2
reads it and checked before any call, a missing profile is bad input."""

from __future__ import annotations

import argparse
import io
import re
from pathlib import Path
from typing import Any

import pytest

from edgefill import cli, operations
from edgefill.commands import values
from edgefill.operations import OperatorError, read_paths
from tests.unit.test_cli_bad_values import commands

# The commands that reach AWS (the lab commands run their own moto).
TALK_TO_AWS = {
    "prewarm",
    "backfill",
    "status",
    "redrive",
    "refresh",
    "invalidate",
    "check",
    "estimate",
    "doctor",
    "edge-logs",
    "warm",
}


def every_parser(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    found = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                found += every_parser(child)
    return found


def test_no_parser_accepts_an_abbreviated_flag() -> None:
    assert all(parser.allow_abbrev is False for parser in every_parser(cli.build_parser()))


def test_the_aws_cli_habit_paths_is_an_error_not_paths_file(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # When the operator types invalidate --paths /a /b (as with aws cloudfront)
    code = cli.main(["invalidate", "--paths", "/a", "/b", "--distribution-id", "E2EXAMPLE1"])
    # Then it is one error line saying that paths are arguments; nothing is invalidated
    error = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in error
    assert "no flag --paths: paths are arguments" in error
    # And a flag cut short is named with the flag meant
    assert cli.main(["prewarm", "/a", "--dry", "--paths-per", "5"]) == 2
    assert "did you mean --dry-run? flags are never abbreviated" in capsys.readouterr().err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--version"]) == 0
    assert re.fullmatch(r"edgefill \S+\n", capsys.readouterr().out)


@pytest.mark.parametrize("command", sorted(commands()))
def test_every_command_takes_json(command: str) -> None:
    flags = {flag for action in commands()[command]._actions for flag in action.option_strings}
    assert "--json" in flags


@pytest.mark.parametrize("command", sorted(TALK_TO_AWS))
def test_every_aws_command_takes_profile_region_and_endpoint_from_one_definition(
    command: str,
) -> None:
    actions = {a.option_strings[0]: a for a in commands()[command]._actions if a.option_strings}
    assert actions["--profile"].type is values.profile
    assert actions["--region"].type is values.region
    assert actions["--endpoint-url"].type is values.endpoint_url
    assert actions["--stack"].type is values.stack


def test_the_lab_commands_take_no_aws_flags() -> None:
    for command in ("lab up", "demo"):
        flags = {f for action in commands()[command]._actions for f in action.option_strings}
        assert not flags & {"--profile", "--region", "--endpoint-url"}


# ---- the region and the profile, as the AWS CLI v2 reads them ---------------------------
def test_aws_region_is_read_before_aws_default_region(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given only AWS_REGION (what `edgefill lab up` prints), then both
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    assert operations.aws_session(None).region_name == "eu-west-1"
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-west-2")
    assert operations.aws_session(None).region_name == "eu-west-1"
    # And --region wins over both
    assert operations.aws_session("ap-south-1").region_name == "ap-south-1"


def test_the_profiles_region_comes_last(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text(
        "[profile ops]\nregion = sa-east-1\naws_access_key_id = a\naws_secret_access_key = b\n"
    )
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    assert operations.aws_session(None, profile="ops").region_name == "sa-east-1"
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-2")
    assert operations.aws_session(None, profile="ops").region_name == "us-east-2"


@pytest.mark.parametrize(
    ("variable", "value"), [("AWS_REGION", "us-esat-1"), ("AWS_DEFAULT_REGION", "eu-wset-1")]
)
def test_a_mistyped_region_in_the_environment_is_bad_input_before_any_call(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.setenv(variable, value)
    with pytest.raises(OperatorError, match=rf"{variable}: '{value}' is not an AWS region"):
        operations.aws_session(None)


def test_a_missing_profile_is_bad_input(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # From the flag, refused while parsing; from AWS_PROFILE, when the session is made
    assert cli.main(["status", "--profile", "nope"]) == 2
    assert "--profile: no profile 'nope'" in capsys.readouterr().err
    monkeypatch.setenv("AWS_PROFILE", "nope")
    assert cli.main(["status", "--prewarm-queue-url", "http://127.0.0.1:1/1/q"]) == 2
    assert "AWS_PROFILE: no profile 'nope'" in capsys.readouterr().err


def test_every_known_region_passes_and_a_close_one_is_suggested() -> None:
    from edgefill.aws_regions import UnknownRegion, check_region, known_regions

    assert {"us-east-1", "eu-central-1", "cn-north-1", "us-gov-west-1"} <= known_regions()
    with pytest.raises(UnknownRegion, match="did you mean ap-southeast-2"):
        check_region("ap-southeast2")


# ---- paths ----------------------------------------------------------------------------
def test_a_paths_file_with_a_byte_order_mark_reads_as_without(tmp_path: Path) -> None:
    listed = tmp_path / "paths.txt"
    listed.write_bytes("\ufeff/a.jpg\r\n# note\r\n/b.jpg\r\n".encode())
    assert [path for _, path in read_paths([], str(listed))] == ["/a.jpg", "/b.jpg"]


def test_paths_file_dash_reads_standard_input(monkeypatch: pytest.MonkeyPatch) -> None:
    class Stdin:
        buffer = io.BytesIO("\ufeff/x.js\n/y é.js\n".encode())

    monkeypatch.setattr("sys.stdin", Stdin())
    assert read_paths(["/first"], "-") == [
        ("argument 1", "/first"),
        ("standard input:1", "/x.js"),
        ("standard input:2", "/y é.js"),
    ]


def test_dry_run_json_prints_the_messages_as_one_document(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import json

    assert cli.main(["backfill", "/a", "/b?v=1", "--dry-run", "--json"]) == 0
    document: dict[str, Any] = json.loads(capsys.readouterr().out)
    assert document["dryRun"] is True
    assert [(m["uri"], m.get("query")) for m in document["messages"]] == [
        ("/a", None),
        ("/b", "v=1"),
    ]
