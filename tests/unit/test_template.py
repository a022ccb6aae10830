"""The two stacks, template.yaml (edge) and regional.yaml: lint-clean as written and as
translated by SAM, and the rules lint cannot see.

The SAM template is translated offline with aws-sam-translator (no AWS call: a stub
stands in for the managed-policy lookup and each CodeUri is replaced by an S3 URI, as
``sam package`` would). Each structural rule below is a function returning the problems
it finds, so the mutation tests can show that every rule does catch what it guards.
"""

from __future__ import annotations

import ast
import copy
import json
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from shared.config import BackfillConfig, PrewarmConfig

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"  # the edge stack (us-east-1)
REGIONAL = ROOT / "regional.yaml"  # the regional stack, once per bucket region
# The regions cfn-lint checks both stacks for (issue 20's "Done when").
LINT_REGIONS = ("us-east-1", "ap-southeast-1", "eu-central-1")
EDGE_FUNCTIONS = {"EdgeOriginRequestFunction": "edge_origin_request.app.handler"}
REGIONAL_FUNCTIONS = {
    "BackfillWorkerFunction": "backfill_worker.app.handler",
    "PrewarmWorkerFunction": "prewarm_worker.app.handler",
}
FUNCTIONS = {**EDGE_FUNCTIONS, **REGIONAL_FUNCTIONS}
# Queue -> (its DLQ, the function consuming it).
QUEUES = {
    "BackfillQueue": ("BackfillDLQ", "BackfillWorkerFunction"),
    "PrewarmQueue": ("PrewarmDLQ", "PrewarmWorkerFunction"),
}
FAILOVER_CODES = [403, 404, 500, 502, 503, 504]
# The outputs the CLI, the lab and doctor read (docs/CONTRACTS.md "Stacks"). Routes is
# conditional: absent when no slot lists a country.
EDGE_OUTPUTS = {
    "DistributionId",
    "DistributionArn",
    "DistributionDomain",
    "ViewerHost",
    "Regions",
    "DefaultRegion",
    "Routes",
    "RegionalStackName",
    "EdgeFunctionVersionArn",
    "DashboardUrl",
}
REGIONAL_OUTPUTS = {
    "Region",
    "BucketName",
    "BucketRegion",
    "BackfillQueueUrl",
    "BackfillDLQUrl",
    "PrewarmQueueUrl",
    "PrewarmDLQUrl",
    "EdgeStackName",
    "DashboardUrl",
}
# The edge stack's outputs each regional stack reads with Fn::GetStackOutput.
EDGE_OUTPUTS_READ = {
    "DistributionId",
    "DistributionArn",
    "DistributionDomain",
    "ViewerHost",
    "PrewarmAllowedHosts",
    "FullOriginUrl",
    "KeyPrefixPath",
    "QueryStrings",
}
# Light modules of shared/ the edge artifact carries (Makefile EDGE_SHARED).
EDGE_SHARED = {"messages", "keys", "queues", "redact"}
Template = dict[str, Any]


class ManagedPoliciesOffline:
    """Stands in for samtranslator's IAM lookup: the template names no managed policy."""

    def load(self) -> dict[str, str]:
        return {}


# cfn-lint and the SAM translator are imported where they are used: importing them takes
# about 1.5 s (sympy, networkx...), and every xdist worker collects this module.


def load_sam(path: Path = TEMPLATE) -> Template:
    from cfnlint.decode import decode_str
    from cfnlint.decode.utils import convert_dict

    template, matches = decode_str(path.read_text(encoding="utf-8"))
    assert not matches, [str(m) for m in matches]
    plain: Template = json.loads(json.dumps(convert_dict(template)))
    return plain


def translate(sam: Template) -> Template:
    from samtranslator.translator.transform import transform

    packaged = copy.deepcopy(sam)
    for name, resource in packaged["Resources"].items():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = f"s3://edgefill-artifacts/{name}.zip"
    translated: Template = transform(packaged, {}, ManagedPoliciesOffline())
    return translated


@pytest.fixture(scope="module")
def sam() -> Template:
    return load_sam()


@pytest.fixture(scope="module")
def cfn(sam: Template) -> Template:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        return translate(sam)


@pytest.fixture(scope="module")
def regional() -> Template:
    return load_sam(REGIONAL)


@pytest.fixture(scope="module")
def regional_cfn(regional: Template) -> Template:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_DEFAULT_REGION", "ap-southeast-1")
        return translate(regional)


def lint_errors(text: str, regions: Sequence[str] = ("us-east-1",)) -> list[str]:
    """Errors and warnings cfn-lint finds for ``regions`` (informational notes allowed)."""
    from cfnlint.api import lint
    from cfnlint.config import ManualArgs

    matches = lint(text, config=ManualArgs(regions=list(regions)))
    return [f"{m.rule.id} line {m.linenumber}: {m.message}" for m in matches]


# ---------------------------------------------------------------- template walking


def resources(template: Template, kind: str) -> dict[str, Any]:
    return {n: r for n, r in template["Resources"].items() if r["Type"] == kind}


def props(template: Template, name: str) -> dict[str, Any]:
    properties: dict[str, Any] = template["Resources"][name].get("Properties", {})
    return properties


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def refers_to(value: Any, name: str) -> bool:
    """True when ``value`` is a Ref or GetAtt of resource ``name`` (in any If branch)."""
    if isinstance(value, dict):
        if value.get("Ref") == name:
            return True
        get_att = value.get("Fn::GetAtt")
        if isinstance(get_att, list) and get_att[0] == name:
            return True
        if isinstance(get_att, str) and get_att.split(".")[0] == name:
            return True
        if "Fn::If" in value:
            return any(refers_to(branch, name) for branch in value["Fn::If"][1:])
    return False


