"""The stacks: custom domain, KMS key, edge versions, allowed hosts, dependency floors."""

from __future__ import annotations

import re
from importlib.metadata import version
from typing import Any

import pytest

from shared.config import PrewarmConfig
from tests.unit.test_template import (
    REGIONAL,
    ROOT,
    TEMPLATE,
    Template,
    as_list,
    deployment,
    policy_statements,
    props,
    regional,
    sam,
    translate,
)

__all__ = ["regional", "sam"]  # fixtures of test_template

# What the tests of this tree ran with; the functions' requirements may not ask for less.
TESTED_BOTO = "1.44.8"


def rule_holds(sam: Template, rule: str, parameters: dict[str, str]) -> bool:
    """Whether ``rule``'s assertions hold for ``parameters`` (True when its condition does
    not apply), evaluating the few functions Rules use."""
    values = {name: str(spec.get("Default", "")) for name, spec in sam["Parameters"].items()}
    values.update(parameters)

    def truth(expression: Any) -> Any:
        if isinstance(expression, str):
            return expression
        ((function, argument),) = expression.items()
        if function == "Ref":
            return values[argument]
        if function == "Fn::Equals":
            return truth(argument[0]) == truth(argument[1])
        if function == "Fn::Not":
            return not truth(argument[0])
        if function == "Fn::And":
            return all(truth(a) for a in argument)
        if function == "Fn::Or":
            return any(truth(a) for a in argument)
        if function == "Fn::Contains":
            return truth(argument[1]) in [truth(a) for a in argument[0]]
        raise AssertionError(f"unsupported rule function {function}")

    spec = sam["Rules"][rule]
    if "RuleCondition" in spec and not truth(spec["RuleCondition"]):
        return True
    return all(truth(assertion["Assert"]) for assertion in spec["Assertions"])


CERT = "arn:aws:acm:us-east-1:123456789012:certificate/1a2b3c4d-0000-1111-2222-333344445555"
KEY = "arn:aws:kms:eu-west-3:123456789012:key/1a2b3c4d-0000-1111-2222-333344445555"


@pytest.mark.parametrize(
    ("parameters", "holds"),
    [
        ({}, True),
        ({"ViewerHost": "cdn.example.com"}, False),
        ({"ViewerHost": "cdn.example.com", "Aliases": "cdn.example.com"}, False),
        ({"ViewerHost": "cdn.example.com", "AcmCertificateArn": CERT}, False),
        (
            {
                "ViewerHost": "cdn.example.com",
                "Aliases": "cdn.example.com",
                "AcmCertificateArn": CERT,
            },
            True,
        ),
        # An existing distribution has its own aliases: the stack does not manage them.
        (
            {
                "ViewerHost": "cdn.example.com",
                "CreateDistribution": "false",
                "ExistingDistributionDomain": "d222.cloudfront.net",
            },
            True,
        ),
    ],
)
def test_a_viewer_host_needs_aliases_and_a_certificate(
    sam: Template, parameters: dict[str, str], holds: bool
) -> None:
    assert rule_holds(sam, "ViewerHostNeedsCustomDomain", parameters) is holds


def test_aliases_and_certificate_go_together(sam: Template) -> None:
    assert rule_holds(sam, "CustomDomainNeedsBoth", {"Aliases": "a.example.com"}) is False
    assert rule_holds(sam, "CustomDomainNeedsBoth", {"AcmCertificateArn": CERT}) is False
    both = {"Aliases": "a.example.com,b.example.com", "AcmCertificateArn": CERT}
    assert rule_holds(sam, "CustomDomainNeedsBoth", both) is True


def test_the_distribution_serves_the_aliases_by_sni_with_tls_1_2_2021(sam: Template) -> None:
    config = props(sam, "Distribution")["DistributionConfig"]
    condition, with_domain, without = config["ViewerCertificate"]["Fn::If"]
    assert condition == "HasCustomDomain"
    assert with_domain == {
        "AcmCertificateArn": {"Ref": "AcmCertificateArn"},
        "SslSupportMethod": "sni-only",
        "MinimumProtocolVersion": "TLSv1.2_2021",
    }
    assert without == {"CloudFrontDefaultCertificate": True}
    assert config["Aliases"] == {
        "Fn::If": [
            "HasCustomDomain",
            {"Fn::Split": [",", {"Ref": "Aliases"}]},
            {"Ref": "AWS::NoValue"},
        ]
    }
    pattern = sam["Parameters"]["AcmCertificateArn"]["AllowedPattern"]
    assert re.fullmatch(pattern, CERT)
    assert not re.fullmatch(pattern, CERT.replace("us-east-1", "eu-west-1"))


