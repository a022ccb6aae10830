"""The viewer-request function's routing: its configuration, and its code as deployed.

``edge_viewer_request/select_origin.js`` is the body of an ``Fn::Sub`` in template.yaml.
Its only placeholders are ``'${Routes}'``, ``'${DefaultRegion}'`` and
``'${FailoverStatusCodes}'``; ``render`` substitutes them exactly as CloudFormation would,
so the lab and the Node tests run the code the distribution runs. ``parse_routes`` reads
the ``Routes`` string (``"ap-southeast-1:SG,MY;eu-central-1:DE,FR"``) the way the function
does, but refuses what the function would only ignore, naming the entry: ``doctor`` and
the lab use it to say what is wrong before a viewer meets it. Pure and standard library
only.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path
from typing import Final

# The function's source, relative to the repository root.
FUNCTION_SOURCE: Final = (
    Path(__file__).resolve().parents[1] / "edge_viewer_request" / ("select_origin.js")
)
# The three names the function's Fn::Sub substitutes; any other ${...} in it is an error.
PLACEHOLDERS: Final = ("Routes", "DefaultRegion", "FailoverStatusCodes")
# The static origin group's failover codes (template.yaml), the function's default too.
FAILOVER_STATUS_CODES: Final = (403, 404, 500, 502, 503, 504)
# The codes CloudFront accepts as an origin group's failover criteria.
FAILOVER_CODES_ALLOWED: Final = frozenset({400, 403, 404, 416, 500, 502, 503, 504})
# An AWS region code (the templates' AllowedPattern): us-east-1, ap-southeast-5,
# us-gov-west-1. The function applies the same pattern.
REGION: Final = re.compile(r"[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]{1,2}")
# An ISO 3166-1 alpha-2 code as CloudFront-Viewer-Country carries it.
COUNTRY: Final = re.compile(r"[A-Z]{2}")
# Fn::Sub's syntax: ${Name} is replaced, ${!Name} is written as ${Name}.
_SUB: Final = re.compile(r"\$\{(!?)([^}]*)\}")


def parse_routes(text: str, regions: Collection[str] | None = None) -> dict[str, str]:
    """The country → region map of a ``Routes`` string; ``""`` is the empty map.

    Raises ``ValueError`` naming the entry for a malformed entry, an unknown region code
    (or, when ``regions`` is given, a region that is not one of them), a region listed
    twice, and a country code that is malformed or listed twice.
    """
    routes: dict[str, str] = {}
    if text == "":
        return routes
    seen: set[str] = set()
    for number, entry in enumerate(text.split(";"), start=1):
        region, colon, countries = entry.partition(":")
        where = f"Routes entry {number} ({entry!r})"
        if not colon or ":" in countries:
            raise ValueError(f"{where}: expected <region>:<CC>[,<CC>...]")
        if not REGION.fullmatch(region):
            raise ValueError(f"{where}: {region!r} is not an AWS region code")
        if regions is not None and region not in regions:
            known = ", ".join(sorted(regions)) or "none"
            raise ValueError(f"{where}: region {region} has no slot (regions: {known})")
        if region in seen:
            raise ValueError(f"{where}: region {region} is listed twice")
        seen.add(region)
        for country in countries.split(","):
            if not COUNTRY.fullmatch(country):
                raise ValueError(
                    f"{where}: {country!r} is not an ISO 3166-1 alpha-2 code (two capitals)"
                )
            if country in routes:
                raise ValueError(
                    f"{where}: country {country} is already routed to {routes[country]}"
                )
            routes[country] = region
    return routes


def format_routes(routes: Mapping[str, str]) -> str:
    """The ``Routes`` string of a country → region map, regions in first-seen order."""
    by_region: dict[str, list[str]] = {}
    for country, region in routes.items():
        by_region.setdefault(region, []).append(country)
    text = ";".join(f"{region}:{','.join(countries)}" for region, countries in by_region.items())
    parse_routes(text)  # the same refusals as a Routes string typed by hand
    return text


def parse_failover_codes(text: str) -> tuple[int, ...]:
    """The status codes of a ``FailoverStatusCodes`` string (``"403,404,500"``)."""
    codes: list[int] = []
    for item in text.split(","):
        if not re.fullmatch(r"[0-9]{3}", item) or int(item) not in FAILOVER_CODES_ALLOWED:
            allowed = ",".join(str(c) for c in sorted(FAILOVER_CODES_ALLOWED))
            raise ValueError(f"FailoverStatusCodes: {item!r} is not one of {allowed}")
        if int(item) in codes:
            raise ValueError(f"FailoverStatusCodes: {item} is listed twice")
        codes.append(int(item))
    return tuple(codes)


def render(
    code: str,
    routes: str | Mapping[str, str],
    default_region: str,
    failover_codes: str | Iterable[int] = FAILOVER_STATUS_CODES,
    *,
    check: bool = True,
) -> str:
    """``code`` with its placeholders substituted as ``Fn::Sub`` substitutes them.

    ``routes`` is a ``Routes`` string or a country → region map; ``failover_codes`` a
    ``FailoverStatusCodes`` string or the codes. The values are checked first (the
    function would ignore a bad one and keep the static origin group) unless ``check``
    is false, which substitutes any text as CloudFormation would; a ``${...}``
    other than the three placeholders raises ``ValueError`` naming it, as CloudFormation
    refuses a Sub naming nothing it knows.
    """
    routes_text = routes if isinstance(routes, str) else format_routes(routes)
    codes_text = (
        failover_codes if isinstance(failover_codes, str) else ",".join(map(str, failover_codes))
    )
    if check:
        parse_routes(routes_text)
        if not REGION.fullmatch(default_region):
            raise ValueError(f"DefaultRegion: {default_region!r} is not an AWS region code")
        parse_failover_codes(codes_text)
    values = {
        "Routes": routes_text,
        "DefaultRegion": default_region,
        "FailoverStatusCodes": codes_text,
    }

    def substitute(match: re.Match[str]) -> str:
        literal, name = match[1], match[2]
        if literal:
            return "${" + name + "}"
        if name not in values:
            raise ValueError(f"the function's code names ${{{name}}}, not a placeholder")
        return values[name]

    return _SUB.sub(substitute, code)


def placeholders(code: str) -> list[str]:
    """The names of the ``${...}`` substitutions in ``code`` (``${!...}`` excluded)."""
    return [m[2] for m in _SUB.finditer(code) if not m[1]]


def function_code() -> str:
    """The viewer-request function's source, unrendered."""
    return FUNCTION_SOURCE.read_text(encoding="utf-8")