def rendered(value: Any) -> Iterator[str]:
    """Every string ``value`` may take, intrinsics written as ${...} (both If branches)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict) and "Ref" in value:
        yield "${" + value["Ref"] + "}"
    elif isinstance(value, dict) and "Fn::GetAtt" in value:
        target = value["Fn::GetAtt"]
        yield "${" + (".".join(target) if isinstance(target, list) else target) + "}"
    elif isinstance(value, dict) and "Fn::If" in value:
        for branch in value["Fn::If"][1:]:
            yield from rendered(branch)
    elif isinstance(value, dict) and "Fn::GetStackOutput" in value:
        name = str(value["Fn::GetStackOutput"].get("OutputName"))
        # KeyPrefixPath begins and ends with "/" ("/" alone for no prefix): an ARN built
        # on it stays inside the bucket (test_the_key_prefix_path_is_slash_delimited).
        yield f"/${{edge:{name}}}/" if name == "KeyPrefixPath" else f"${{edge:{name}}}"
    elif isinstance(value, dict) and "Fn::Sub" in value:
        sub = value["Fn::Sub"]
        text, variables = (sub, {}) if isinstance(sub, str) else (sub[0], sub[1])
        variants = [text]
        for name, replacement in variables.items():
            variants = [
                v.replace("${" + name + "}", r) for v in variants for r in rendered(replacement)
            ]
        yield from variants
    elif isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        yield separator.join(next(iter(rendered(part)), "") for part in parts)
    else:
        yield json.dumps(value)


def policy_statements(template: Template) -> Iterator[tuple[str, dict[str, Any]]]:
    """(owner, statement) for every IAM role inline policy and every bucket/queue policy."""
    for name, role in resources(template, "AWS::IAM::Role").items():
        for policy in role["Properties"].get("Policies", []):
            for statement in as_list(policy["PolicyDocument"]["Statement"]):
                yield from ((name, branch) for branch in _branches(statement))
    for kind in ("AWS::S3::BucketPolicy", "AWS::SQS::QueuePolicy"):
        for name, resource in resources(template, kind).items():
            for statement in as_list(resource["Properties"]["PolicyDocument"]["Statement"]):
                yield from ((name, branch) for branch in _branches(statement))


def _branches(statement: Any) -> list[dict[str, Any]]:
    """A statement, or the statements of both branches of an ``Fn::If`` (not NoValue)."""
    if isinstance(statement, dict) and "Fn::If" in statement:
        return [b for b in statement["Fn::If"][1:] if isinstance(b, dict) and "Effect" in b]
    return [statement]


# ---------------------------------------------------------------- rules lint cannot see


def edge_problems(sam: Template, cfn: Template) -> list[str]:
    problems = []
    edge = props(sam, "EdgeOriginRequestFunction")
    if "Environment" in edge or "Environment" in sam.get("Globals", {}).get("Function", {}):
        problems.append("edge function has Environment (Lambda@Edge allows none)")
    if "Environment" in props(cfn, "EdgeOriginRequestFunction"):
        problems.append("translated edge function has Environment")
    if not edge.get("AutoPublishAlias"):
        problems.append("edge function lacks AutoPublishAlias (Lambda@Edge needs a version)")
    for key in ("Layers", "DeadLetterQueue", "VpcConfig", "ReservedConcurrentExecutions"):
        if key in edge:
            problems.append(f"edge function sets {key}, which Lambda@Edge rejects")
    if not 0 < edge.get("Timeout", 3) <= 30:
        problems.append("edge origin-request timeout must be at most 30 s")
    if edge.get("MemorySize", 128) != 512:  # docs/EDGE.md "Memory": the cold path
        problems.append("edge function should use 512 MB")
    return problems + edge_role_problems(sam, cfn)


def edge_role_problems(sam: Template, cfn: Template) -> list[str]:
    problems = []
    edge = props(sam, "EdgeOriginRequestFunction")
    trust = props(cfn, "EdgeOriginRequestRole")["AssumeRolePolicyDocument"]["Statement"]
    services = {s for st in trust for s in as_list(st["Principal"].get("Service", []))}
    for service in ("lambda.amazonaws.com", "edgelambda.amazonaws.com"):
        if service not in services:
            problems.append(f"edge role is not trusted by {service}")
    if not refers_to(edge.get("Role"), "EdgeOriginRequestRole"):
        problems.append("edge function does not use EdgeOriginRequestRole")
    for owner, statement in policy_statements(cfn):
        if owner != "EdgeOriginRequestRole" or statement["Effect"] != "Allow":
            continue
        for action in as_list(statement["Action"]):
            if action.startswith("logs:"):
                continue
            if action != "sqs:SendMessage" or not only_slot_backfill_queues(statement["Resource"]):
                problems.append(
                    f"edge role allows {action} beyond SendMessage on the slots' backfill queues"
                )
    return problems


# The backfill queue of slot N's region, by its deterministic name (regional.yaml).
_SLOT_QUEUE_ARN = re.compile(
    r"arn:\$\{AWS::Partition\}:sqs:\$\{Region[1-5]\}:\$\{AWS::AccountId\}:\$\{Name\}-backfill"
)


def slot_items(items: list[Any]) -> Iterator[tuple[str | None, Any]]:
    """(condition or None, item) for a list whose items may be ``!If [C, item, NoValue]``."""
    for item in items:
        if isinstance(item, dict) and set(item) == {"Fn::If"}:
            condition, yes, no = item["Fn::If"]
            assert no == {"Ref": "AWS::NoValue"}, f"an If whose else is not NoValue: {item}"
            yield condition, yes
        else:
            yield None, item


def only_slot_backfill_queues(resource: Any) -> bool:
    """True when every resource is a used slot's backfill queue ARN, and Region1's is one."""
    items = list(slot_items(as_list(resource)))
    texts = [(c, t) for c, item in items for t in rendered(item)]
    return (
        bool(texts)
        and all(_SLOT_QUEUE_ARN.fullmatch(t) for _, t in texts)
        and any(c is None and "${Region1}" in t for c, t in texts)
        and all(c == f"HasRegion{t.split('${Region')[1][0]}" for c, t in texts if c is not None)
    )


def association_problems(sam: Template, cfn: Template) -> list[str]:
    problems = []
    config = props(sam, "Distribution")["DistributionConfig"]
    behaviors = [config["DefaultCacheBehavior"], *config.get("CacheBehaviors", [])]
    for behavior in behaviors:
        associations = behavior.get("LambdaFunctionAssociations", [])
        origin_request = [a for a in associations if a["EventType"] == "origin-request"]
        if len(origin_request) != 1:
            problems.append("a cache behavior lacks exactly one origin-request association")
            continue
        if origin_request[0]["LambdaFunctionARN"] != {"Ref": "EdgeOriginRequestFunction.Version"}:
            problems.append(
                "origin-request association must be !Ref EdgeOriginRequestFunction.Version"
            )
    translated = props(cfn, "Distribution")["DistributionConfig"]["DefaultCacheBehavior"]
    for association in translated.get("LambdaFunctionAssociations", []):
        version = association["LambdaFunctionARN"].get("Ref", "")
        resource = cfn["Resources"].get(version, {})
        if resource.get("Type") != "AWS::Lambda::Version" or not refers_to(
            resource["Properties"]["FunctionName"], "EdgeOriginRequestFunction"
        ):
            problems.append("translated association is not a version of the edge function")
    return problems


def function_problems(
    sam: Template, makefile: str, functions: dict[str, str] = FUNCTIONS
) -> list[str]:
    problems = []
    for name, handler in functions.items():
        function = props(sam, name)
        if function.get("Handler") != handler:
            problems.append(f"{name} handler must be {handler}")
        if function.get("Runtime") != "python3.13":
            problems.append(f"{name} must run python3.13")
        if function.get("Architectures") != ["x86_64"]:
            problems.append(f"{name} must be x86_64 (Lambda@Edge has no arm64)")
        if sam["Resources"][name].get("Metadata", {}).get("BuildMethod") != "makefile":
            problems.append(f"{name} must build with BuildMethod: makefile")
        if f"\nbuild-{name}:" not in makefile:
            problems.append(f"Makefile has no build-{name} target")
    return problems


def queue_problems(sam: Template, cfn: Template) -> list[str]:
    problems = []
    for queue, (dlq, consumer) in QUEUES.items():
        properties = props(sam, queue)
        redrive = properties.get("RedrivePolicy", {})
        if not refers_to(redrive.get("deadLetterTargetArn"), dlq):
            problems.append(f"{queue} does not redrive to {dlq}")
        if int(redrive.get("maxReceiveCount", 0)) < 5:
            problems.append(f"{queue} maxReceiveCount must be at least 5")
        timeout = int(props(sam, consumer).get("Timeout", 3))
        visibility = int(properties.get("VisibilityTimeout", 30))
        if visibility < 6 * timeout:
            problems.append(
                f"{queue} visibility {visibility} s < 6 x {consumer} timeout {timeout} s"
            )
        for name in (queue, dlq):
            if props(sam, name).get("SqsManagedSseEnabled") is not True and not props(
                sam, name
            ).get("KmsMasterKeyId"):
                problems.append(f"{name} is not encrypted")
        mappings = [
            m["Properties"]
            for m in resources(cfn, "AWS::Lambda::EventSourceMapping").values()
            if refers_to(m["Properties"]["EventSourceArn"], queue)
        ]
        if len(mappings) != 1 or not refers_to(mappings[0]["FunctionName"], consumer):
            problems.append(f"{queue} must feed {consumer} through one event source mapping")
            continue
        mapping = mappings[0]
        if mapping.get("FunctionResponseTypes") != ["ReportBatchItemFailures"]:
            problems.append(f"{queue} mapping lacks ReportBatchItemFailures")
        maximum = mapping.get("ScalingConfig", {}).get("MaximumConcurrency")
        parameter = sam["Parameters"].get(
            maximum.get("Ref", "") if isinstance(maximum, dict) else ""
        )
        if not parameter or int(parameter.get("MinValue", 0)) < 2:
            problems.append(f"{queue} MaximumConcurrency must be a parameter with MinValue >= 2")
        alarms = [
            a["Properties"]
            for a in resources(sam, "AWS::CloudWatch::Alarm").values()
            if any(refers_to(d["Value"], dlq) for d in a["Properties"].get("Dimensions", []))
        ]
        if not any(
            a["MetricName"] == "ApproximateNumberOfMessagesVisible"
            and a["ComparisonOperator"] == "GreaterThanThreshold"
            and float(a["Threshold"]) == 0
            for a in alarms
        ):
            problems.append(f"{dlq} has no depth alarm (> 0 visible messages)")
    return problems


def iam_problems(cfn: Template) -> list[str]:
    """No Action "*", no wildcard resource on S3/SQS actions, no managed policy."""
    problems = []
    for name, role in resources(cfn, "AWS::IAM::Role").items():
        if role["Properties"].get("ManagedPolicyArns"):
            problems.append(f"{name} attaches managed policies (unscoped resources)")
    for owner, statement in policy_statements(cfn):
        actions = as_list(statement.get("Action", []))
        if "*" in actions:
            problems.append(f"{owner} has a statement with Action '*'")
        if statement.get("Effect") != "Allow":
            continue
        scoped = [a for a in actions if a.split(":")[0] in ("s3", "sqs")]
        if not scoped:
            continue
        for resource in as_list(statement.get("Resource", "*")):
            for text in rendered(resource):
                head = text.split("/", 1)[0]
                if text == "*" or "*" in head:
                    problems.append(f"{owner} allows {scoped} on wildcard resource {text!r}")
    return problems


def region_problems(sam: Template) -> list[str]:
    """Lambda@Edge functions can only be created in us-east-1: the template must say so."""
    for rule in sam.get("Rules", {}).values():
        if "RuleCondition" in rule:
            continue
        for assertion in rule["Assertions"]:
            if assertion["Assert"] == {"Fn::Equals": [{"Ref": "AWS::Region"}, "us-east-1"]}:
                return []
    return ["no unconditional rule keeps the stack in us-east-1"]


def bucket_problems(sam: Template) -> list[str]:
    problems = []
    bucket = props(sam, "OriginBucket")
    ownership = bucket.get("OwnershipControls", {}).get("Rules", [{}])[0]
    if ownership.get("ObjectOwnership") != "BucketOwnerEnforced":
        problems.append("bucket must disable ACLs (BucketOwnerEnforced)")
    block = bucket.get("PublicAccessBlockConfiguration", {})
    if not all(
        block.get(k) is True
        for k in (
            "BlockPublicAcls",
            "BlockPublicPolicy",
            "IgnorePublicAcls",
            "RestrictPublicBuckets",
        )
    ):
        problems.append("bucket does not block all public access")
    if not bucket.get("BucketEncryption"):
        problems.append("bucket has no default encryption")
    rules = bucket.get("LifecycleConfiguration", {}).get("Rules", [])
    if not any(
        r.get("AbortIncompleteMultipartUpload", {}).get("DaysAfterInitiation") == 1 for r in rules
    ):
        problems.append("bucket lifecycle does not abort incomplete multipart uploads after 1 day")
    if not any(r.get("Prefix") == "_edgefill/leases/" and r.get("ExpirationInDays") for r in rules):
        problems.append("bucket lifecycle does not expire _edgefill/leases/")
    statements = [s for owner, s in policy_statements(sam) if owner == "OriginBucketPolicy"]
    tls = [
        s
        for s in statements
        if s["Effect"] == "Deny"
        and s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"
    ]
    if not tls:
        problems.append("bucket policy does not deny plain HTTP")
    cloudfront = [
        s for s in statements if s.get("Principal") == {"Service": "cloudfront.amazonaws.com"}
    ]
    if not any(
        s["Effect"] == "Deny"
        and "s3:GetObject" in as_list(s["Action"])
        and any(t.endswith("/_edgefill/*") for t in rendered(s["Resource"]))
        for s in cloudfront
    ):
        problems.append("bucket policy does not deny CloudFront reads of _edgefill/*")
    allows = [s for s in cloudfront if s["Effect"] == "Allow"]
    if not allows or not all(
        is_edge_output(
            s.get("Condition", {}).get("StringEquals", {}).get("AWS:SourceArn"), "DistributionArn"
        )
        for s in allows
    ):
        problems.append("OAC read is not scoped by AWS:SourceArn to the distribution")
    return problems


def is_edge_output(value: Any, output: str) -> bool:
    """True when ``value`` is the edge stack's ``output``, read from us-east-1 with
    Fn::GetStackOutput on the EdgeStackName parameter."""
    read = value.get("Fn::GetStackOutput") if isinstance(value, dict) else None
    return read == {
        "StackName": {"Ref": "EdgeStackName"},
        "OutputName": output,
        "Region": "us-east-1",
    }


def distribution_problems(sam: Template) -> list[str]:
    problems = []
    config = props(sam, "Distribution")["DistributionConfig"]
    origins = {next(rendered(o["Id"])): o for _, o in slot_items(config["Origins"])}
    groups = config.get("OriginGroups", {}).get("Items", [])
    if len(groups) != 1:
        return ["distribution must have one origin group"]
    group = groups[0]
    if group["FailoverCriteria"]["StatusCodes"]["Items"] != FAILOVER_CODES:
        problems.append(f"origin group must fail over on {FAILOVER_CODES}")
    members = [next(rendered(m["OriginId"])) for m in group["Members"]["Items"]]
    if members != ["bucket-${Region1}", "full-${Region1}"]:
        problems.append(f"origin group must be bucket-<Region1>, full-<Region1>, not {members}")
        return problems
    primary, secondary = (origins[m] for m in members)
    if "S3OriginConfig" not in primary or not refers_to(
        primary.get("OriginAccessControlId"), "OriginAccessControl"
    ):
        problems.append("primary origin must be the bucket through OAC")
    headers = {h["HeaderName"]: h["HeaderValue"] for h in secondary.get("OriginCustomHeaders", [])}
    if list(rendered(headers.get("x-edgefill-queue", ""))) != [
        "https://sqs.${Region1}.${AWS::URLSuffix}/${AWS::AccountId}/${Name}-backfill"
    ]:
        problems.append(
            "secondary origin must carry x-edgefill-queue: <Region1's backfill queue URL>"
        )
    if "x-edgefill-queue" in {h["HeaderName"] for h in primary.get("OriginCustomHeaders", [])}:
        problems.append("the bucket origin must not carry x-edgefill-queue")
    if (
        next(rendered(config["DefaultCacheBehavior"].get("TargetOriginId", "")))
        != "group-${Region1}"
    ):
        problems.append("default cache behavior must target the origin group")
    cache = props(sam, "CachePolicy")["CachePolicyConfig"][
        "ParametersInCacheKeyAndForwardedToOrigin"
    ]
    if not (cache.get("EnableAcceptEncodingGzip") and cache.get("EnableAcceptEncodingBrotli")):
        problems.append("cache policy must enable gzip and Brotli")
    return problems


def output_problems(sam: Template) -> list[str]:
    outputs = sam.get("Outputs", {})
    problems = [f"missing output {name}" for name in sorted(EDGE_OUTPUTS - set(outputs))]
    attach = outputs.get("AttachToExistingDistribution", {})
    text = " ".join(rendered(attach.get("Value", "")))
    if attach.get("Condition") != "AttachToExisting":
        problems.append("AttachToExistingDistribution must be shown when the toggle is off")
    for needle in (
        "x-edgefill-queue",
        "x-edgefill-region",
        "-backfill",
        "origin-request",
        "${EdgeOriginRequestFunction.Version}",
        "403,404,500,502,503,504",
        "CloudFront-Viewer-Country",
    ):
        if needle not in text:
            problems.append(f"AttachToExistingDistribution does not state {needle}")
    if outputs.get("EdgeFunctionVersionArn", {}).get("Value") != {
        "Ref": "EdgeOriginRequestFunction.Version"
    }:
        problems.append("EdgeFunctionVersionArn must be the edge function's version")
    return problems


def regional_output_problems(regional: Template) -> list[str]:
    outputs = regional.get("Outputs", {})
    return [f"missing output {name}" for name in sorted(REGIONAL_OUTPUTS - set(outputs))]


EDGE_RULES: list[Callable[[Template, Template], list[str]]] = [
    edge_problems,
    association_problems,
    lambda sam, cfn: function_problems(
        sam, (ROOT / "Makefile").read_text(encoding="utf-8"), EDGE_FUNCTIONS
    ),
    lambda sam, cfn: iam_problems(cfn),
    lambda sam, cfn: distribution_problems(sam),
    lambda sam, cfn: output_problems(sam),
    lambda sam, cfn: region_problems(sam),
]
REGIONAL_RULES: list[Callable[[Template, Template], list[str]]] = [
    lambda sam, cfn: function_problems(
        sam, (ROOT / "Makefile").read_text(encoding="utf-8"), REGIONAL_FUNCTIONS
    ),
    queue_problems,
    lambda sam, cfn: iam_problems(cfn),
    lambda sam, cfn: bucket_problems(sam),
    lambda sam, cfn: regional_output_problems(sam),
]


def all_problems(template: Template) -> list[str]:
    """Every problem the rules of ``template``'s stack (edge or regional) find in it."""
    rules = EDGE_RULES if "EdgeOriginRequestFunction" in template["Resources"] else REGIONAL_RULES
    cfn = translate(template)
    return [problem for rule in rules for problem in rule(template, cfn)]


