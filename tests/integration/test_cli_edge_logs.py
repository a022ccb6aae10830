"""``edgefill edge-logs`` against moto (issue 19): the edge function's log groups, one per
region where a replica ran, listed and given a retention wherever they exist."""

from __future__ import annotations

import copy
import json
from typing import Any

import boto3
import pytest

from edgefill.cli import main
from edgefill.edge_logs import DEFAULT_EDGE_REGIONS
from tests.integration.test_cli import STACK_TEMPLATE
from tests.unit.test_template import load_sam

GROUP = "/aws/lambda/us-east-1.edgefill-edge"
REGIONS = ("us-east-1", "eu-west-1", "ap-northeast-1")


def logs(moto: str, region: str) -> Any:
    return boto3.client("logs", region_name=region, endpoint_url=moto)


@pytest.fixture
def deployed(moto: str) -> None:
    # Given a stack whose edge function logged in two of its three edge regions, one of
    # them already with a retention
    template: dict[str, Any] = copy.deepcopy(STACK_TEMPLATE)
    template["Parameters"] = {
        "DashboardEdgeRegions": {"Type": "CommaDelimitedList", "Default": ",".join(REGIONS)}
    }
    template["Outputs"]["EdgeFunctionVersionArn"] = {
        "Value": "arn:aws:lambda:us-east-1:123456789012:function:edgefill-edge:3"
    }
    boto3.client("cloudformation", region_name="us-east-1", endpoint_url=moto).create_stack(
        StackName="edgefill", TemplateBody=json.dumps(template)
    )
    logs(moto, "us-east-1").create_log_group(logGroupName=GROUP)
    logs(moto, "eu-west-1").create_log_group(logGroupName=GROUP)
    logs(moto, "eu-west-1").put_retention_policy(logGroupName=GROUP, retentionInDays=90)


def retention(moto: str, region: str) -> int | None | str:
    groups = logs(moto, region).describe_log_groups(logGroupNamePrefix=GROUP)["logGroups"]
    return groups[0].get("retentionInDays") if groups else "absent"


def test_the_groups_are_listed_in_each_edge_region(
    deployed: None, moto: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["edge-logs", "--stack", "edgefill", "--endpoint-url", moto, "--json"]) == 0
    rows = {row["region"]: row["retention"] for row in json.loads(capsys.readouterr().out)}
    assert rows == {"us-east-1": "never expires", "eu-west-1": "90 days", "ap-northeast-1": "—"}


def test_retention_is_set_wherever_a_group_exists(
    deployed: None, moto: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # When the operator sets 30 days
    argv = ["edge-logs", "--stack", "edgefill", "--endpoint-url", moto, "--retention-days", "30"]
    assert main([*argv, "--json"]) == 0
    actions = {row["region"]: row["action"] for row in json.loads(capsys.readouterr().out)}
    # Then both groups expire after 30 days; the region with none is left alone
    assert actions == {"us-east-1": "set", "eu-west-1": "set"}
    assert [retention(moto, r) for r in REGIONS] == [30, 30, "absent"]
    # And again changes nothing
    assert main([*argv, "--json"]) == 0
    assert {row["action"] for row in json.loads(capsys.readouterr().out)} == {"unchanged"}


def test_create_missing_prepares_the_regions_with_no_group_yet(
    deployed: None, moto: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["edge-logs", "--stack", "edgefill", "--endpoint-url", moto, "--retention-days", "7"]
    assert main([*argv, "--create-missing"]) == 0
    assert "created" in capsys.readouterr().out
    assert [retention(moto, r) for r in REGIONS] == [7, 7, 7]


def test_create_missing_alone_is_bad_input(
    deployed: None, moto: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["edge-logs", "--stack", "edgefill", "--endpoint-url", moto, "--create-missing"]
    assert main(argv) == 2
    assert "only with --retention-days" in capsys.readouterr().err


def test_a_retention_cloudwatch_does_not_offer_is_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["edge-logs", "--stack", "edgefill", "--retention-days", "31"]) == 2
    error = capsys.readouterr().err
    assert "--retention-days" in error and "one of 1, 3, 5" in error


def test_the_default_regions_are_the_templates_edge_regions() -> None:
    default = load_sam()["Parameters"]["DashboardEdgeRegions"]["Default"]
    assert tuple(default.split(",")) == DEFAULT_EDGE_REGIONS
