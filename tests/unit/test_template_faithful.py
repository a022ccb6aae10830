"""template.yaml: the bucket serves faithfully (issue 9).

- With ``QueryStrings=forward`` no viewer query that S3's GetObject honours (response-*
  overrides, partNumber, versionId) reaches the bucket: CloudFront signs with OAC, and S3
  honours those parameters on signed requests.
- ``ResponseHeadersPolicyId`` (default AWS's managed SecurityHeadersPolicy, empty for none)
  is on every cache behavior: the headers S3 cannot store come from CloudFront.
- ``BackfillBatchSize`` (default 1) is the backfill event source's ``BatchSize``.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from edgefill.lab.template_spec import TemplateSpec
from shared.keys import normalize_prefix
from tests.unit.test_template import (
    REGIONAL,
    TEMPLATE,
    ParameterValues,
    Template,
    deployment,
    props,
    refers_to,
    regional,
    resources,
    sam,
)

__all__ = ["regional", "sam"]  # fixtures of test_template

# The GetObject query parameters S3 acts on with s3:GetObject alone (the API reference's
# "Overriding response header values" plus partNumber), and versionId.
S3_GET_PARAMETERS = {
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "response-content-language",
    "response-content-type",
    "response-expires",
    "partNumber",
    "versionId",
}


def resolved(stack: ParameterValues, value: Any) -> Any:
    """``value`` with every Fn::If decided and AWS::NoValue removed, for ``stack``."""
    if isinstance(value, list):
        items = [resolved(stack, item) for item in value]
        return [item for item in items if item is not _NO_VALUE]
    if isinstance(value, dict):
        if set(value) == {"Fn::If"}:
            condition, yes, no = value["Fn::If"]
            return resolved(stack, yes if stack.condition(condition) else no)
        if value == {"Ref": "AWS::NoValue"}:
            return _NO_VALUE
        items = {key: resolved(stack, item) for key, item in value.items()}
        return {key: item for key, item in items.items() if item is not _NO_VALUE}
    return value


_NO_VALUE = object()


def forwarded_queries(template: Template, parameters: dict[str, str]) -> tuple[str, set[str]]:
    """(behavior, names) of the query strings the cache policy sends to both origins."""
    stack = ParameterValues(template, parameters)
    [name] = resources(template, "AWS::CloudFront::CachePolicy")
    config = resolved(stack, props(template, name))["CachePolicyConfig"]
    queries = config["ParametersInCacheKeyAndForwardedToOrigin"]["QueryStringsConfig"]
    return queries["QueryStringBehavior"], set(queries.get("QueryStrings", []))


def query_problems(template: Template) -> list[str]:
    """What would let a viewer's query reach the bucket with an S3 GetObject parameter."""
    problems = []
    for mode in ("ignore", "forward"):
        behavior, names = forwarded_queries(
            template, {"FullOriginDomain": "origin.example.com", "QueryStrings": mode}
        )
        if mode == "ignore" and behavior != "none":
            problems.append(f"QueryStrings=ignore forwards query strings ({behavior})")
        if mode == "forward" and behavior != "allExcept":
            problems.append(f"QueryStrings=forward: behavior {behavior}, expected allExcept")
        if mode == "forward" and S3_GET_PARAMETERS - names:
            missing = sorted(S3_GET_PARAMETERS - names)
            problems.append(f"QueryStrings=forward lets {missing} through")
    # An origin request policy adds what it names to what the cache key forwards: the
    # viewer-country policy (issue 20) must add no query string.
    policies = resources(template, "AWS::CloudFront::OriginRequestPolicy")
    for name, resource in resources(template, "AWS::CloudFront::Distribution").items():
        config = resource["Properties"]["DistributionConfig"]
        behaviors = [config["DefaultCacheBehavior"], *config.get("CacheBehaviors", [])]
        for behavior in behaviors:
            if "OriginRequestPolicyId" not in behavior:
                continue
            named = [p for p in policies if refers_to(behavior["OriginRequestPolicyId"], p)]
            queries = [
                policies[p]["Properties"]["OriginRequestPolicyConfig"]["QueryStringsConfig"]
                for p in named
            ]
            if not named or any(q != {"QueryStringBehavior": "none"} for q in queries):
                problems.append(f"{name}: an origin request policy could forward more queries")
    return problems


def test_no_s3_get_parameter_of_a_viewer_reaches_the_bucket(sam: Template) -> None:
    assert query_problems(sam) == []


def test_forward_keeps_every_other_query_in_the_cache_key(sam: Template) -> None:
    behavior, names = forwarded_queries(
        sam, {"FullOriginDomain": "origin.example.com", "QueryStrings": "forward"}
    )
    assert (behavior, names) == ("allExcept", S3_GET_PARAMETERS)
    assert len(names) <= 10  # CloudFront's default quota of names per cache policy


def test_the_worker_mode_follows_the_parameter(sam: Template, regional: Template) -> None:
    for mode in ("ignore", "forward"):
        stack = deployment(
            sam, regional, {"FullOriginDomain": "o.example.com", "QueryStrings": mode}
        )
        assert stack.environment("BackfillWorkerFunction")["EDGEFILL_QUERY"] == mode


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda config: config.update(QueryStringBehavior="all"), "expected allExcept"),
        (lambda config: config["QueryStrings"]["Fn::If"][1].remove("partNumber"), "partNumber"),
        (lambda config: config.update(QueryStringBehavior="allExcept"), "ignore forwards"),
    ],
    ids=["forward-all", "forward-partNumber", "ignore-forwards"],
)
def test_the_query_rule_catches_what_it_guards(sam: Template, mutate: Any, expected: str) -> None:
    broken = copy.deepcopy(sam)
    [name] = resources(broken, "AWS::CloudFront::CachePolicy")
    config = props(broken, name)["CachePolicyConfig"]
    mutate(config["ParametersInCacheKeyAndForwardedToOrigin"]["QueryStringsConfig"])
    assert any(expected in problem for problem in query_problems(broken))