# ---------------------------------------------------------------- the tests


@pytest.mark.parametrize("path", [TEMPLATE, REGIONAL], ids=["edge", "regional"])
def test_sam_templates_are_lint_clean_in_each_region(path: Path) -> None:
    # Given each stack's SAM template as written / When cfn-lint checks it for us-east-1,
    # ap-southeast-1 and eu-central-1 / Then it finds no error and no warning
    assert lint_errors(path.read_text(encoding="utf-8"), LINT_REGIONS) == []


def test_translated_templates_are_lint_clean(cfn: Template, regional_cfn: Template) -> None:
    # Given the CloudFormation templates SAM produces / When cfn-lint checks them
    # Then it finds no error and no warning
    assert lint_errors(json.dumps(cfn, indent=1)) == []
    assert lint_errors(json.dumps(regional_cfn, indent=1), LINT_REGIONS) == []


def test_templates_keep_every_rule_lint_cannot_see(sam: Template, regional: Template) -> None:
    # Given each template / When each structural rule inspects it / Then none finds a problem
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        assert all_problems(sam) == []
        assert all_problems(regional) == []


def _set(path: str, value: Any) -> Callable[[Template], None]:
    def mutate(template: Template) -> None:
        *parents, last = path.split(".")
        node: Any = template
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        if value is KeyError:
            del node[last]
        else:
            node[last] = value

    return mutate


