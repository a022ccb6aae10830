"""Every flag of every command, fed a bad value: one error line naming the flag and the
accepted form, exit 2, no traceback, nothing sent (issue 22).

The flags come from the parser itself: a new flag without a case here fails
``test_every_flag_that_takes_a_value_has_a_case``."""

from __future__ import annotations

import argparse

import pytest

from edgefill import cli

QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/q"
DOMAIN = "d111111abcdef8.cloudfront.net"

# Arguments that make each command otherwise valid (no network is reached before the
# flag under test is refused: every case fails at parsing or before any call).
BASE: dict[str, list[str]] = {
    "prewarm": ["prewarm", "/a", "--dry-run"],
    "backfill": ["backfill", "/a", "--dry-run"],
    "status": ["status"],
    "redrive": ["redrive", "--dry-run"],
    "refresh": ["refresh", "/a", "--dry-run"],
    "invalidate": ["invalidate", "/a", "--distribution-id", "E2EXAMPLE1"],
    "check": ["check", "/a", "--targets", "us-east-1", "--distribution-domain", DOMAIN],
    "estimate": ["estimate", "/a", "--targets", "us-east-1", "--bucket", "bkt"],
    "doctor": ["doctor", "--stack", "edgefill"],
    "edge-logs": ["edge-logs", "--stack", "edgefill"],
    "warm": ["warm", "/a", "--targets", "us-east-1", "--distribution-domain", DOMAIN],
    "lab up": ["lab", "up"],
    "demo": ["demo"],
}
# flag → (a bad value, a piece of the accepted form the error line must show).
BAD: dict[str, tuple[str, str]] = {
    "--stack": ("bad name!", "a letter, then letters, digits and '-'"),
    "--profile": ("nope", "no profile 'nope' in the AWS config files"),
    "--region": ("us-esat-1", "did you mean us-east-1?"),
    "--endpoint-url": ("localhost:5000", "an http(s) URL"),
    "--backfill-queue-url": ("my-queue", "https://sqs.REGION.amazonaws.com/ACCOUNT/NAME"),
    "--prewarm-queue-url": ("my-queue", "https://sqs.REGION.amazonaws.com/ACCOUNT/NAME"),
    "--backfill-dlq-url": ("my-queue", "https://sqs.REGION.amazonaws.com/ACCOUNT/NAME"),
    "--prewarm-dlq-url": ("my-queue", "https://sqs.REGION.amazonaws.com/ACCOUNT/NAME"),
    "--paths-file": ("/nonexistent/paths.txt", "or - for standard input"),
    "--skip-sent": ("/nonexistent/folder/sent.txt", "a path in an existing folder"),
    "--targets": ("ap-northeast-9", "did you mean ap-northeast-1?"),
    "--encodings": ("zstd", "br+gzip"),
    "--host": ("café.example", "a DNS name such as cdn.example.com"),
    "--paths-per-message": ("0", "from 1 to 1000"),
    "--max-bytes": ("50XB", "50GB, 1.5TiB"),
    "--max-usd": ("-1", "a number ≥ 0"),
    "--bucket": ("Bad_Bucket", "3 to 63 lower-case letters"),
    "--key-prefix": ("_edgefill/x", "a key prefix such as site/"),
    "--origin-url": ("ftp://origin.example.com", "http(s)://host[:port][/path]"),
    "--prices": ("/nonexistent/prices.json", "the path of an existing file"),
    "--queue": ("dlq", "choose from 'backfill', 'prewarm', 'both'"),
    "--timeout": ("0", "a number > 0"),
    "--distribution-id": ("e2lower", "upper-case letters and digits"),
    "--canary": ("relative.jpg", "must start with '/'"),
    "--regions": ("mars-1", "a code such as us-east-1"),
    "--retention-days": ("31", "one of 1, 3, 5, 7, 14, 30"),
    "--distribution-domain": ("x_y", "a host name such as d111111abcdef8.cloudfront.net"),
    "--viewer-host": ("a..b", "a host name such as cdn.example.com"),
    "--resolver": ("resolver:99999", "an IP address[:port]"),
    "--edge-port": ("70000", "a port from 1 to 65535"),
    "--protocol": ("ftp", "choose from 'https', 'http'"),
    "--concurrency": ("0", "a whole number from 1 to 256"),
    "--streams": ("0", "a whole number from 1 to 1024"),
    "--streams-per-edge": ("1001", "a whole number from 1 to 1000"),
    "--region-subnets": ("{bad", "a JSON object such as"),
    "--large-mib": ("-1", "a size in MiB from 0 to 4096"),
    "--through": ("11", "a scene number from 1 to 10"),
}
# Where one flag means another thing in one command.
BAD_IN: dict[tuple[str, str], tuple[str, str]] = {
    ("lab up", "--edge-port"): ("70000", "a port from 0 to 65535"),
}


def commands() -> dict[str, argparse.ArgumentParser]:
    """Every runnable command's parser, by name (``lab up`` for the nested one)."""
    found: dict[str, argparse.ArgumentParser] = {}

    def walk(parser: argparse.ArgumentParser, prefix: str) -> None:
        subparsers = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subparsers:
            found[prefix.strip()] = parser
        for action in subparsers:
            for name, child in action.choices.items():
                walk(child, f"{prefix} {name}")

    walk(cli.build_parser(), "")
    return found


def flags_with_values(parser: argparse.ArgumentParser) -> list[str]:
    return [
        action.option_strings[-1]
        for action in parser._actions
        if action.option_strings and action.nargs != 0
    ]


CASES = [
    (command, flag)
    for command, parser in sorted(commands().items())
    for flag in flags_with_values(parser)
]


def test_every_command_has_base_arguments() -> None:
    assert set(commands()) == set(BASE)


def test_every_flag_that_takes_a_value_has_a_case() -> None:
    missing = [(c, f) for c, f in CASES if (c, f) not in BAD_IN and f not in BAD]
    assert missing == []


@pytest.mark.parametrize(("command", "flag"), CASES, ids=[f"{c} {f}" for c, f in CASES])
def test_a_bad_value_is_one_line_naming_the_flag_and_the_form(
    command: str, flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    value, form = BAD_IN.get((command, flag)) or BAD[flag]
    # When the operator passes a bad value for the flag, everything else being right
    code = cli.main([*BASE[command], flag, value])
    captured = capsys.readouterr()
    # Then the exit status is 2 and stderr holds one line: the flag and the accepted form
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert code == 2, captured.err
    assert len(lines) == 1, lines
    assert lines[0].startswith("edgefill: error:") and flag in lines[0], lines[0]
    assert form in " ".join(lines[0].split()), lines[0]
    assert "Traceback" not in captured.err and "usage:" not in captured.err
    assert captured.out == ""  # nothing printed as done, nothing sent
