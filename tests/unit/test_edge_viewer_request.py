"""The viewer-request CloudFront Function (edge_viewer_request/select_origin.js), run in
Node.js with a stand-in for the ``cloudfront`` module: each viewer reaches its region's
bucket with the full origin behind it, and no configuration makes it throw."""

from __future__ import annotations

from typing import Any

import pytest

from shared import edge_routing
from tests.cloudfront_function import node_executable, run_code, run_function, viewer_event

ROUTES = "ap-southeast-1:SG,MY;eu-central-1:DE,FR"
CODES = [403, 404, 500, 502, 503, 504]


@pytest.fixture(scope="module", autouse=True)
def _node() -> None:
    # No skip: a machine without node fails here, saying how to install it.
    node_executable()


def group(region: str, codes: list[int] = CODES) -> list[dict[str, Any]]:
    return [
        {
            "method": "createRequestOriginGroup",
            "args": [
                {
                    "originIds": [f"bucket-{region}", f"full-{region}"],
                    "failoverCriteria": {"statusCodes": codes},
                }
            ],
        }
    ]


def test_each_country_reaches_its_regions_bucket_then_the_full_origin() -> None:
    # Given viewers from Singapore, Malaysia, Germany and France
    events = [viewer_event(c) for c in ("SG", "MY", "DE", "FR")]
    # When the function runs for each
    results = run_function(events, ROUTES, "ap-southeast-1")
    # Then each request goes to its region's origin group, returned unchanged
    assert [r["calls"] for r in results] == [
        group("ap-southeast-1"),
        group("ap-southeast-1"),
        group("eu-central-1"),
        group("eu-central-1"),
    ]
    assert all(r["threw"] is None for r in results)
    assert [r["returned"] for r in results] == [e["request"] for e in events]


@pytest.mark.parametrize(
    "country",
    [
        pytest.param("US", id="unmapped"),
        pytest.param(None, id="missing"),
        pytest.param("", id="empty"),
        pytest.param("sg", id="lowercase"),
        pytest.param("SGP", id="three-letters"),
        pytest.param("S1", id="digit"),
        pytest.param({"value": 42}, id="not-a-string"),
        pytest.param({}, id="no-value"),
        pytest.param("__proto__", id="prototype-name"),
        pytest.param("XX", id="unknown-code"),
    ],
)
def test_an_unknown_missing_or_malformed_country_goes_to_the_default_region(
    country: Any,
) -> None:
    # Given a viewer whose country header is not one the map routes
    # When the function runs
    (result,) = run_function([viewer_event(country)], ROUTES, "eu-central-1")
    # Then the viewer reaches the default region, and nothing threw
    assert result["threw"] is None
    assert result["calls"] == group("eu-central-1")


def test_prototype_names_as_countries_do_not_escape_the_map() -> None:
    # Given a viewer whose header names an Object.prototype member (constructor)
    (result,) = run_function([viewer_event({"value": "constructor"})], ROUTES, "eu-central-1")
    # Then it is an unknown country like any other
    assert result["calls"] == group("eu-central-1")


def test_an_empty_map_sends_every_viewer_to_the_default_region() -> None:
    results = run_function([viewer_event("SG"), viewer_event(None)], "", "ap-southeast-1")
    assert [r["calls"] for r in results] == [group("ap-southeast-1")] * 2


def test_the_failover_codes_are_the_configured_ones() -> None:
    (result,) = run_function([viewer_event("DE")], ROUTES, "ap-southeast-1", "404,503")
    assert result["calls"] == group("eu-central-1", [404, 503])


@pytest.mark.parametrize(
    ("routes", "default_region", "codes"),
    [
        pytest.param(
            "ap-southeast-1:SG;ap-southeast-1:MY", "ap-southeast-1", None, id="dup-region"
        ),
        pytest.param("ap-southeast-1:SG;eu-central-1:SG", "ap-southeast-1", None, id="dup-country"),
        pytest.param("ap-southeast-1:sg", "ap-southeast-1", None, id="lowercase-country"),
        pytest.param("ap-southeast-1:SG,", "ap-southeast-1", None, id="trailing-comma"),
        pytest.param("ap-southeast-1", "ap-southeast-1", None, id="no-colon"),
        pytest.param("mars-1:SG", "ap-southeast-1", None, id="bad-region"),
        pytest.param("ap-southeast-1:SG;", "ap-southeast-1", None, id="empty-entry"),
        pytest.param("ap-southeast-1:SG:MY", "ap-southeast-1", None, id="two-colons"),
        pytest.param(ROUTES, "", None, id="empty-default"),
        pytest.param(ROUTES, "Frankfurt", None, id="bad-default"),
        pytest.param(ROUTES, "ap-southeast-1", "", id="no-codes"),
        pytest.param(ROUTES, "ap-southeast-1", "200,404", id="code-200"),
        pytest.param(ROUTES, "ap-southeast-1", "404,404", id="dup-code"),
        pytest.param(ROUTES, "ap-southeast-1", "4O4", id="not-a-number"),
        pytest.param("${Routes}", "ap-southeast-1", None, id="unrendered"),
    ],
)
def test_a_bad_configuration_leaves_the_static_origin_group_and_never_throws(
    routes: str, default_region: str, codes: str | None
) -> None:
    # Given the function rendered with a bad value, as CloudFormation would substitute it
    events = [viewer_event("SG"), viewer_event(None), viewer_event("DE")]
    # When it runs
    results = run_function(
        events,
        routes,
        default_region,
        "403,404,500,502,503,504" if codes is None else codes,
        check=False,
    )
    # Then no origin is chosen (the distribution's group-<Region1> stays) and nothing threw
    assert [r["calls"] for r in results] == [[], [], []]
    assert [r["threw"] for r in results] == [None, None, None]
    assert [r["returned"] for r in results] == [e["request"] for e in events]


def test_the_unrendered_file_runs_and_keeps_the_static_group() -> None:
    # Given the file as it is in the repository (placeholders not substituted)
    # When it runs / Then it falls back quietly, as on any bad configuration
    (result,) = run_code(edge_routing.function_code(), [viewer_event("SG")])
    assert result == {"returned": viewer_event("SG")["request"], "threw": None, "calls": []}


def test_a_throwing_cloudfront_module_never_fails_the_viewer() -> None:
    # Given a cloudfront module that refuses the call (an origin the distribution lacks)
    code = edge_routing.render(edge_routing.function_code(), ROUTES, "ap-southeast-1")
    code = code.replace(
        "import cf from 'cloudfront';",
        "import real from 'cloudfront';\n"
        "const cf = { createRequestOriginGroup(p) { real.createRequestOriginGroup(p); "
        "throw new Error('no such origin'); } };",
    )
    # When the function runs / Then the request is still returned, and nothing escapes
    (result,) = run_code(code, [viewer_event("SG")])
    assert result["threw"] is None
    assert result["returned"] == viewer_event("SG")["request"]


def test_the_file_is_an_fn_sub_body_with_only_the_three_placeholders() -> None:
    code = edge_routing.function_code()
    assert code.startswith("import cf from 'cloudfront';\n")
    assert "function handler(event)" in code
    assert code.count("${") == 3
    assert edge_routing.placeholders(code) == list(edge_routing.PLACEHOLDERS)
    for name in edge_routing.PLACEHOLDERS:
        assert f"'${{{name}}}'" in code