def _add_wildcard_statement(template: Template) -> None:
    policy = props(template, "BackfillWorkerRole")["Policies"][0]["PolicyDocument"]
    policy["Statement"].append(
        {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "arn:aws:s3:::*/*"}
    )


def _let_edge_read_the_queue(template: Template) -> None:
    policy = props(template, "EdgeOriginRequestRole")["Policies"][0]["PolicyDocument"]
    policy["Statement"][0]["Action"] = ["sqs:SendMessage", "sqs:ReceiveMessage"]


def _add_star_action(template: Template) -> None:
    policy = props(template, "PrewarmWorkerRole")["Policies"][0]["PolicyDocument"]
    policy["Statement"].append({"Effect": "Allow", "Action": "*", "Resource": "*"})


_EDGE = "Resources.EdgeOriginRequestFunction.Properties"
_DIST = "Resources.Distribution.Properties.DistributionConfig"
_POLICY = "Resources.OriginBucketPolicy.Properties.PolicyDocument.Statement"
_EDGE_TRUST = (
    "Resources.EdgeOriginRequestRole.Properties.AssumeRolePolicyDocument.Statement.0.Principal"
)


@pytest.mark.parametrize(
    ("stack", "mutation", "expected"),
    [
        ("edge", _set(f"{_EDGE}.Environment", {"Variables": {"A": "b"}}), "has Environment"),
        ("edge", _set(f"{_EDGE}.Architectures", ["arm64"]), "must be x86_64"),
        ("edge", _set(f"{_EDGE}.Timeout", 60), "at most 30 s"),
        ("edge", _set(f"{_EDGE}.AutoPublishAlias", KeyError), "AutoPublishAlias"),
        (
            "edge",
            _set(f"{_EDGE_TRUST}.Service", "lambda.amazonaws.com"),
            "edgelambda.amazonaws.com",
        ),
        (
            "edge",
            _set(
                f"{_DIST}.DefaultCacheBehavior.LambdaFunctionAssociations.0.LambdaFunctionARN",
                {"Fn::GetAtt": ["EdgeOriginRequestFunction", "Arn"]},
            ),
            "EdgeOriginRequestFunction.Version",
        ),
        (
            "edge",
            _set(
                f"{_DIST}.DefaultCacheBehavior.LambdaFunctionAssociations.0.EventType",
                "viewer-request",
            ),
            "origin-request association",
        ),
        (
            "regional",
            _set("Resources.BackfillQueue.Properties.RedrivePolicy.maxReceiveCount", 3),
            "at least 5",
        ),
        ("regional", _set("Resources.PrewarmQueue.Properties.VisibilityTimeout", 900), "6 x"),
        ("regional", _set("Resources.BackfillWorkerFunction.Properties.Timeout", 901), "6 x"),
        (
            "regional",
            _set(
                "Resources.BackfillWorkerFunction.Properties.Events.BackfillMessages.Properties"
                ".FunctionResponseTypes",
                KeyError,
            ),
            "ReportBatchItemFailures",
        ),
        (
            "regional",
            _set(
                "Resources.PrewarmWorkerFunction.Properties.Events.PrewarmMessages.Properties"
                ".ScalingConfig",
                KeyError,
            ),
            "MaximumConcurrency",
        ),
        (
            "regional",
            _set("Resources.PrewarmDLQ.Properties.SqsManagedSseEnabled", False),
            "not encrypted",
        ),
        ("regional", _add_wildcard_statement, "wildcard resource"),
        ("edge", _let_edge_read_the_queue, "sqs:ReceiveMessage beyond SendMessage"),
        ("regional", _add_star_action, "Action '*'"),
        (
            "regional",
            _set(
                "Resources.OriginBucketPolicy.Properties.PolicyDocument.Statement.1.Effect", "Allow"
            ),
            "_edgefill/*",
        ),
        (
            "regional",
            _set(
                "Resources.OriginBucket.Properties.LifecycleConfiguration.Rules.0"
                ".AbortIncompleteMultipartUpload",
                KeyError,
            ),
            "multipart",
        ),
        (
            "edge",
            _set(f"{_DIST}.OriginGroups.Items.0.FailoverCriteria.StatusCodes.Items", [403, 404]),
            "fail over on",
        ),
        ("edge", _set(f"{_DIST}.Origins.1.OriginCustomHeaders", []), "x-edgefill-queue"),
        (
            "edge",
            _set(
                "Resources.CachePolicy.Properties.CachePolicyConfig"
                ".ParametersInCacheKeyAndForwardedToOrigin.EnableAcceptEncodingBrotli",
                False,
            ),
            "gzip and Brotli",
        ),
        ("regional", _set("Outputs.BackfillDLQUrl", KeyError), "missing output BackfillDLQUrl"),
        ("regional", _set("Resources.PrewarmWorkerFunction.Metadata", {}), "BuildMethod"),
        ("edge", _set("Rules.DeployInUsEast1.Assertions", []), "us-east-1"),
        ("regional", _set(f"{_POLICY}.0.Condition", KeyError), "plain HTTP"),
        ("regional", _set(f"{_POLICY}.2.Condition", KeyError), "AWS:SourceArn"),
        (
            "regional",
            _set(
                "Resources.OriginBucket.Properties.OwnershipControls.Rules.0.ObjectOwnership",
                "ObjectWriter",
            ),
            "BucketOwnerEnforced",
        ),
        (
            "regional",
            _set(
                "Resources.OriginBucket.Properties.PublicAccessBlockConfiguration"
                ".RestrictPublicBuckets",
                False,
            ),
            "public access",
        ),
    ],
)
def test_each_rule_catches_what_it_guards(
    sam: Template,
    regional: Template,
    stack: str,
    mutation: Callable[[Template], None],
    expected: str,
) -> None:
    # Given the stack's template with one rule broken
    broken = copy.deepcopy(sam if stack == "edge" else regional)
    mutation(broken)
    # When the structural rules inspect it
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        problems = all_problems(broken)
    # Then the problem is named
    assert any(expected in problem for problem in problems), problems