# ---------------------------------------------------------------- response headers policy

# AWS's managed SecurityHeadersPolicy (CloudFront Developer Guide, "Use managed response
# headers policies").
SECURITY_HEADERS_POLICY = "67f7725c-6f97-4210-82d7-5512b31e9d03"


def cache_behaviors(template: Template, parameters: dict[str, str]) -> list[dict[str, Any]]:
    stack = ParameterValues(template, {"FullOriginDomain": "origin.example.com", **parameters})
    [name] = resources(template, "AWS::CloudFront::Distribution")
    config = resolved(stack, props(template, name))["DistributionConfig"]
    return [config["DefaultCacheBehavior"], *config.get("CacheBehaviors", [])]


def test_every_cache_behavior_gets_the_security_headers_policy_by_default(sam: Template) -> None:
    # Given the default parameters
    assert sam["Parameters"]["ResponseHeadersPolicyId"]["Default"] == SECURITY_HEADERS_POLICY
    # Then every cache behavior carries AWS's managed SecurityHeadersPolicy
    for behavior in cache_behaviors(sam, {}):
        assert behavior["ResponseHeadersPolicyId"] == {"Ref": "ResponseHeadersPolicyId"}
    stack = ParameterValues(sam, {})
    assert stack.value({"Ref": "ResponseHeadersPolicyId"}) == SECURITY_HEADERS_POLICY


def test_an_empty_response_headers_policy_id_attaches_none(sam: Template) -> None:
    for behavior in cache_behaviors(sam, {"ResponseHeadersPolicyId": ""}):
        assert "ResponseHeadersPolicyId" not in behavior


def test_a_custom_response_headers_policy_id_is_attached(sam: Template) -> None:
    mine = "12345678-abcd-4def-8abc-1234567890ab"
    stack = ParameterValues(sam, {"ResponseHeadersPolicyId": mine})
    for behavior in cache_behaviors(sam, {"ResponseHeadersPolicyId": mine}):
        assert stack.value(behavior["ResponseHeadersPolicyId"]) == mine
    pattern = sam["Parameters"]["ResponseHeadersPolicyId"]["AllowedPattern"]
    assert all(re.fullmatch(pattern, value) for value in ("", mine, SECURITY_HEADERS_POLICY))
    assert not re.fullmatch(pattern, "Managed-SecurityHeadersPolicy")


# ---------------------------------------------------------------- backfill batch size


def backfill_batch_size(template: Template, parameters: dict[str, str]) -> int:
    stack = ParameterValues(template, {"FullOriginDomain": "origin.example.com", **parameters})
    events = props(template, "BackfillWorkerFunction")["Events"]
    [source] = [event for event in events.values() if event["Type"] == "SQS"]
    return int(stack.value(source["Properties"]["BatchSize"]))


def test_the_backfill_batch_size_is_a_parameter_defaulting_to_one(regional: Template) -> None:
    parameter = regional["Parameters"]["BackfillBatchSize"]
    assert (parameter["Default"], parameter["MinValue"], parameter["MaxValue"]) == (1, 1, 10)
    assert backfill_batch_size(regional, {}) == 1
    assert backfill_batch_size(regional, {"BackfillBatchSize": "4"}) == 4


def test_the_lab_polls_the_backfill_queue_one_record_at_a_time() -> None:
    # The lab reads the same number from the template, so the demo and e2e behave alike.
    for path in (TEMPLATE, REGIONAL):  # the edge stack's path finds regional.yaml beside it
        spec = TemplateSpec.load(path)
        assert spec.event_source_for("BackfillQueue").batch_size == 1


# ---------------------------------------------------------------- the edge's key prefix


def full_origin_headers(template: Template, parameters: dict[str, str]) -> dict[str, Any]:
    stack = ParameterValues(template, {"FullOriginDomain": "origin.example.com", **parameters})
    [name] = resources(template, "AWS::CloudFront::Distribution")
    config = resolved(stack, props(template, name))["DistributionConfig"]
    [origin] = [o for o in config["Origins"] if "CustomOriginConfig" in o]
    return {
        header["HeaderName"]: stack.value(header["HeaderValue"])
        for header in origin["OriginCustomHeaders"]
    }


def test_the_full_origin_tells_the_edge_the_key_prefix_when_there_is_one(
    sam: Template, regional: Template
) -> None:
    # Given the stack with and without a key prefix / Then the full origin names it, and
    # the edge reads the same prefix the worker's EDGEFILL_KEY_PREFIX holds
    for parameters, expected in (({"KeyPrefix": "media/2026"}, "media/2026/"), ({}, "")):
        header = full_origin_headers(sam, parameters)["x-edgefill-key-prefix"]
        assert normalize_prefix(header) == expected
        stack = deployment(sam, regional, {"FullOriginDomain": "o.example.com", **parameters})
        variable = stack.environment("BackfillWorkerFunction")["EDGEFILL_KEY_PREFIX"]
        assert normalize_prefix(variable) == expected
