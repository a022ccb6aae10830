"""The doctor of a deployment of several regions: the edge stack once, each regional stack
on its own, and the routes between them.

- The edge checks (the edge stack's outputs, origin group, failover, edge association,
  methods and encodings, viewer protocol, edge logs, routes) run once, with the facts of
  the first region (``Region1``: the default behaviour's origin group is its bucket).
- The regional checks (the regional stack's outputs, queue header, bucket policy, queues,
  event sources) run for every region, each verdict carrying its region: a broken region
  is named, the others still checked. A regional stack that cannot be read (deleted, in a
  region the credentials cannot reach) is one failed ``stack`` check of that region.
- ``routes``: the edge stack's ``Routes`` output parsed by ``shared.edge_routing``
  (unknown region code, duplicate country, duplicate region, bad country code: the entry
  named), then each routed region and the default region must have a regional stack."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from edgefill.deployment import Deployment
from edgefill.doctor.checks import (
    EDGE_OUTPUTS,
    REGIONAL_OUTPUTS,
    Check,
    association_check,
    bucket_policy_check,
    edge_logs_check,
    event_sources_check,
    failover_check,
    methods_check,
    origin_group_check,
    queue_header_check,
    queues_check,
    stack_check,
    viewer_protocol_check,
)
from edgefill.doctor.facts import Facts
from edgefill.operations import OperatorError
from edgefill.stack import StackInfo

EDGE_CHECKS: Final = (
    origin_group_check,
    failover_check,
    association_check,
    methods_check,
    viewer_protocol_check,
    edge_logs_check,
)
REGIONAL_CHECKS: Final = (
    queue_header_check,
    bucket_policy_check,
    queues_check,
    event_sources_check,
)


def regional_remedy(found: Deployment, region: str) -> str:
    return (
        f"deploy regional.yaml in {region} as stack {found.regional_name} "
        f"(`sam deploy --config-env regional --region {region}`), or remove {region} "
        "from the edge stack's region slots"
    )


def deployment_checks(
    found: Deployment,
    facts_of: Callable[[str, StackInfo], Facts],
    regions: list[str] | None = None,
) -> tuple[list[Check], dict[str, Facts]]:
    """Every verdict of the deployment, the edge's first, and each region's facts;
    ``facts_of(region, view)`` gathers one region's facts; ``regions``: those to check
    (default: all)."""
    chosen = list(regions or found.regions)
    facts: dict[str, Facts] = {}
    broken: dict[str, Check] = {}
    for region in dict.fromkeys([found.regions[0], *chosen]):
        try:
            view = found.view(region)
        except OperatorError as error:
            broken[region] = Check(
                "stack", False, str(error), regional_remedy(found, region), region
            )
            continue
        facts[region] = facts_of(region, view)
    first = found.regions[0]
    edge_facts = facts.get(first) or facts_of(first, found.edge)
    results = [
        stack_check(Facts(stack=found.edge), EDGE_OUTPUTS),
        *(check(edge_facts) for check in EDGE_CHECKS),
        routes_check(found),
    ]
    for region in chosen:
        if region in broken:
            results.append(broken[region])
            continue
        regional = found.regional[region]
        assert isinstance(regional, StackInfo)
        results.append(stack_check(Facts(stack=regional), REGIONAL_OUTPUTS).of(region))
        results += [check(facts[region]).of(region) for check in REGIONAL_CHECKS]
    return results, facts


def routes_check(found: Deployment) -> Check:
    """The ``Routes`` output: valid, and every region it names has a regional stack."""
    text = found.edge.output("Routes") or ""
    remedy = (
        "fix the edge stack's RegionNCountries parameters (one region per slot, ISO 3166-1 "
        "alpha-2 codes, each country once) and deploy a regional stack in every region "
        "they route to"
    )
    try:
        routes = _parsed(text) if text.strip() else {}
    except ValueError as error:
        return Check("routes", False, f"Routes {text[:200]!r}: {error}", remedy)
    problems = []
    by_region: dict[str, list[str]] = {}
    for country, region in routes.items():
        by_region.setdefault(region, []).append(country)
    for region, countries in by_region.items():
        entry = f"{region}:{','.join(countries)}"
        if region not in found.regions:
            problems.append(
                f"route {entry}: {region} has no regional stack (Regions: "
                f"{', '.join(found.regions)})"
            )
        elif isinstance(found.regional.get(region), str):
            problems.append(f"route {entry}: {found.regional[region]}")
    default = found.default_region
    if default not in found.regions:
        problems.append(f"default region {default} has no regional stack")
    elif isinstance(found.regional.get(default), str):
        problems.append(f"default region {default}: {found.regional[default]}")
    if problems:
        return Check("routes", False, "; ".join(problems), remedy)
    routed = "; ".join(f"{r} ← {','.join(c)}" for r, c in by_region.items()) or "no country"
    return Check("routes", True, f"{routed}; every other viewer → {default}")


def _parsed(text: str) -> dict[str, str]:
    from shared.edge_routing import parse_routes  # the CloudFront Function's own reading

    return dict(parse_routes(text))