# ---------------------------------------------------------------- worker configuration


class ParameterValues:
    """Evaluates the few intrinsics the stacks use, for given parameters. A regional stack
    reads the edge stack's outputs from ``edge`` (an evaluated edge stack)."""

    def __init__(
        self,
        template: Template,
        overrides: dict[str, str],
        region: str = "us-east-1",
        edge: ParameterValues | None = None,
    ) -> None:
        self.template = template
        self.edge = edge
        self.region = region
        self.values = {
            name: str(spec.get("Default", "")) for name, spec in template["Parameters"].items()
        }
        self.values.update(overrides)
        self.values.update(
            {
                "AWS::Region": region,
                "AWS::AccountId": "123456789012",
                "AWS::Partition": "aws",
                "AWS::URLSuffix": "amazonaws.com",
                "AWS::StackName": "edgefill" if edge is None else "edgefill-regional",
            }
        )

    def output(self, name: str) -> str:
        """The value of output ``name`` (``KeyError`` when its condition leaves it out)."""
        output = self.template["Outputs"][name]
        if "Condition" in output and not self.condition(output["Condition"]):
            raise KeyError(name)
        return self.value(output["Value"])

    def condition(self, name: str) -> bool:
        return self.truth(self.template["Conditions"][name])

    def truth(self, expression: Any) -> bool:
        ((function, argument),) = expression.items()
        if function == "Fn::Equals":
            return self.value(argument[0]) == self.value(argument[1])
        if function == "Fn::Not":
            return not self.truth(argument[0])
        if function == "Fn::And":
            return all(self.truth(a) for a in argument)
        if function == "Fn::Or":
            return any(self.truth(a) for a in argument)
        if function == "Condition":
            return self.condition(argument)
        raise AssertionError(f"unsupported condition {function}")

    def value(self, expression: Any) -> str:
        if isinstance(expression, str | int):
            return str(expression)
        ((function, argument),) = expression.items()
        if function == "Fn::GetStackOutput":
            assert self.edge is not None, "Fn::GetStackOutput outside a regional stack"
            assert argument["Region"] == "us-east-1"
            assert self.value(argument["StackName"]) == "edgefill"
            return self.edge.output(argument["OutputName"])
        if function == "Fn::Join":
            separator, items = argument
            kept = [i for i in items if not self.is_no_value(i)]
            return separator.join(self.value(i) for i in kept)
        if function == "Ref":
            return self.values[argument] if argument in self.values else self.resource(argument)
        if function == "Fn::GetAtt":
            return self.resource(".".join(argument) if isinstance(argument, list) else argument)
        if function == "Fn::If":
            return self.value(argument[1] if self.condition(argument[0]) else argument[2])
        if function == "Fn::Sub":
            text, variables = (argument, {}) if isinstance(argument, str) else argument
            scope = {**self.values, **{k: self.value(v) for k, v in variables.items()}}
            return re.sub(
                r"\$\{([^}]+)\}",
                lambda m: scope[m[1]] if m[1] in scope else self.resource(m[1]),
                text,
            )
        raise AssertionError(f"unsupported intrinsic {function}")

    def is_no_value(self, expression: Any) -> bool:
        """True when ``expression`` is AWS::NoValue, directly or through the If taken."""
        if expression == {"Ref": "AWS::NoValue"}:
            return True
        if isinstance(expression, dict) and set(expression) == {"Fn::If"}:
            condition, yes, no = expression["Fn::If"]
            return self.is_no_value(yes if self.condition(condition) else no)
        return False

    def resource(self, name: str) -> str:
        kind = self.template["Resources"][name.split(".")[0]]["Type"]
        if kind == "AWS::SQS::Queue":
            return f"https://sqs.{self.region}.amazonaws.com/123456789012/edgefill-{name}"
        if kind == "AWS::S3::Bucket":
            return "edgefill-originbucket-1a2b3c"
        if kind == "AWS::CloudFront::Distribution":
            # !GetAtt Distribution.DomainName, or !Ref Distribution (its ID)
            return "d111111abcdef8.cloudfront.net" if "." in name else "E1EDGEFILLTEST"
        raise AssertionError(f"unexpected reference to {name}")

    def environment(self, function: str) -> dict[str, str]:
        variables = props(self.template, function)["Environment"]["Variables"]
        return {
            name: self.value(value)
            for name, value in variables.items()
            if not self.is_no_value(value)
        }


