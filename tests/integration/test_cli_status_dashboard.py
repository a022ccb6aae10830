"""``edgefill status --stack`` links the stack's CloudWatch dashboard."""

from __future__ import annotations

import copy
import json
from typing import Any

import boto3
import pytest

from edgefill.cli import main
from tests.integration.test_cli import STACK_TEMPLATE

# These tests create stacks in moto, whose first CreateStack imports every moto backend
# (about 3 s of CPU): they share one xdist worker, and its moto server, to pay that once.
pytestmark = pytest.mark.xdist_group("cloudformation")

URL = (
    "https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1"
    "#dashboards/dashboard/with-dashboard"
)


def create_stack(moto: str, name: str, dashboard: bool) -> None:
    template: dict[str, Any] = copy.deepcopy(STACK_TEMPLATE)
    for resource in template["Resources"].values():  # queue names unique per stack
        resource["Properties"]["QueueName"] = f"{name}-{resource['Properties']['QueueName']}"
    if dashboard:
        template["Outputs"]["DashboardUrl"] = {"Value": URL}
    cloudformation = boto3.client("cloudformation", region_name="us-east-1", endpoint_url=moto)
    cloudformation.create_stack(StackName=name, TemplateBody=json.dumps(template))


def test_status_prints_the_dashboard_url(
    moto: str, sqs: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a stack whose outputs name its dashboard
    create_stack(moto, "with-dashboard", dashboard=True)
    # When the operator asks for the status (table, then JSON)
    assert main(["status", "--stack", "with-dashboard", "--endpoint-url", moto]) == 0
    table = capsys.readouterr()
    assert main(["status", "--stack", "with-dashboard", "--endpoint-url", moto, "--json"]) == 0
    as_json = capsys.readouterr()
    # Then the table is followed by the link, and the JSON stays pure (link on stderr)
    assert f"dashboard: {URL}" in table.out
    assert len(json.loads(as_json.out)) == 4
    assert f"dashboard: {URL}" in as_json.err


def test_status_of_an_older_stack_says_it_has_no_dashboard(
    moto: str, sqs: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    create_stack(moto, "before-dashboard", dashboard=False)
    assert main(["status", "--stack", "before-dashboard", "--endpoint-url", moto]) == 0
    captured = capsys.readouterr()
    assert "dashboard:" not in captured.out
    assert "no DashboardUrl output" in captured.err