@pytest.mark.parametrize(
    "aliases",
    [
        "cdn.example.com,img.example.com",
        "*.example.com,cdn.example.com",  # a wildcard alias (issue 19): a valid environment
    ],
)
def test_the_aliases_become_hosts_a_prewarm_message_may_name(
    sam: Template, regional: Template, aliases: str
) -> None:
    stack = deployment(
        sam,
        regional,
        {
            "FullOriginDomain": "origin.example.com",
            "ViewerHost": "cdn.example.com",
            "Aliases": aliases,
            "AcmCertificateArn": CERT,
        },
    )
    config = PrewarmConfig.from_env(stack.environment("PrewarmWorkerFunction"))
    # the distribution domain and the viewer host, then the aliases (PrewarmAllowedHosts)
    assert config.allowed_hosts == (
        "d111111abcdef8.cloudfront.net",
        "cdn.example.com",
        *aliases.split(","),
    )
    assert not config.allow_private_edges
    assert "PrewarmAllowedHosts" in sam["Outputs"]


def test_the_template_never_allows_private_edges() -> None:
    for path in (TEMPLATE, REGIONAL):
        assert "EDGEFILL_ALLOW_PRIVATE_EDGES" not in path.read_text(encoding="utf-8")


def test_the_edge_function_publishes_a_version_for_any_property_change(sam: Template) -> None:
    edge = props(sam, "EdgeOriginRequestFunction")
    assert edge["AutoPublishAlias"] and edge["AutoPublishAliasAllProperties"] is True
    assert edge["MemorySize"] == 512


def test_the_workers_may_use_the_bucket_key_and_no_other(regional: Template) -> None:
    sam = regional
    # Given the policy the template adds for an SSE-KMS bucket
    policy = sam["Resources"]["BucketKmsKeyAccess"]
    assert policy["Condition"] == "HasBucketKmsKey"
    assert sam["Conditions"]["HasBucketKmsKey"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "ExistingBucketKmsKeyArn"}, ""]}]
    }
    roles = policy["Properties"]["Roles"]
    # Only where S3 is read or written: not the prewarm worker's (issue 19)
    assert roles[:1] == [{"Ref": "BackfillWorkerRole"}]
    # (and the sweep's, which reads due-index entries written under the bucket's key)
    assert roles[1:] == [
        {
            "Fn::If": [
                "HasRevalidateSchedule",
                {"Ref": "RevalidationSweepRole"},
                {"Ref": "AWS::NoValue"},
            ]
        }
    ]
    (statement,) = as_list(policy["Properties"]["PolicyDocument"]["Statement"])
    # Then exactly Decrypt and GenerateDataKey, on that key only
    assert statement["Effect"] == "Allow"
    assert sorted(as_list(statement["Action"])) == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert statement["Resource"] == {"Ref": "ExistingBucketKmsKeyArn"}
    assert re.fullmatch(sam["Parameters"]["ExistingBucketKmsKeyArn"]["AllowedPattern"], KEY)
    # And no other statement of the template grants a KMS action
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        translated = translate(sam)
    for owner, other in policy_statements(translated):
        actions = [a for a in as_list(other.get("Action", [])) if a.startswith("kms:")]
        assert not actions, (owner, actions)


def floors(text: str, package: str) -> list[str]:
    return re.findall(rf'^\s*"?{package}>=([0-9.]+)', text, flags=re.MULTILINE)


@pytest.mark.parametrize(
    "path",
    ["backfill_worker/requirements.txt", "prewarm_worker/requirements.txt", "pyproject.toml"],
)
def test_boto_floors_are_the_versions_the_tests_ran_with(path: str) -> None:
    text = (ROOT / path).read_text(encoding="utf-8")
    for package in ("boto3", "botocore"):
        assert floors(text, package) == [TESTED_BOTO], (path, package)
        installed = tuple(int(part) for part in version(package).split(".")[:3])
        assert installed >= tuple(int(part) for part in TESTED_BOTO.split("."))