def deployment(
    edge: Template,
    regional: Template,
    parameters: dict[str, str],
    region: str = "us-east-1",
) -> ParameterValues:
    """The regional stack in ``region`` of a deployment whose stacks both get
    ``parameters`` (each keeps those it declares), its edge stack evaluated beside it."""
    edge_stack = ParameterValues(
        edge, {"Region1": region, **_declared(edge, parameters)}, "us-east-1"
    )
    return ParameterValues(regional, _declared(regional, parameters), region, edge_stack)


def _declared(template: Template, parameters: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in parameters.items() if k in template["Parameters"]}


_DEPLOYMENTS = [
    pytest.param({"FullOriginDomain": "origin.example.com"}, "us-east-1", id="defaults"),
    pytest.param(
        {
            "FullOriginDomain": "origin.example.com",
            "FullOriginPath": "/assets",
            "FullOriginProtocol": "http",
            "ExistingBucketName": "my-tokyo-bucket",
            "KeyPrefix": "media/2026",
            "CreateDistribution": "false",
            "ExistingDistributionId": "E2EXAMPLE",
            "ExistingDistributionDomain": "d222.cloudfront.net",
            "QueryStrings": "forward",
            "Include": "/img/*,*.jpg",
            "Exclude": "/private/*",
            "PrewarmTargets": "eu-west-3,NRT20-P2",
            "PrewarmEncodings": "gzip,identity",
        },
        "ap-northeast-1",
        id="existing-bucket-and-distribution",
    ),
]


