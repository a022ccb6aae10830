"""The stacks across regions (issue 20): the edge stack's slots, its origins and their
custom headers per region, the Rules refusing a bad slot configuration, the inline
viewer-request function, and the names each regional stack must match."""

from __future__ import annotations

import copy
import importlib.util
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from shared import edge_routing
from tests.unit.test_template import (
    ROOT,
    ParameterValues,
    Template,
    deployment,
    edge_role_problems,
    is_edge_output,
    policy_statements,
    props,
    regional,
    regional_cfn,
    sam,
    translate,
)
from tests.unit.test_template_bounded import rule_holds
from tests.unit.test_template_faithful import resolved

__all__ = ["regional", "regional_cfn", "sam"]  # fixtures of test_template

THREE = {
    "FullOriginDomain": "origin.example.com",
    "KeyPrefix": "media",
    "Region1": "ap-southeast-1",
    "Region1Countries": "SG,MY",
    "Region2": "eu-central-1",
    "Region2Countries": "DE,FR",
    "Region3": "us-west-2",
    "Region3Bucket": "my-oregon-bucket",
    "DefaultRegion": "eu-central-1",
}


def edge_stack(sam: Template, parameters: dict[str, str]) -> ParameterValues:
    return ParameterValues(sam, parameters)


def distribution(sam: Template, parameters: dict[str, str]) -> dict[str, Any]:
    """The distribution's config with every If decided and every intrinsic evaluated."""
    stack = edge_stack(sam, parameters)
    config = resolved(stack, props(sam, "Distribution"))["DistributionConfig"]
    return evaluated(stack, config)


def evaluated(stack: ParameterValues, value: Any) -> Any:
    if isinstance(value, list):
        return [evaluated(stack, item) for item in value]
    if (
        isinstance(value, dict)
        and len(value) == 1
        and next(iter(value))
        in (
            "Ref",
            "Fn::Sub",
            "Fn::Join",
        )
    ):
        ref = value.get("Ref")
        if isinstance(ref, str) and ref.split(".")[0] in stack.template["Resources"]:
            return f"<{ref}>"
        return stack.value(value)
    if isinstance(value, dict) and set(value) == {"Fn::GetAtt"}:
        return f"<{'.'.join(value['Fn::GetAtt'])}>"
    if isinstance(value, dict):
        return {key: evaluated(stack, item) for key, item in value.items()}
    return value


# ---------------------------------------------------------------- origins per slot


def test_each_used_slot_has_its_bucket_origin_and_its_full_origin(sam: Template) -> None:
    # Given three slots, the third with an existing bucket
    config = distribution(sam, THREE)
    origins = {o["Id"]: o for o in config["Origins"]}
    # Then each region has bucket-<R> (its bucket, through the OAC) and full-<R>
    assert sorted(origins) == sorted(
        f"{kind}-{region}"
        for kind in ("bucket", "full")
        for region in ("ap-southeast-1", "eu-central-1", "us-west-2")
    )
    assert origins["bucket-ap-southeast-1"]["DomainName"] == (
        "edgefill-123456789012-ap-southeast-1.s3.ap-southeast-1.amazonaws.com"
    )
    assert origins["bucket-us-west-2"]["DomainName"] == (
        "my-oregon-bucket.s3.us-west-2.amazonaws.com"
    )
    for region in ("ap-southeast-1", "eu-central-1", "us-west-2"):
        bucket = origins[f"bucket-{region}"]
        assert bucket["OriginAccessControlId"] == "<OriginAccessControl.Id>"
        assert bucket["OriginPath"] == "/media"
        assert "OriginCustomHeaders" not in bucket
        full = origins[f"full-{region}"]
        assert full["DomainName"] == "origin.example.com"
        headers = {h["HeaderName"]: h["HeaderValue"] for h in full["OriginCustomHeaders"]}
        # And the full origin tells the edge function its region's queue and region
        assert headers == {
            "x-edgefill-queue": (
                f"https://sqs.{region}.amazonaws.com/123456789012/edgefill-backfill"
            ),
            "x-edgefill-region": region,
            "x-edgefill-key-prefix": "/media",
        }


