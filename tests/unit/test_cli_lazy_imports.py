"""A command imports only what it uses (issue 23): `edgefill --help`, `edgefill warm --help`
and a `warm` command line being parsed never load boto3, botocore's session machinery or
requests. Structural, in a fresh interpreter; the start-up time is bench/bench_cli_start.py's."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("boto3", "botocore.session", "botocore.client", "requests", "s3transfer")

PROBE = """
import json, sys
from edgefill import cli
argv = json.loads(sys.argv[1])
try:
    if argv and argv[-1] == "--help":
        cli.main(argv)
    else:
        cli.build_parser().parse_args(argv)
except SystemExit:
    pass
heavy = json.loads(sys.argv[2])
print(json.dumps(sorted(m for m in heavy if m in sys.modules)))
"""


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["warm", "--help"],
        ["warm", "/a.jpg", "--targets", "us-east-1", "--distribution-domain", "d1.cloudfront.net"],
    ],
    ids=["help", "warm-help", "warm-parsed"],
)
def test_a_command_that_never_calls_aws_never_loads_boto3(argv: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(argv), json.dumps(HEAVY)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
