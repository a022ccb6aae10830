"""``edgefill estimate`` and the caps on ``prewarm``/``warm``, against moto (bucket, queues,
stack) and the lab full origin (the HEAD fallback)."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from edgefill.cli import main
from edgefill.lab.origin import LabOrigin
from tests.integration.test_cli import STACK_TEMPLATE, receive_all
from tests.json_keys import snake_case_keys

# These tests create stacks in moto, whose first CreateStack imports every moto backend
# (about 3 s of CPU): they share one xdist worker, and its moto server, to pay that once.
pytestmark = pytest.mark.xdist_group("cloudformation")

BUCKET = "edgefill-sizes"
SIZES = {"site/a.jpg": 1000, "site/東京 b.png": 2500}


@pytest.fixture
def deployed(moto: str, s3: Any, sqs: Any) -> dict[str, str]:
    """A bucket with two objects under the key prefix ``site``, and an edgefill-like stack
    naming it, its queues and its default targets and encodings."""
    s3.create_bucket(Bucket=BUCKET)
    for key, size in SIZES.items():
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"x" * size)
    template: dict[str, Any] = json.loads(json.dumps(STACK_TEMPLATE))
    template["Parameters"] = {
        "KeyPrefix": {"Type": "String", "Default": "site"},
        "PrewarmTargets": {"Type": "String", "Default": "us-east-1,NRT20-P2"},
        "PrewarmEncodings": {"Type": "String", "Default": "gzip,br"},
    }
    template["Outputs"]["BucketName"] = {"Value": BUCKET}
    template["Outputs"]["BucketRegion"] = {"Value": "us-east-1"}
    cloudformation = boto3.client("cloudformation", region_name="us-east-1", endpoint_url=moto)
    cloudformation.create_stack(StackName="edgefill", TemplateBody=json.dumps(template))
    return {name: sqs.get_queue_url(QueueName=name)["QueueUrl"] for name in ("bf", "pw")}


def run_json(argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    assert main(argv) == 0, capsys.readouterr().err
    document: dict[str, Any] = json.loads(capsys.readouterr().out)
    assert snake_case_keys(document) == []
    return document


def test_estimate_reads_sizes_from_the_stacks_bucket(
    deployed: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    # Given two stored paths and one the bucket lacks, with the stack's defaults
    document = run_json(
        ["estimate", "--stack", "edgefill", "--json", "/a.jpg", "/東京 b.png", "/missing.jpg"],
        capsys,
    )
    # Then sizes × 2 targets × 2 encodings, the unknown one counted apart
    assert document["paths"] == 3 and document["warms"] == 3 * 2 * 2
    assert document["bytes"] == (1000 + 2500) * 2 * 2
    assert document["unknownSizes"] == 1
    assert set(document["byTarget"]) == {"us-east-1", "NRT20-P2"}
    assert document["byTarget"]["us-east-1"]["bytes"] == 3500 * 2
    assert document["byTarget"]["NRT20-P2"]["geography"] == "jp"
    assert document["usd"] > 0 and document["prices"]["asOf"] == "2026-11-30"


def test_the_origin_answers_for_what_the_bucket_lacks(
    deployed: dict[str, str], origin: LabOrigin, capsys: pytest.CaptureFixture[str]
) -> None:
    origin.put("/missing.jpg", b"y" * 4000)
    document = run_json(
        [
            "estimate",
            *("--bucket", BUCKET, "--key-prefix", "site", "--origin-url", origin.url),
            *("--targets", "eu-west-1", "--encodings", "identity", "--json"),
            *("/a.jpg", "/missing.jpg", "/nowhere.jpg"),
        ],
        capsys,
    )
    assert document["bytes"] == 1000 + 4000
    assert document["unknownSizes"] == 1  # /nowhere.jpg: 404 at the origin too
    assert origin.counts("/a.jpg").heads == 0  # the bucket answered for it
    assert origin.counts("/missing.jpg").heads == 1


def test_estimate_table_lists_targets_and_unknown_paths(
    deployed: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["estimate", "--stack", "edgefill", "/a.jpg", "/[gone].jpg"]) == 0
    captured = capsys.readouterr()
    assert "us-east-1" in captured.out and "NRT20-P2" in captured.out and "total" in captured.out
    assert "/%5Bgone%5D.jpg" in captured.err or "[gone]" in captured.err
    assert "prices as of 2026-11-30" in captured.err


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (["estimate", "/a.jpg", "--targets", "us-east-1"], "--stack NAME or --bucket"),
        (["estimate", "/a.jpg", "--stack", "edgefill", "--bucket", "bucket-1"], "not both"),
        (["estimate", "/a.jpg", "--bucket", BUCKET], "no targets"),
        (["estimate", "/a.jpg", "--stack", "edgefill", "--targets", "mars-1"], "--targets"),
        (["estimate", "a.jpg", "--stack", "edgefill"], "must start with '/'"),
        (
            [
                "estimate",
                "/a.jpg",
                "--bucket",
                BUCKET,
                "--targets",
                "us-east-1",
                "--origin-url",
                "ftp://origin.example.com",
            ],
            "--origin-url",
        ),
        (
            [
                "estimate",
                "/a.jpg",
                "--bucket",
                BUCKET,
                "--key-prefix",
                "site",
                "--targets",
                "us-east-1",
                "--origin-url",
                "https://user:secret@origin.example.com",
            ],
            "neither credentials",
        ),
    ],  # fmt: skip
)
def test_bad_estimate_input_exits_2_naming_it(
    deployed: dict[str, str], argv: list[str], problem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert problem in capsys.readouterr().err


# ---------------------------------------------------------------- caps
def test_prewarm_under_the_caps_is_sent(
    deployed: dict[str, str], sqs: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["prewarm", "--stack", "edgefill", "--max-bytes", "14000", "--max-usd", "1", "/a.jpg"]
    assert main([*argv, "/東京 b.png"]) == 0
    assert len(receive_all(sqs, deployed["pw"])) == 1
    assert "under the caps" in capsys.readouterr().err


@pytest.mark.parametrize(
    "caps",
    [["--max-bytes", "13999"], ["--max-usd", "0"], ["--max-bytes", "999999999"]],
    ids=["bytes", "usd", "unknown-size"],
)
def test_prewarm_over_a_cap_prints_the_estimate_and_sends_nothing(
    deployed: dict[str, str], sqs: Any, caps: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    # Given 14 000 bytes of warms (and, for the last case, a path of unknown size)
    paths = ["/a.jpg", "/東京 b.png"] + (["/missing.jpg"] if caps[1] == "999999999" else [])
    # When the operator prewarms under a cap they would break
    code = main(["prewarm", "--stack", "edgefill", *caps, *paths])
    captured = capsys.readouterr()
    # Then the estimate is printed, nothing is sent, and the exit status is 1
    assert code == 1
    assert "total" in captured.out and "refused" in captured.err and "nothing sent" in captured.err
    assert receive_all(sqs, deployed["pw"]) == []


def test_warm_over_a_cap_warms_nothing(
    deployed: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a warm of 1000 bytes × 1 target × 4 encodings with a 1 KiB cap
    code = main(
        [
            "warm",
            *("--distribution-domain", "d111.cloudfront.net", "--targets", "us-east-1"),
            *("--resolver", "127.0.0.1:9"),  # never asked: the cap refuses first
            *("--bucket", BUCKET, "--key-prefix", "site", "--max-bytes", "1024"),
            "/a.jpg",
        ]
    )
    captured = capsys.readouterr()
    assert code == 1
    assert "4000 bytes is over --max-bytes 1024" in captured.err
    assert "warming" not in captured.err


@pytest.mark.parametrize(
    ("flag", "value"), [("--max-bytes", "-1"), ("--max-bytes", "1e3"), ("--max-usd", "nan")]
)
def test_a_bad_cap_is_bad_input(
    deployed: dict[str, str], flag: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["prewarm", "--stack", "edgefill", flag, value, "/a.jpg"]) == 2
    assert flag in capsys.readouterr().err


def test_a_cap_without_a_size_source_is_bad_input(
    deployed: dict[str, str], sqs: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["prewarm", "--prewarm-queue-url", deployed["pw"], "--max-bytes", "1", "/a.jpg"])
    assert code == 2
    assert "--stack NAME or --bucket" in capsys.readouterr().err
    assert receive_all(sqs, deployed["pw"]) == []