def test_the_static_group_is_region1s_with_todays_failover_codes(sam: Template) -> None:
    config = distribution(sam, THREE)
    (group,) = config["OriginGroups"]["Items"]
    assert group["Id"] == config["DefaultCacheBehavior"]["TargetOriginId"]
    assert group["Id"] == "group-ap-southeast-1"
    assert [m["OriginId"] for m in group["Members"]["Items"]] == [
        "bucket-ap-southeast-1",
        "full-ap-southeast-1",
    ]
    codes = group["FailoverCriteria"]["StatusCodes"]["Items"]
    assert codes == list(edge_routing.FAILOVER_STATUS_CODES)


def test_several_regions_route_viewers_by_country(sam: Template) -> None:
    # Given three regions / Then the viewer-request function runs on the default
    # behavior, and the viewer's country reaches it through an origin request policy
    behavior = distribution(sam, THREE)["DefaultCacheBehavior"]
    assert behavior["FunctionAssociations"] == [
        {"EventType": "viewer-request", "FunctionARN": "<ViewerRequestFunction.FunctionARN>"}
    ]
    assert behavior["OriginRequestPolicyId"] == "<ViewerCountryPolicy>"
    policy = props(sam, "ViewerCountryPolicy")["OriginRequestPolicyConfig"]
    assert policy["HeadersConfig"] == {
        "HeaderBehavior": "whitelist",
        "Headers": ["CloudFront-Viewer-Country"],
    }
    # And the country never joins the cache key (one copy per object, not per country)
    cache = props(sam, "CachePolicy")["CachePolicyConfig"]
    assert cache["ParametersInCacheKeyAndForwardedToOrigin"]["HeadersConfig"] == {
        "HeaderBehavior": "none"
    }
    function = props(sam, "ViewerRequestFunction")
    assert function["FunctionConfig"]["Runtime"] == "cloudfront-js-2.0"
    assert function["AutoPublish"] is True


def test_one_region_runs_no_function_and_needs_no_viewer_country(sam: Template) -> None:
    # Given one slot / Then the static group serves every viewer: no function to pay for
    parameters = {"FullOriginDomain": "origin.example.com", "Region1": "eu-west-1"}
    config = distribution(sam, parameters)
    assert [o["Id"] for o in config["Origins"]] == ["bucket-eu-west-1", "full-eu-west-1"]
    assert "FunctionAssociations" not in config["DefaultCacheBehavior"]
    assert "OriginRequestPolicyId" not in config["DefaultCacheBehavior"]
    stack = edge_stack(sam, parameters)
    for name in ("ViewerRequestFunction", "ViewerCountryPolicy"):
        condition = sam["Resources"][name]["Condition"]
        assert not stack.condition(condition), name


def test_the_origins_fit_cloudfronts_quota() -> None:
    # Five slots, two origins each: 10 origins and 1 origin group, within the 25 origins
    # a distribution takes (CloudFront Developer Guide; docs/DEPLOY.md "AWS facts")
    text = (ROOT / "template.yaml").read_text(encoding="utf-8")
    slots = set(re.findall(r"^  Region(\d)+:$", text, flags=re.MULTILINE))
    assert slots == {"1", "2", "3", "4", "5"}


# ---------------------------------------------------------------- the edge's role


def test_the_edge_may_send_only_to_the_slots_backfill_queues(sam: Template) -> None:
    # Given three slots / When the edge role's SendMessage resources are evaluated
    stack = edge_stack(sam, THREE)
    (statement,) = [
        s
        for owner, s in policy_statements(sam)
        if owner == "EdgeOriginRequestRole" and "sqs:SendMessage" in str(s["Action"])
    ]
    arns = [stack.value(r) for r in statement["Resource"] if not stack.is_no_value(r)]
    # Then they are exactly the three regions' backfill queues
    assert arns == [
        f"arn:aws:sqs:{region}:123456789012:edgefill-backfill"
        for region in ("ap-southeast-1", "eu-central-1", "us-west-2")
    ]


