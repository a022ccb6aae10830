"""shared/edge_routing.py: the Routes string read as the viewer-request function reads
it, refused with the entry named, and the function rendered as Fn::Sub renders it."""

from __future__ import annotations

import pytest

from shared.edge_routing import (
    format_routes,
    function_code,
    parse_failover_codes,
    parse_routes,
    render,
)


def test_routes_map_each_country_to_its_region() -> None:
    assert parse_routes("ap-southeast-1:SG,MY;eu-central-1:DE,FR") == {
        "SG": "ap-southeast-1",
        "MY": "ap-southeast-1",
        "DE": "eu-central-1",
        "FR": "eu-central-1",
    }
    assert parse_routes("") == {}


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("mars-1:SG", "entry 1 ('mars-1:SG'): 'mars-1' is not an AWS region code"),
        ("ap-southeast-1:SG;ap-southeast-1:MY", "entry 2 ('ap-southeast-1:MY'): region"),
        ("ap-southeast-1:SG;eu-central-1:SG", "country SG is already routed to ap-southeast-1"),
        ("ap-southeast-1:SG,sg", "'sg' is not an ISO 3166-1 alpha-2 code"),
        ("ap-southeast-1:SG,", "'' is not an ISO 3166-1 alpha-2 code"),
        ("ap-southeast-1:SGP", "'SGP' is not"),
        ("ap-southeast-1", "entry 1 ('ap-southeast-1'): expected <region>:<CC>"),
        ("ap-southeast-1:SG;", "entry 2 (''): expected"),
        ("ap-southeast-1:SG:MY", "expected <region>:<CC>"),
        (" ap-southeast-1:SG", "' ap-southeast-1' is not an AWS region code"),
    ],
)
def test_a_bad_routes_string_is_refused_naming_the_entry(text: str, named: str) -> None:
    with pytest.raises(ValueError, match="Routes entry") as refused:
        parse_routes(text)
    assert named in str(refused.value)


def test_a_region_without_a_slot_is_refused_when_the_slots_are_known() -> None:
    with pytest.raises(ValueError, match="region eu-central-1 has no slot"):
        parse_routes("eu-central-1:DE", regions={"ap-southeast-1"})
    assert parse_routes("eu-central-1:DE", regions={"eu-central-1"}) == {"DE": "eu-central-1"}


def test_a_map_formats_back_to_its_routes_string() -> None:
    text = "ap-southeast-1:SG,MY;eu-central-1:DE"
    assert format_routes(parse_routes(text)) == text
    with pytest.raises(ValueError, match="not an ISO"):
        format_routes({"sg": "ap-southeast-1"})


@pytest.mark.parametrize("text", ["", "200", "404,404", "4O4", "404,"])
def test_bad_failover_codes_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="FailoverStatusCodes"):
        parse_failover_codes(text)


def test_render_substitutes_as_fn_sub_does() -> None:
    # Given a body with the three placeholders and an escaped ${!literal}
    code = "a='${Routes}' b='${DefaultRegion}' c='${FailoverStatusCodes}' d='${!Kept}'"
    # When it is rendered / Then each is replaced, and ${!Kept} is written ${Kept}
    assert render(code, {"DE": "eu-central-1"}, "eu-central-1", [404, 503]) == (
        "a='eu-central-1:DE' b='eu-central-1' c='404,503' d='${Kept}'"
    )


def test_render_refuses_an_unknown_placeholder_and_bad_values() -> None:
    with pytest.raises(ValueError, match=r"names \$\{Other\}"):
        render("'${Other}'", "", "eu-central-1")
    with pytest.raises(ValueError, match="DefaultRegion"):
        render(function_code(), "", "")
    with pytest.raises(ValueError, match="Routes entry 1"):
        render(function_code(), "x:DE", "eu-central-1")
    # Unchecked, a bad value is substituted as CloudFormation would
    assert "var DEFAULT_REGION = '';" in render(function_code(), "", "", check=False)
