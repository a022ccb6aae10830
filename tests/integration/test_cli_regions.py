"""The CLI across the regions of a deployment: an edge stack in us-east-1 and a regional
stack in two regions, registered in moto by the lab's own ``register_stacks``. Each
command works per region (``--region R``) and across all (grouped, ``--json`` keyed by
region); a missing or hostile output, a region without a stack and a deleted regional
stack are exit 2 naming the stack, the output or the region."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import boto3
import pytest

from edgefill.cli import main
from edgefill.deployment import read_deployment
from edgefill.lab.stacks import register_stacks
from edgefill.operations import OperatorError
from tests.integration.test_cli import receive_all

# CreateStack's first call imports every moto backend: one xdist worker pays it once.
pytestmark = pytest.mark.xdist_group("cloudformation")

REGIONS = ("ap-southeast-1", "eu-central-1")
ACCOUNT = "123456789012"


def client(moto: str, service: str, region: str) -> Any:
    return boto3.client(service, region_name=region, endpoint_url=moto)


def edge_outputs(regions: tuple[str, ...] = REGIONS, **changed: str) -> dict[str, str]:
    outputs = {
        "DistributionId": "E2REGIONS",
        "DistributionArn": f"arn:aws:cloudfront::{ACCOUNT}:distribution/E2REGIONS",
        "DistributionDomain": "d111111abcdef8.cloudfront.net",
        "ViewerHost": "cdn.example.com",
        "Regions": ",".join(regions),
        "DefaultRegion": regions[0],
        "Routes": "eu-central-1:DE,FR",
        "RegionalStackName": "edgefill-regional",
        "EdgeFunctionVersionArn": f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:edge:3",
        "DashboardUrl": "https://console.aws.amazon.com/cloudwatch/home#dashboards:name=edge",
    }
    return outputs | changed


def regional_outputs(moto: str, region: str) -> dict[str, str]:
    sqs = client(moto, "sqs", region)
    urls = {
        name: sqs.create_queue(QueueName=f"edgefill-{name}")["QueueUrl"]
        for name in ("backfill", "backfill-dlq", "prewarm", "prewarm-dlq")
    }
    bucket = f"edgefill-{ACCOUNT}-{region}"
    client(moto, "s3", region).create_bucket(
        Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region}
    )
    return {
        "Region": region,
        "BucketName": bucket,
        "BucketRegion": region,
        "BackfillQueueUrl": urls["backfill"],
        "BackfillDLQUrl": urls["backfill-dlq"],
        "PrewarmQueueUrl": urls["prewarm"],
        "PrewarmDLQUrl": urls["prewarm-dlq"],
        "EdgeStackName": "edgefill",
        "DashboardUrl": f"https://console.aws.amazon.com/cloudwatch/home?region={region}",
    }


def deploy(
    moto: str, edge: Mapping[str, str] | None = None, regional: list[dict[str, str]] | None = None
) -> list[dict[str, str]]:
    described = regional or [regional_outputs(moto, region) for region in REGIONS]
    register_stacks(
        lambda region: client(moto, "cloudformation", region),
        edge or edge_outputs(),
        described,
        regional_parameters={r["Region"]: {"PrewarmTargets": r["Region"]} for r in described},
    )
    return described


@pytest.fixture
def deployed(moto: str) -> list[dict[str, str]]:
    return deploy(moto)


def printed(capsys: pytest.CaptureFixture[str]) -> Any:
    return json.loads(capsys.readouterr().out)


def test_status_across_regions_is_keyed_by_region_and_region_selects_one(
    deployed: list[dict[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    # When status runs on the edge stack without --region
    assert main(["status", "--stack", "edgefill", "--json"]) == 0
    document = printed(capsys)
    # Then every region's four queues are listed under it, with its own dashboard
    assert list(document) == list(REGIONS)
    for described in deployed:
        queues = document[described["Region"]]["queues"]
        assert [q["url"] for q in queues if q["role"] == "backfill"] == [
            described["BackfillQueueUrl"]
        ]
        assert document[described["Region"]]["dashboardUrl"] == described["DashboardUrl"]
    # And --region picks that region's regional stack alone
    assert main(["status", "--stack", "edgefill", "--region", "eu-central-1", "--json"]) == 0
    assert list(printed(capsys)) == ["eu-central-1"]


def test_backfill_goes_to_every_region_and_prewarm_targets_to_the_region_warming_them(
    moto: str, deployed: list[dict[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    by_region = {d["Region"]: d for d in deployed}
    # When one path is backfilled across the deployment
    assert main(["backfill", "--stack", "edgefill", "/a.jpg", "--json"]) == 0
    # Then each region's backfill queue holds its copy
    for region, described in by_region.items():
        bodies = receive_all(client(moto, "sqs", region), described["BackfillQueueUrl"])
        assert [json.loads(b)["uri"] for b in bodies] == ["/a.jpg"]
    capsys.readouterr()
    # When a prewarm names both regions and a POP
    argv = ["prewarm", "--stack", "edgefill", "/b.jpg", "--json"]
    assert main([*argv, "--targets", "eu-central-1,ap-southeast-1,NRT20-P2"]) == 0
    document = printed(capsys)
    assert set(document) == set(REGIONS) and all(d["sent"] == 1 for d in document.values())
    # Then each region warms its own edges; the POP goes to the default region, once
    targets = {
        region: [
            t
            for b in receive_all(client(moto, "sqs", region), by_region[region]["PrewarmQueueUrl"])
            for t in json.loads(b)["targets"]
        ]
        for region in REGIONS
    }
    assert targets == {
        "ap-southeast-1": ["ap-southeast-1", "NRT20-P2"],
        "eu-central-1": ["eu-central-1"],
    }


def test_an_explicit_queue_flag_wins_for_one_region_and_is_refused_across_several(
    moto: str, deployed: list[dict[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    other = client(moto, "sqs", "eu-central-1").create_queue(QueueName="mine")["QueueUrl"]
    argv = ["backfill", "--stack", "edgefill", "/c.jpg", "--backfill-queue-url", other]
    assert main([*argv, "--region", "eu-central-1"]) == 0
    assert len(receive_all(client(moto, "sqs", "eu-central-1"), other)) == 1
    assert receive_all(client(moto, "sqs", "eu-central-1"), deployed[1]["BackfillQueueUrl"]) == []
    capsys.readouterr()
    assert main(argv) == 2
    assert "--backfill-queue-url names one region's queue" in capsys.readouterr().err


def test_check_and_warm_take_the_distribution_from_the_edge_stack(
    deployed: list[dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from edgefill.commands import edge_flags, freshness

    seen: dict[str, Any] = {}

    def stop_here(args: Any, unset: Any) -> Any:
        seen.update(domain=args.distribution_domain, host=args.viewer_host)
        raise OperatorError("stopped by the test")

    monkeypatch.setattr(freshness, "prewarm_config", stop_here)
    assert main(["check", "--stack", "edgefill", "/a", "--targets", "us-east-1"]) == 2
    assert seen == {"domain": "d111111abcdef8.cloudfront.net", "host": "cdn.example.com"}
    # A flag given explicitly wins
    argv = ["check", "--stack", "edgefill", "/a", "--viewer-host", "www.example.com"]
    assert main(argv) == 2
    assert seen["host"] == "www.example.com"
    assert edge_flags.from_stack is freshness.from_stack


def test_estimate_sizes_from_the_default_region_with_every_region_targets(
    moto: str, deployed: list[dict[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    client(moto, "s3", REGIONS[0]).put_object(
        Bucket=deployed[0]["BucketName"], Key="e.bin", Body=b"x" * 1000
    )
    assert main(["estimate", "--stack", "edgefill", "/e.bin", "--json"]) == 0
    document = printed(capsys)
    assert set(document["byTarget"]) == set(REGIONS)
    assert document["unknownSizes"] == 0


# ---- hostile outputs and regions --------------------------------------------------------
def test_a_region_without_a_regional_stack_is_exit_2_naming_it(
    deployed: list[dict[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status", "--stack", "edgefill", "--region", "us-west-2"]) == 2
    error = capsys.readouterr().err
    assert "--region us-west-2" in error and "ap-southeast-1, eu-central-1" in error


def test_a_deleted_regional_stack_is_exit_2_and_a_failed_doctor_check_of_that_region(
    moto: str, deployed: list[dict[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    client(moto, "cloudformation", "eu-central-1").delete_stack(StackName="edgefill-regional")
    # The other region still works on its own
    assert main(["status", "--stack", "edgefill", "--region", "ap-southeast-1"]) == 0
    capsys.readouterr()
    assert main(["status", "--stack", "edgefill"]) == 2
    error = capsys.readouterr().err
    assert "region eu-central-1" in error and "edgefill-regional" in error
    # doctor names the broken region and still checks the other one
    assert main(["doctor", "--stack", "edgefill", "--json"]) == 1
    results = printed(capsys)
    broken = [r for r in results if r["region"] == "eu-central-1"]
    assert [(r["check"], r["ok"]) for r in broken] == [("stack", False)]
    assert "regional.yaml in eu-central-1" in broken[0]["remedy"]
    assert any(r["region"] == "ap-southeast-1" and r["check"] == "queues" for r in results)


def test_a_missing_output_is_exit_2_naming_the_stack_and_the_output(
    moto: str, capsys: pytest.CaptureFixture[str]
) -> None:
    edge = edge_outputs()
    del edge["RegionalStackName"]
    cloudformation = client(moto, "cloudformation", "us-east-1")
    body = {"Resources": {"X": {"Type": "AWS::CloudFormation::WaitConditionHandle"}}}
    body["Outputs"] = {k: {"Value": v} for k, v in edge.items()}  # type: ignore[assignment]
    cloudformation.create_stack(StackName="edgefill", TemplateBody=json.dumps(body))
    assert main(["status", "--stack", "edgefill"]) == 2
    assert "stack 'edgefill' has no RegionalStackName output" in capsys.readouterr().err


def test_a_regional_stack_without_its_queue_output_is_named(
    moto: str, capsys: pytest.CaptureFixture[str]
) -> None:
    described = [regional_outputs(moto, region) for region in REGIONS]
    deploy(moto, regional=described)
    # moto cannot delete one output: a stack in a third region stands for it
    cloudformation = client(moto, "cloudformation", "eu-central-1")
    cloudformation.delete_stack(StackName="edgefill-regional")
    lacking = {k: v for k, v in described[1].items() if k != "BackfillQueueUrl"}
    body = {"Resources": {"X": {"Type": "AWS::CloudFormation::WaitConditionHandle"}}}
    body["Outputs"] = {k: {"Value": v} for k, v in lacking.items()}  # type: ignore[assignment]
    cloudformation.create_stack(StackName="edgefill-regional", TemplateBody=json.dumps(body))
    assert main(["backfill", "--stack", "edgefill", "--region", "eu-central-1", "/a"]) == 2
    error = capsys.readouterr().err
    assert "stack 'edgefill-regional' in eu-central-1 has no BackfillQueueUrl output" in error


@pytest.mark.parametrize(
    ("output", "value", "named"),
    [
        ("BackfillQueueUrl", "https://attacker.example.net/123456789012/q", "attacker.example.net"),
        ("PrewarmQueueUrl", "https://sqs.us-west-2.amazonaws.com/1/edgefill-prewarm", "us-west-2"),
        ("BucketName", "Bad_Bucket", "not a bucket name"),
        ("Region", "eu-centrall-1", "Region is 'eu-centrall-1'"),
    ],
)
def test_a_hostile_regional_output_is_refused_naming_it(
    moto: str, capsys: pytest.CaptureFixture[str], output: str, value: str, named: str
) -> None:
    described = [regional_outputs(moto, region) for region in REGIONS]
    cloudformation = client(moto, "cloudformation", "eu-central-1")
    deploy(moto, regional=described)
    cloudformation.delete_stack(StackName="edgefill-regional")
    hostile = described[1] | {output: value}
    body = {"Resources": {"X": {"Type": "AWS::CloudFormation::WaitConditionHandle"}}}
    body["Outputs"] = {k: {"Value": v} for k, v in hostile.items()}  # type: ignore[assignment]
    cloudformation.create_stack(StackName="edgefill-regional", TemplateBody=json.dumps(body))
    # When a command reads that region
    assert main(["status", "--stack", "edgefill", "--region", "eu-central-1"]) == 2
    error = capsys.readouterr().err
    # Then nothing is sent or read there, and the error names the stack and the value
    assert "edgefill-regional" in error and named in error
    assert main(["status", "--stack", "edgefill", "--region", "ap-southeast-1"]) == 0


def test_a_hostile_edge_output_is_refused_naming_it(
    moto: str, capsys: pytest.CaptureFixture[str]
) -> None:
    deploy(moto, edge=edge_outputs(DistributionDomain="evil.example.com/../x"))
    assert main(["warm", "--stack", "edgefill", "/a", "--targets", "us-east-1"]) == 2
    error = capsys.readouterr().err
    assert "stack 'edgefill' output DistributionDomain" in error


def test_regions_listing_an_unknown_region_is_exit_2(moto: str) -> None:
    cloudformation = client(moto, "cloudformation", "us-east-1")
    body = {"Resources": {"X": {"Type": "AWS::CloudFormation::WaitConditionHandle"}}}
    outputs = edge_outputs() | {"Regions": "ap-southeast-1,mars-north-1"}
    body["Outputs"] = {k: {"Value": v} for k, v in outputs.items()}  # type: ignore[assignment]
    cloudformation.create_stack(StackName="edgefill", TemplateBody=json.dumps(body))
    with pytest.raises(OperatorError, match="output Regions: 'mars-north-1'"):
        read_deployment(lambda region: client(moto, "cloudformation", region), "edgefill")


def test_register_stacks_refuses_a_description_that_is_not_the_contract(moto: str) -> None:
    def cloudformation_in(region: str) -> Any:
        return client(moto, "cloudformation", region)

    region = dict.fromkeys(("Region", "BucketName"), "x")
    with pytest.raises(ValueError, match="missing outputs BucketRegion"):
        register_stacks(cloudformation_in, edge_outputs(), [region])
    described = regional_outputs(moto, "ap-southeast-1")
    with pytest.raises(ValueError, match="unknown outputs Extra"):
        register_stacks(cloudformation_in, edge_outputs(), [described | {"Extra": "1"}])
    with pytest.raises(ValueError, match="Regions"):
        register_stacks(cloudformation_in, edge_outputs(), [described])
    with pytest.raises(ValueError, match="described twice"):
        register_stacks(cloudformation_in, edge_outputs(), [described, described])
