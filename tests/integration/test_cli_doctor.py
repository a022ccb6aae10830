"""``edgefill doctor`` through the CLI against moto in server mode. moto has no origin
groups, so a distribution there is never wired right: check 2 fails, naming the origin
group, and the exit status is 1."""

from __future__ import annotations

import copy
import json
from typing import Any

import boto3
import pytest

from edgefill.cli import main
from edgefill.lab.origin import LabOrigin
from tests.integration.test_cli import STACK_TEMPLATE

# These tests create stacks in moto, whose first CreateStack imports every moto backend
# (about 3 s of CPU): they share one xdist worker, and its moto server, to pay that once.
pytestmark = pytest.mark.xdist_group("cloudformation")

ACCOUNT = "123456789012"


@pytest.fixture
def deployed(moto: str, s3: Any, sqs: Any, origin: LabOrigin) -> str:
    cloudfront = boto3.client("cloudfront", region_name="us-east-1", endpoint_url=moto)
    distribution = cloudfront.create_distribution(
        DistributionConfig={
            "CallerReference": "edgefill-doctor",
            "Origins": {
                "Quantity": 1,
                "Items": [
                    {
                        "Id": "regional-bucket",
                        "DomainName": "edgefill-doctor.s3.us-east-1.amazonaws.com",
                        "S3OriginConfig": {"OriginAccessIdentity": ""},
                    }
                ],
            },
            "DefaultCacheBehavior": {
                "TargetOriginId": "regional-bucket",
                "ViewerProtocolPolicy": "redirect-to-https",
            },
            "Comment": "edgefill doctor test",
            "Enabled": True,
        }
    )["Distribution"]
    s3.create_bucket(Bucket="edgefill-doctor")
    # The full origin is the lab's; the distribution's domain answers nothing.
    template: dict[str, Any] = copy.deepcopy(STACK_TEMPLATE)
    template["Outputs"].update(
        {
            "BucketName": {"Value": "edgefill-doctor"},
            "DistributionDomain": {"Value": "127.0.0.1:9"},
            "DistributionId": {"Value": distribution["Id"]},
            "EdgeFunctionVersionArn": {
                "Value": f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:edgefill-edge:1"
            },
        }
    )
    template["Parameters"] = {
        "FullOriginDomain": {"Type": "String", "Default": f"127.0.0.1:{origin.port}"},
        "FullOriginProtocol": {"Type": "String", "Default": "http"},
    }
    cloudformation = boto3.client("cloudformation", region_name="us-east-1", endpoint_url=moto)
    cloudformation.create_stack(StackName="edgefill", TemplateBody=json.dumps(template))
    return str(distribution["Id"])


def test_against_moto_the_doctor_fails_check_2_naming_the_origin_group(
    deployed: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # When the doctor checks the stack (JSON)
    code = main(["doctor", "--stack", "edgefill", "--json"])
    results = json.loads(capsys.readouterr().out)
    # Then every check is reported in the documented shape, and check 2 fails
    assert code == 1
    assert all(set(r) == {"check", "ok", "detail", "remedy", "region"} for r in results)
    assert len(results) == 11
    by_name = {r["check"]: r for r in results}
    assert results[1]["check"] == "origin-group" and not results[1]["ok"]
    assert "origin group" in results[1]["detail"] and "origin group" in results[1]["remedy"]
    assert by_name["stack"]["ok"], by_name["stack"]


def test_the_table_shows_each_check_and_the_remedies(
    deployed: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["doctor", "--stack", "edgefill"]) == 1
    text = capsys.readouterr().out
    assert "origin-group" in text and "remedy:" in text and "event-sources" in text


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (["doctor", "--stack", "nope"], "stack 'nope' not found"),
        (["doctor", "--stack", "edgefill", "--canary", "/a/../b"], "--canary"),
        (["doctor", "--stack", "edgefill", "--canary", "relative.jpg"], "must start with '/'"),
    ],
)
def test_bad_input_exits_2(
    deployed: str, argv: list[str], problem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert problem in capsys.readouterr().err


def test_the_stack_is_required() -> None:
    assert main(["doctor"]) == 2


def test_the_canary_runs_after_the_checks_and_reports_its_step(
    deployed: str, origin: LabOrigin, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a path the full origin has and the bucket lacks, and a distribution that
    # cannot be reached
    origin.put("/canary.txt", b"hello from the full origin")
    # When the doctor runs with the canary
    code = main(["doctor", "--stack", "edgefill", "--canary", "/canary.txt", "--json"])
    results = json.loads(capsys.readouterr().out)
    # Then the canary is the twelfth result: the origin answered, the distribution did not
    assert code == 1 and len(results) == 12
    canary = results[-1]
    assert canary["check"] == "canary" and not canary["ok"]
    assert "origin" in canary["detail"] and "(26 B)" in canary["detail"]
    assert "distribution unreachable" in canary["detail"]
    assert origin.counts("/canary.txt").full_gets == 1


def test_a_canary_the_origin_lacks_is_bad_input(
    deployed: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["doctor", "--stack", "edgefill", "--canary", "/absent.txt"]) == 2
    assert "the full origin answered 404" in capsys.readouterr().err
