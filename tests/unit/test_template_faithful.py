"""template.yaml: the bucket serves faithfully (issue 9).

- With ``QueryStrings=forward`` no viewer query that S3's GetObject honours (response-*
  overrides, partNumber, versionId) reaches the bucket: CloudFront signs with OAC, and S3
  honours those parameters on signed requests.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.unit.test_template import ParameterValues, Template, load_sam, props, resources

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


@pytest.fixture(scope="module")
def sam() -> Template:
    return load_sam()


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
    for name, resource in resources(template, "AWS::CloudFront::Distribution").items():
        config = resource["Properties"]["DistributionConfig"]
        behaviors = [config["DefaultCacheBehavior"], *config.get("CacheBehaviors", [])]
        if any("OriginRequestPolicyId" in behavior for behavior in behaviors):
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


def test_the_worker_mode_follows_the_parameter(sam: Template) -> None:
    for mode in ("ignore", "forward"):
        stack = ParameterValues(sam, {"FullOriginDomain": "o.example.com", "QueryStrings": mode})
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
