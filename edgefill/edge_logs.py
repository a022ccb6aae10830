"""The edge function's log groups: one in each region where a replica ran, kept for ever
unless someone sets their retention.

Lambda@Edge logs in CloudWatch Logs of the region where each replica ran, to the group
``/aws/lambda/us-east-1.<function>``, which Lambda creates on the first line it writes
there, with no retention. CloudFormation creates resources in the stack's region only, so
the template cannot set it. This module finds those groups (``find_edge_log_groups``) and
sets their retention (``set_retention``, ``edgefill edge-logs``); the doctor's
``edge-logs`` check reports the ones that never expire.

Regions: the stack's ``DashboardEdgeRegions`` parameter (the regions of CloudFront's
regional edge caches, where replicas run), or the caller's list, or every region enabled
in the account (``all``, EC2 ``DescribeRegions``).

botocore's errors are imported where they are caught (the clients have loaded botocore by
then): ``edgefill edge-logs --help`` reads ``RETENTION_DAYS`` here without loading it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from edgefill.stack import StackInfo

# The template's DashboardEdgeRegions default (tests/unit/test_edge_logs.py keeps them
# equal): the regions of CloudFront's regional edge caches.
DEFAULT_EDGE_REGIONS: Final = (
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "ca-central-1",
    "sa-east-1",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eu-central-1",
    "eu-north-1",
    "ap-south-1",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-northeast-1",
    "ap-northeast-2",
)
# As the workers' own log groups (template.yaml).
DEFAULT_RETENTION_DAYS: Final = 30
# The values CloudWatch Logs accepts for retentionInDays (PutRetentionPolicy).
RETENTION_DAYS: Final = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557,
    2922, 3288, 3653,
)  # fmt: skip
# Regions read at once (one DescribeLogGroups each).
_READERS: Final = 8

LogsFor = Callable[[str], Any]  # region → a CloudWatch Logs client there


@dataclass(frozen=True, slots=True)
class EdgeLogGroup:
    """The edge function's log group in one region."""

    region: str
    name: str
    retention_days: int | None  # None: never expires
    stored_bytes: int = 0


# Per region: the group, None where it does not exist (no replica logged there yet), or
# the reason it could not be read.
Found = Mapping[str, EdgeLogGroup | None | str]


def edge_function_name(stack: StackInfo) -> str | None:
    """The edge function's name, from the ``EdgeFunctionVersionArn`` output
    (``arn:aws:lambda:us-east-1:123456789012:function:<name>:<version>``)."""
    parts = (stack.output("EdgeFunctionVersionArn") or "").split(":")
    return parts[6] if len(parts) >= 7 and parts[5] == "function" and parts[6] else None


def edge_log_group(function_name: str) -> str:
    """Where the replicas of ``function_name`` log, in every region."""
    return f"/aws/lambda/us-east-1.{function_name}"


def edge_regions(stack: StackInfo) -> tuple[str, ...]:
    """The stack's ``DashboardEdgeRegions`` (its default when the stack names none)."""
    listed = stack.parameters.get("DashboardEdgeRegions", "")
    regions = tuple(dict.fromkeys(r.strip() for r in listed.split(",") if r.strip()))
    return regions or DEFAULT_EDGE_REGIONS


def find_edge_log_groups(logs_for: LogsFor, group: str, regions: Iterable[str]) -> Found:
    """The group ``group`` in each of ``regions``, read in parallel; a failed read is kept
    as its reason (one region's refusal does not hide the others)."""
    from concurrent.futures import ThreadPoolExecutor

    ordered = list(dict.fromkeys(regions))
    with ThreadPoolExecutor(_READERS, "edge-logs") as pool:
        answers = list(pool.map(lambda region: _find(logs_for, group, region), ordered))
    return dict(zip(ordered, answers, strict=True))


@dataclass(frozen=True, slots=True)
class RetentionChange:
    region: str
    action: str  # "set", "created", "unchanged", "failed"
    detail: str = ""


def set_retention(
    logs_for: LogsFor, group: str, found: Found, days: int, create_missing: bool = False
) -> list[RetentionChange]:
    """Set ``days`` of retention on ``group`` wherever ``found`` has it (and, with
    ``create_missing``, create it with that retention where it does not exist yet, so the
    first replica to log there writes into a group that expires)."""
    if days not in RETENTION_DAYS:
        raise ValueError(f"CloudWatch Logs keeps logs for one of {RETENTION_DAYS} days, not {days}")
    changes = []
    for region, state in found.items():
        if isinstance(state, str):
            changes.append(RetentionChange(region, "failed", state))
            continue
        if state is None and not create_missing:
            continue
        if state is not None and state.retention_days == days:
            changes.append(RetentionChange(region, "unchanged", f"{days} days"))
            continue
        changes.append(_apply(logs_for(region), region, group, days, created=state is None))
    return changes


def _find(logs_for: LogsFor, group: str, region: str) -> EdgeLogGroup | None | str:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        pages = logs_for(region).get_paginator("describe_log_groups")
        for page in pages.paginate(logGroupNamePrefix=group):
            for found in page.get("logGroups", []):
                if found.get("logGroupName") == group:
                    return EdgeLogGroup(
                        region,
                        group,
                        found.get("retentionInDays"),
                        int(found.get("storedBytes", 0) or 0),
                    )
    except (ClientError, BotoCoreError) as error:
        return f"DescribeLogGroups in {region} failed: {_reason(error)}"
    return None


def _apply(logs: Any, region: str, group: str, days: int, created: bool) -> RetentionChange:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        if created:
            logs.create_log_group(logGroupName=group)
        logs.put_retention_policy(logGroupName=group, retentionInDays=days)
    except (ClientError, BotoCoreError) as error:
        return RetentionChange(region, "failed", _reason(error))
    return RetentionChange(region, "created" if created else "set", f"{days} days")


def _reason(error: Exception) -> str:
    from botocore.exceptions import ClientError

    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        return f"{details.get('Code', '?')}: {details.get('Message', '')}".strip()
    return f"{type(error).__name__}: {error}"