@pytest.mark.parametrize(("parameters", "region"), _DEPLOYMENTS)
def test_worker_environments_satisfy_the_config_contract(
    sam: Template, regional: Template, parameters: dict[str, str], region: str
) -> None:
    # Given a deployment's parameters, its regional stack in ``region``
    stack = deployment(sam, regional, parameters, region)
    # When each worker reads the environment the template gives it
    backfill = BackfillConfig.from_env(stack.environment("BackfillWorkerFunction"))
    prewarm = PrewarmConfig.from_env(stack.environment("PrewarmWorkerFunction"))
    # Then the configuration is valid and points where the parameters say
    assert backfill.origin_url == (
        f"{parameters.get('FullOriginProtocol', 'https')}://origin.example.com"
        + parameters.get("FullOriginPath", "")
    )
    assert backfill.bucket == parameters.get("ExistingBucketName", "edgefill-originbucket-1a2b3c")
    # And the bucket is in the stack's own region: the workers live beside it
    assert backfill.bucket_region == region
    assert backfill.key_prefix == (
        parameters["KeyPrefix"] + "/" if "KeyPrefix" in parameters else ""
    )
    assert backfill.prewarm_queue_url == stack.resource("PrewarmQueue")
    assert prewarm.prewarm_queue_url == stack.resource("PrewarmQueue")
    # And each worker sends its refusals to its own queue's DLQ (issue 19)
    assert backfill.dlq_url == stack.resource("BackfillDLQ")
    assert prewarm.dlq_url == stack.resource("PrewarmDLQ")
    assert prewarm.distribution_domain == parameters.get(
        "ExistingDistributionDomain", "d111111abcdef8.cloudfront.net"
    )
    assert backfill.distribution_id == parameters.get("ExistingDistributionId", "E1EDGEFILLTEST")
    # And a fill warms this region's edges unless PrewarmTargets names others (issue 20)
    expected = tuple(parameters.get("PrewarmTargets", region).split(","))
    assert prewarm.targets == expected
    assert stack.environment("BackfillWorkerFunction").get("EDGEFILL_TARGETS") == parameters.get(
        "PrewarmTargets"
    )