@pytest.mark.parametrize(
    "resource",
    [
        "arn:aws:sqs:*:123456789012:edgefill-backfill",
        {"Fn::Sub": "arn:${AWS::Partition}:sqs:${Region1}:${AWS::AccountId}:${Name}-prewarm"},
        {"Fn::Sub": "arn:${AWS::Partition}:sqs:*:${AWS::AccountId}:${Name}-backfill"},
    ],
    ids=["any-region", "prewarm-queue", "wildcard-region"],
)
def test_the_edge_role_rule_catches_another_queue(sam: Template, resource: Any) -> None:
    broken = copy.deepcopy(sam)
    statement = props(broken, "EdgeOriginRequestRole")["Policies"][0]["PolicyDocument"][
        "Statement"
    ][0]
    statement["Resource"].append(resource)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        problems = edge_role_problems(broken, translate(broken))
    assert any("beyond SendMessage on the slots' backfill queues" in p for p in problems)


# ---------------------------------------------------------------- Rules


@pytest.mark.parametrize(
    ("parameters", "rule", "holds"),
    [
        pytest.param(THREE, "RegionsAreDistinct", True, id="three-distinct"),
        pytest.param(
            {"Region1": "eu-central-1", "Region2": "eu-central-1"},
            "RegionsAreDistinct",
            False,
            id="duplicate-1-2",
        ),
        pytest.param(
            {"Region1": "eu-central-1", "Region2": "us-west-2", "Region5": "us-west-2"},
            "RegionsAreDistinct",
            False,
            id="duplicate-2-5",
        ),
        pytest.param({"Region1": "eu-central-1"}, "RegionsAreDistinct", True, id="one"),
        pytest.param(THREE, "DefaultRegionIsASlot", True, id="default-is-slot-2"),
        pytest.param(
            {"Region1": "eu-central-1", "DefaultRegion": ""},
            "DefaultRegionIsASlot",
            True,
            id="default-empty",
        ),
        pytest.param(
            {"Region1": "eu-central-1", "Region2": "us-west-2", "DefaultRegion": "ap-south-1"},
            "DefaultRegionIsASlot",
            False,
            id="default-not-a-slot",
        ),
        pytest.param(
            {"Region1": "eu-central-1", "Region3Countries": "JP"},
            "Region3SlotIsUsed",
            False,
            id="countries-on-empty-slot",
        ),
        pytest.param(
            {"Region1": "eu-central-1", "Region4Bucket": "my-bucket"},
            "Region4SlotIsUsed",
            False,
            id="bucket-on-empty-slot",
        ),
        pytest.param(
            {"Region1": "eu-central-1", "Region2": "us-west-2", "Region2Countries": "US"},
            "Region2SlotIsUsed",
            True,
            id="countries-on-used-slot",
        ),
    ],
)
def test_rules_refuse_a_bad_slot_configuration(
    sam: Template, parameters: dict[str, str], rule: str, holds: bool
) -> None:
    assert rule_holds(sam, rule, parameters) is holds


def test_every_pair_of_slots_is_checked(sam: Template) -> None:
    for i in range(1, 6):
        for j in range(i + 1, 6):
            same = {f"Region{i}": "eu-central-1", f"Region{j}": "eu-central-1"}
            assert not rule_holds(sam, "RegionsAreDistinct", same), (i, j)


@pytest.mark.parametrize(
    ("name", "value", "accepted"),
    [
        ("Region1", "ap-southeast-1", True),
        ("Region1", "us-gov-west-1", True),
        ("Region1", "", False),  # Region1 is required
        ("Region1", "Singapore", False),
        ("Region2", "", True),
        ("Region2", "eu-central-1 ", False),
        ("Region1Countries", "SG,MY", True),
        ("Region1Countries", "", True),
        ("Region1Countries", "SG, MY", False),
        ("Region1Countries", "sg", False),
        ("Region1Countries", "SGP", False),
        ("DefaultRegion", "", True),
        ("Name", "edgefill", True),
        ("Name", "Edgefill", False),
        ("Name", "a" * 22, False),
    ],
)
def test_slot_parameters_refuse_malformed_values(
    sam: Template, name: str, value: str, accepted: bool
) -> None:
    pattern = sam["Parameters"][name]["AllowedPattern"]
    assert bool(re.fullmatch(pattern, value)) is accepted


# ---------------------------------------------------------------- the function, inline


