"""Every subcommand with markup-like and non-ASCII arguments: never read as Rich markup,
never a traceback; bad input exits 2 with a one-line error. And `prewarm --host` is
checked against the stack's allowed hosts before anything is sent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from edgefill.cli import build_parser, main
from shared.messages import parse_prewarm
from tests.integration.test_cli import STACK_TEMPLATE, receive_all

# These tests create stacks in moto, whose first CreateStack imports every moto backend
# (about 3 s of CPU): they share one xdist worker, and its moto server, to pay that once.
pytestmark = pytest.mark.xdist_group("cloudformation")

ROOT = Path(__file__).resolve().parents[2]
QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/q"

# Each case: the arguments, the exit status, and text stderr must show literally.
BAD_INPUT: list[tuple[list[str], str]] = [
    (["prewarm", "--dry-run", "--host", "[/]", "/a"], "'[/]'"),
    (["prewarm", "--dry-run", "--targets", "[bold]日本", "/a"], "[bold]日本"),
    (["prewarm", "--dry-run", "--encodings", "café[/red]", "/a"], "café[/red]"),
    (["prewarm", "--dry-run", "--paths-file", "/nonexistent/[/red]日本.txt"], "[/red]日本.txt"),
    (["prewarm", "--dry-run", "img[/red]Ω.jpg"], "img[/red]Ω.jpg"),
    (["backfill", "--dry-run", "img[/red].jpg"], "img[/red].jpg"),
    (["backfill", "--dry-run", "--host", "[/]", "/a"], "'[/]'"),
    (["backfill", "--dry-run", "--host", "café.example", "/a"], "café.example"),
    (["backfill", "--dry-run", "/a\x07[/]"], "control character"),
    (["status", "--prewarm-queue-url", "https://sqs.[/red]/1/q"], "[/red]"),
    (["status", "--stack", "[/red]日本"], "'[/red]日本' is not a stack name"),
    (["redrive", "--prewarm-queue-url", "http://[/]é/1/q"], "[/]é"),
    (["estimate", "--targets", "[link=x]y[/link]", "--bucket", "bkt", "/a"], "[link=x]y[/link]"),
    (
        [
            "estimate",
            "/a[/red]",
            "--targets",
            "us-east-1",
            "--bucket",
            "bkt",
            "--prices",
            "/n/[b]€",
        ],
        "[b]€",
    ),
    (["doctor", "--stack", "[/red]Ω"], ""),
    (["edge-logs", "--stack", "[/red]Ω", "--regions", "[/]é"], ""),
    (["redrive", "--dry-run", "--backfill-dlq-url", "http://[/]é/1/q"], "[/]é"),
    (["warm", "--distribution-domain", "[/red]", "--targets", "us-east-1", "/a"], "'[/red]'"),
    (["warm", "--distribution-domain", "d1.cloudfront.net", "--resolver", "[/]é", "/a"], "[/]é"),
    (["warm", "--distribution-domain", "d1.cloudfront.net", "--targets", "ü", "/a"], "'ü'"),
    (["refresh", "--dry-run", "img[/red]Ω.jpg"], "img[/red]Ω.jpg"),
    (["refresh", "--dry-run", "--host", "[/]", "/a"], "'[/]'"),
    (["invalidate", "--distribution-id", "[/red]日本", "/a"], "[/red]日本"),
    (["invalidate", "--distribution-id", "E2EXAMPLE1234", "img[/red].jpg"], "img[/red].jpg"),
    (["check", "--distribution-domain", "[/red]", "--targets", "us-east-1", "/a"], "'[/red]'"),
    (["check", "--distribution-domain", "d1.cloudfront.net", "--targets", "ü", "/a"], "'ü'"),
]
# Refused by argparse itself (usage, then one error line naming the argument).
USAGE_ERRORS: list[list[str]] = [
    ["redrive", "--queue", "[/]"],
    ["lab", "up", "--edge-port", "[/red]日本"],
    ["demo", "[bold]é"],
    ["prewarm", "--paths-per-message", "[/]", "/a"],
    ["status", "--json", "[/]Ω"],
    ["edge-logs", "--stack", "s", "--retention-days", "[/]Ω"],
]


def run(argv: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    """``edgefill`` in its own process without AWS credentials, in the C locale."""
    clean = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AWS_", "EDGEFILL_")) and key not in ("LANG", "LC_ALL")
    }
    clean.update(
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
        AWS_REGION="us-east-1",
        LC_ALL="C",
        **env,
    )
    return subprocess.run(
        [sys.executable, "-m", "edgefill.cli", *argv],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
    )


def test_the_cases_cover_every_subcommand() -> None:
    names = {argv[0] if argv[0] != "lab" else "lab up" for argv, _ in BAD_INPUT}
    names |= {argv[0] if argv[0] != "lab" else "lab up" for argv in USAGE_ERRORS}
    (commands,) = [a for a in build_parser()._actions if a.dest == "command"]
    every = {name for name in commands.choices if name != "lab"} | {"lab up"}
    assert every <= names, every - names


@pytest.mark.parametrize(("argv", "shown"), BAD_INPUT)
def test_bad_operator_text_is_one_literal_error_line(argv: list[str], shown: str) -> None:
    # When the operator passes markup-like or non-ASCII text that breaks a rule
    done = run(argv)
    # Then the exit status is 2, stderr is one error line, never a traceback
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 2, (done.returncode, done.stderr)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("edgefill: error:"), lines
    # And the operator's text is printed as typed, not read as markup
    assert shown in lines[0]


@pytest.mark.parametrize("argv", USAGE_ERRORS)
def test_arguments_argparse_refuses_end_in_one_error_line(argv: list[str]) -> None:
    done = run(argv)
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 2
    assert done.stderr.splitlines()[-1].startswith("edgefill")
    assert "error:" in done.stderr.splitlines()[-1]


def test_markup_like_non_ascii_paths_go_through_dry_runs_literally() -> None:
    done = run(["prewarm", "--dry-run", "/img/[red]x[/red]/日本 café.jpg", "--targets", "NRT20-P2"])
    assert done.returncode == 0 and "Traceback" not in done.stderr
    (body,) = done.stdout.splitlines()
    message = parse_prewarm(body)
    assert message.paths == ("/img/%5Bred%5Dx%5B/red%5D/%E6%97%A5%E6%9C%AC%20caf%C3%A9.jpg",)
    done = run(["backfill", "--dry-run", "/[/]/Ω.jpg"])
    assert done.returncode == 0 and json.loads(done.stdout)["uri"] == "/%5B/%5D/%CE%A9.jpg"


# ---- the host rule, before sending ---------------------------------------------------
ALLOWED = "d111abc.cloudfront.net,cdn.example.com,img.example.com"


@pytest.fixture
def stack_with_hosts(moto: str, sqs: Any) -> str:
    import boto3

    template = json.loads(json.dumps(STACK_TEMPLATE))
    template["Outputs"]["PrewarmAllowedHosts"] = {"Value": ALLOWED}
    cloudformation = boto3.client("cloudformation", region_name="us-east-1", endpoint_url=moto)
    cloudformation.create_stack(StackName="edgefill", TemplateBody=json.dumps(template))
    return str(sqs.get_queue_url(QueueName="pw")["QueueUrl"])


def test_given_another_customers_host_when_prewarming_then_nothing_is_sent(
    moto: str, sqs: Any, stack_with_hosts: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # When the operator names a host the stack does not serve
    code = main(["prewarm", "/a", "--host", "victim.example.net", "--stack", "edgefill"])
    # Then the CLI refuses before sending, naming --host and the allowed hosts
    assert code == 2
    error = capsys.readouterr().err
    assert "--host: 'victim.example.net' is not a host of stack 'edgefill'" in error
    assert "cdn.example.com" in error
    assert receive_all(sqs, stack_with_hosts) == []


def test_given_an_alias_of_the_stack_when_prewarming_then_the_message_is_sent(
    moto: str, sqs: Any, stack_with_hosts: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["prewarm", "/[b]é.jpg", "--host", "IMG.example.com", "--stack", "edgefill"])
    assert code == 0, capsys.readouterr().err
    (body,) = receive_all(sqs, stack_with_hosts)
    assert parse_prewarm(body).host == "IMG.example.com"
    assert "Traceback" not in capsys.readouterr().err


def test_without_a_stack_the_cli_says_the_worker_checks_the_host(
    moto: str, sqs: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    url = sqs.create_queue(QueueName="direct")["QueueUrl"]
    code = main(["prewarm", "/a", "--host", "cdn.example.com", "--prewarm-queue-url", url])
    assert code == 0
    assert "--host is checked by the prewarm worker only" in capsys.readouterr().err


def test_tables_and_failure_lines_print_remote_text_literally(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given text from SQS, DNS and paths that looks like markup
    from edgefill.commands import queue_commands, warm
    from prewarm_worker.engine import TargetTotals, TaskResult, WarmReport, WarmTask

    report = queue_commands.SendOutcome(1, failed=[(0, "Code[/]", "reason [/red] é")])
    body = '{"v": 1, "type": "prewarm", "paths": ["/[b]"]}'
    warm_report = WarmReport(tasks=1)
    warm_report.targets["NRT20-P2"] = TargetTotals(error="answered [/bold] 日本")
    failure = TaskResult(WarmTask("/[b]", "NRT20-P2", "gzip"), ok=False, error="[/link] Ω")
    warm_report.failures.append(failure)
    # When the send summary and the warm table print them
    code = queue_commands.send_report("prewarm", "http://q/[/]", [body], report, False, None)
    assert code == 1
    warm._print_warm_table(warm_report)
    # Then each shows as written
    captured = capsys.readouterr()
    assert "Code[/]: reason [/red] é" in captured.err
    assert "[/link] Ω" in captured.err
    assert "answered [/bold]" in captured.out  # the table cell, as DNS said it