@pytest.mark.parametrize("prefix", ["", "media", "media/2026"])
def test_the_key_prefix_path_is_slash_delimited(sam: Template, prefix: str) -> None:
    # The regional stack's ARNs and EDGEFILL_KEY_PREFIX read it: /<prefix>/ or /
    stack = ParameterValues(sam, {"Region1": "us-east-1", "KeyPrefix": prefix})
    assert stack.output("KeyPrefixPath") == (f"/{prefix}/" if prefix else "/")


def test_worker_variables_are_those_of_the_contract(regional: Template) -> None:
    # Given the documented variables (DESIGN.md + EDGEFILL_BUCKET_REGION, docs/CONTRACTS.md)
    backfill = {
        "EDGEFILL_BUCKET",
        "EDGEFILL_BUCKET_REGION",
        "EDGEFILL_ORIGIN_URL",
        "EDGEFILL_PREWARM_QUEUE_URL",
        "EDGEFILL_KEY_PREFIX",
        "EDGEFILL_MAX_OBJECT_BYTES",
        "EDGEFILL_INCLUDE",
        "EDGEFILL_EXCLUDE",
        "EDGEFILL_QUERY",
        *("EDGEFILL_BACKFILL_QUEUE_URL", "EDGEFILL_EXPAND_PLAYLISTS", "EDGEFILL_EXPAND_MAX"),
        "EDGEFILL_VIEWER_HOSTS",
        "EDGEFILL_DISTRIBUTION_ID",
        "EDGEFILL_BACKFILL_QUEUE_URL",
        "EDGEFILL_REVALIDATE_AFTER",
        "EDGEFILL_MIN_REVALIDATE",  # issue 18: the least interval between revalidations
        "EDGEFILL_BACKFILL_DLQ_URL",
        "EDGEFILL_TARGETS",  # issue 20: set only when PrewarmTargets is
    }
    prewarm = {
        "EDGEFILL_DISTRIBUTION_DOMAIN",
        "EDGEFILL_VIEWER_HOST",
        "EDGEFILL_TARGETS",
        "EDGEFILL_ENCODINGS",
        "EDGEFILL_PROTOCOL",
        "EDGEFILL_RESOLVER",
        "EDGEFILL_REGION_SUBNETS",
        "EDGEFILL_EDGE_PORT",
        "EDGEFILL_PREWARM_QUEUE_URL",
        "EDGEFILL_ALLOWED_HOSTS",
        "EDGEFILL_DISTRIBUTION_ID",
        "EDGEFILL_MAX_WARM_BYTES",
        "EDGEFILL_PREWARM_DLQ_URL",
        "EDGEFILL_ORIGIN_URL",
    }
    # When the template's EDGEFILL_* variables are listed
    for function, allowed in (
        ("BackfillWorkerFunction", backfill),
        ("PrewarmWorkerFunction", prewarm),
    ):
        names = {
            n
            for n in props(regional, function)["Environment"]["Variables"]
            if n.startswith("EDGEFILL_")
        }
        # Then each is part of the contract
        assert names <= allowed, names - allowed
    contracts = (ROOT / "docs" / "CONTRACTS.md").read_text(encoding="utf-8")
    assert "EDGEFILL_BUCKET_REGION" in contracts
    assert "EDGEFILL_MIN_REVALIDATE" in contracts and "EDGEFILL_SWEEP_LOOKAHEAD" in contracts


def edge_import_problems(sources: list[Path]) -> list[str]:
    """Imports of the edge package its artifact cannot satisfy: only the standard library,
    boto3/botocore (in the runtime), its own package and the light modules of shared/."""
    allowed_roots = {"shared", "edge_origin_request", "boto3", "botocore"}
    allowed_roots |= set(sys.stdlib_module_names)
    problems = []
    for source in sources:
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            for name in names:
                root, _, rest = name.partition(".")
                if root not in allowed_roots:
                    problems.append(f"{source.name} imports {name}")
                elif root == "shared" and rest and rest.split(".")[0] not in EDGE_SHARED:
                    problems.append(f"{source.name} imports {name}, not in the edge artifact")
    return problems


def test_edge_package_imports_only_what_its_artifact_carries() -> None:
    # Given the edge handler package (written by the edge issue) / When its imports are read
    # Then each is satisfied by the artifact `make build` produces
    assert edge_import_problems(sorted((ROOT / "edge_origin_request").glob("*.py"))) == []


def test_edge_import_rule_catches_heavy_imports(tmp_path: Path) -> None:
    # Given edge code importing a third-party package and a heavy part of shared/
    source = tmp_path / "app.py"
    source.write_text(
        "import json\nimport boto3\nimport requests\n"
        "from shared.messages import parse\nfrom shared import observability\n"
        "from shared.aws import client\n",
        encoding="utf-8",
    )
    # Then both are named, and nothing else
    assert edge_import_problems([source]) == [
        "app.py imports requests",
        "app.py imports shared.observability, not in the edge artifact",
        "app.py imports shared.aws, not in the edge artifact",
        "app.py imports shared.aws.client, not in the edge artifact",
    ]