def load_inliner() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "inline_function", ROOT / ".ci" / "inline_function.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_template_holds_the_functions_file_unchanged(sam: Template) -> None:
    # Given the function's code in the template and in its file / Then they are the same
    # (`make function` copies the file; edit the file, never the template)
    code = props(sam, "ViewerRequestFunction")["FunctionCode"]["Fn::Sub"][0]
    assert code == edge_routing.function_code(), "run `make function`"
    inliner = load_inliner()
    text = (ROOT / "template.yaml").read_text(encoding="utf-8")
    assert inliner.inlined(text, edge_routing.function_code()) == text


def test_the_copy_check_catches_an_edited_file() -> None:
    inliner = load_inliner()
    text = (ROOT / "template.yaml").read_text(encoding="utf-8")
    edited = edge_routing.function_code().replace("return request;", "return null;", 1)
    updated = inliner.inlined(text, edited)
    assert updated != text and "return null;" in updated
    with pytest.raises(SystemExit, match="trailing spaces"):
        inliner.inlined(text, edited + "var x = 1;  \n")


def test_the_functions_sub_fills_exactly_its_placeholders(sam: Template) -> None:
    _, variables = props(sam, "ViewerRequestFunction")["FunctionCode"]["Fn::Sub"]
    assert sorted(variables) == sorted(edge_routing.PLACEHOLDERS)
    assert variables["FailoverStatusCodes"] == ",".join(
        str(code) for code in edge_routing.FAILOVER_STATUS_CODES
    )


def test_the_deployed_routes_are_the_routes_output(sam: Template) -> None:
    # Given three slots / When CloudFormation would fill the function's placeholders
    stack = edge_stack(sam, THREE)
    _, variables = props(sam, "ViewerRequestFunction")["FunctionCode"]["Fn::Sub"]
    values = {name: stack.value(value) for name, value in variables.items()}
    # Then the routes are valid, name only slots, and are what the outputs say
    assert values["Routes"] == "ap-southeast-1:SG,MY;eu-central-1:DE,FR"
    assert edge_routing.parse_routes(values["Routes"], regions=stack.output("Regions").split(","))
    assert values["Routes"] == stack.output("Routes")
    assert values["DefaultRegion"] == stack.output("DefaultRegion") == "eu-central-1"
    assert stack.output("Regions") == "ap-southeast-1,eu-central-1,us-west-2"
    assert stack.output("RegionalStackName") == "edgefill-regional"
    # And the code the distribution runs is what shared.edge_routing renders
    rendered = edge_routing.render(
        edge_routing.function_code(),
        values["Routes"],
        values["DefaultRegion"],
        values["FailoverStatusCodes"],
    )
    assert "var ROUTES = 'ap-southeast-1:SG,MY;eu-central-1:DE,FR';" in rendered


def test_no_country_listed_leaves_no_routes_output(sam: Template) -> None:
    stack = edge_stack(sam, {"Region1": "eu-central-1", "Region2": "us-west-2"})
    with pytest.raises(KeyError):
        stack.output("Routes")
    assert stack.output("DefaultRegion") == "eu-central-1"


# ---------------------------------------------------------------- the stacks agree


@pytest.mark.parametrize("region", ["ap-southeast-1", "eu-central-1", "us-east-1"])
def test_each_regional_stack_is_named_as_the_edge_stack_addresses_it(
    sam: Template, regional: Template, region: str
) -> None:
    # Given the edge stack with the region as a slot, and the regional stack there
    parameters = {"FullOriginDomain": "origin.example.com", "Region1": region}
    edge = edge_stack(sam, parameters)
    local = ParameterValues(regional, {}, region, edge)
    config = distribution(sam, parameters)
    origins = {o["Id"]: o for o in config["Origins"]}
    headers = {
        h["HeaderName"]: h["HeaderValue"] for h in origins[f"full-{region}"]["OriginCustomHeaders"]
    }
    # Then the bucket the origin reads is the one the regional stack creates
    bucket = local.value(props(regional, "OriginBucket")["BucketName"])
    assert origins[f"bucket-{region}"]["DomainName"] == f"{bucket}.s3.{region}.amazonaws.com"
    # And the queue the edge sends to is the regional stack's backfill queue
    queue = local.value(props(regional, "BackfillQueue")["QueueName"])
    assert headers["x-edgefill-queue"] == f"https://sqs.{region}.amazonaws.com/123456789012/{queue}"
    assert {
        local.value(props(regional, q)["QueueName"])
        for q in ("BackfillQueue", "BackfillDLQ", "PrewarmQueue", "PrewarmDLQ")
    } == {"edgefill-backfill", "edgefill-backfill-dlq", "edgefill-prewarm", "edgefill-prewarm-dlq"}
    # And its stack name is the one the edge stack names
    assert edge.output("RegionalStackName") == "edgefill-regional"


