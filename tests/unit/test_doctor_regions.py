"""``doctor``'s routes check: the edge stack's ``Routes`` read as the CloudFront Function
reads them (``shared.edge_routing``), and every region it routes to has a regional stack;
the entry at fault is named."""

from __future__ import annotations

import pytest

from edgefill.deployment import Deployment
from edgefill.doctor.regions import routes_check
from edgefill.stack import StackInfo

REGIONS = ("ap-southeast-1", "eu-central-1")


def deployment(
    routes: str, default: str = "ap-southeast-1", **regional: StackInfo | str
) -> Deployment:
    edge = StackInfo("edgefill", "CREATE_COMPLETE", {"Routes": routes, "DefaultRegion": default})
    stacks: dict[str, StackInfo | str] = {
        region: StackInfo("edgefill-regional", "CREATE_COMPLETE", {"Region": region})
        for region in REGIONS
    }
    stacks.update({key.replace("_", "-"): value for key, value in regional.items()})
    return Deployment(edge, REGIONS, stacks, default)


def test_routes_to_regions_with_stacks_pass() -> None:
    check = routes_check(deployment("eu-central-1:DE,FR;ap-southeast-1:SG"))
    assert check.ok and "eu-central-1 ← DE,FR" in check.detail
    assert "every other viewer → ap-southeast-1" in check.detail
    assert routes_check(deployment("")).ok  # no routes: every viewer to the default region


@pytest.mark.parametrize(
    ("routes", "named"),
    [
        ("us-west-2:US", "route us-west-2:US: us-west-2 has no regional stack"),
        ("eu-central-1:DE;eu-central-1:FR", "region eu-central-1 is listed twice"),
        ("xx-north-1:DE", "'xx-north-1' is not an AWS region"),
        ("eu-central-1:de", "'de' is not an ISO 3166-1 alpha-2 code"),
        ("eu-central-1:DE;ap-southeast-1:DE", "country DE is already routed"),
        ("eu-central-1", "Routes entry 1 ('eu-central-1')"),
    ],
)
def test_a_bad_route_fails_naming_the_entry(routes: str, named: str) -> None:
    check = routes_check(deployment(routes))
    assert not check.ok and named in check.detail, check.detail
    assert "RegionNCountries" in check.remedy


def test_a_route_to_a_deleted_regional_stack_fails_naming_it() -> None:
    gone = "region eu-central-1: regional stack 'edgefill-regional': not found"
    check = routes_check(deployment("eu-central-1:DE", eu_central_1=gone))
    assert not check.ok and "route eu-central-1:DE: region eu-central-1" in check.detail


def test_a_default_region_without_a_stack_fails() -> None:
    check = routes_check(deployment("eu-central-1:DE", default="us-west-2"))
    assert not check.ok and "default region us-west-2 has no regional stack" in check.detail