def test_the_regional_bucket_policy_names_the_edge_stacks_distribution(
    sam: Template, regional: Template
) -> None:
    # Given a deployment with a key prefix
    stack = deployment(sam, regional, {"FullOriginDomain": "o.example.com", "KeyPrefix": "m/26"})
    statements = props(regional, "OriginBucketPolicy")["PolicyDocument"]["Statement"]
    (allow,) = [s for s in statements if s["Effect"] == "Allow"]
    # Then only the edge stack's distribution reads, and only under the prefix
    source = allow["Condition"]["StringEquals"]["AWS:SourceArn"]
    assert is_edge_output(source, "DistributionArn")
    assert stack.value(source) == "arn:aws:cloudfront::123456789012:distribution/E1EDGEFILLTEST"
    assert stack.value(allow["Resource"]) == "arn:aws:s3:::edgefill-originbucket-1a2b3c/m/26/*"
    assert allow["Principal"] == {"Service": "cloudfront.amazonaws.com"}


@pytest.mark.parametrize(
    ("parameters", "written", "told"),
    [
        ({}, True, False),
        ({"ExistingBucketName": "my-bucket"}, False, True),
        ({"ExistingBucketName": "my-bucket", "ExistingBucketPolicy": "replace"}, True, False),
    ],
)
def test_an_existing_buckets_policy_is_replaced_only_when_asked(
    regional: Template, parameters: dict[str, str], written: bool, told: bool
) -> None:
    stack = ParameterValues(regional, parameters, "eu-central-1")
    assert stack.condition(regional["Resources"]["OriginBucketPolicy"]["Condition"]) is written
    assert stack.condition(regional["Outputs"]["ExistingBucketPolicyNeeded"]["Condition"]) is told
    if written:
        bucket = stack.value(props(regional, "OriginBucketPolicy")["Bucket"])
        assert bucket == parameters.get("ExistingBucketName", "edgefill-originbucket-1a2b3c")


def test_the_regional_stack_reads_only_the_edge_outputs_it_needs(
    sam: Template, regional: Template
) -> None:
    # Every Fn::GetStackOutput names the EdgeStackName stack in us-east-1 and an output
    # the edge stack declares
    text = (ROOT / "regional.yaml").read_text(encoding="utf-8")
    read = set(re.findall(r"OutputName: (\w+), Region: us-east-1\}", text))
    assert read and read <= set(sam["Outputs"])
    assert text.count('{"Fn::GetStackOutput": {StackName: !Ref EdgeStackName, OutputName: ') == (
        text.count('"Fn::GetStackOutput":')
    )
    for name in read:
        assert "Condition" not in sam["Outputs"][name], f"{name} may be absent"


def test_the_regional_stack_names_no_edge_resource(regional: Template) -> None:
    # The distribution, its function and its policies are the edge stack's alone
    kinds = {r["Type"] for r in regional["Resources"].values()}
    assert not {k for k in kinds if k.startswith("AWS::CloudFront::")}
    assert "EdgeOriginRequestFunction" not in regional["Resources"]


def test_samconfig_has_one_section_per_stack() -> None:
    import tomllib

    config = tomllib.loads((ROOT / "samconfig.toml").read_text(encoding="utf-8"))
    assert config["edge"]["global"]["parameters"]["region"] == "us-east-1"
    assert config["edge"]["build"]["parameters"]["template_file"] == "template.yaml"
    assert config["regional"]["build"]["parameters"]["template_file"] == "regional.yaml"
    assert "region" not in config["regional"]["global"]["parameters"]  # given with --region
    assert config["regional"]["global"]["parameters"]["stack_name"] == "edgefill-regional"
    built = {
        env: Path(config[env]["build"]["parameters"]["build_dir"]) for env in ("edge", "regional")
    }
    assert built["edge"] != built["regional"]
    for env, directory in built.items():
        deployed = config[env]["deploy"]["parameters"]["template_file"]
        assert Path(deployed) == directory / "template.yaml"
