"""The lab's deployment as CloudFormation describes it: an edge stack and regional stacks in moto.

A real deployment is one edge stack in us-east-1 and one regional stack per bucket region
(docs/DEPLOY.md); the CLI finds everything from their outputs (``edgefill --stack``). The
lab registers the same stacks in moto, each in its own region, whose outputs carry the
contract's names (docs/CONTRACTS.md §8) and the lab's real values, so every README
command that takes ``--stack edgefill`` runs against the lab as written.

moto has no resource the lab's pieces could be created from (the POPs, the origin and
the pollers are the lab's own servers), so each stack holds one resource CloudFormation
treats as nothing (``AWS::CloudFormation::WaitConditionHandle``) and literal outputs.

``register_stacks`` takes the edge stack's outputs and a plain list of per-region
descriptions, each the regional stack's outputs by their contract names: a lab with
several regions passes several."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

EDGE_REGION: Final = "us-east-1"
# The contract's outputs (docs/CONTRACTS.md §8), in the order the stacks list them.
EDGE_OUTPUTS: Final = (
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
)
REGIONAL_OUTPUTS: Final = (
    "Region",
    "BucketName",
    "BucketRegion",
    "BackfillQueueUrl",
    "BackfillDLQUrl",
    "PrewarmQueueUrl",
    "PrewarmDLQUrl",
    "EdgeStackName",
    "DashboardUrl",
)
# Outputs that may be empty: no routes (every viewer to the default region).
_MAY_BE_EMPTY: Final = frozenset({"Routes"})


@dataclass(frozen=True, slots=True)
class LabStacks:
    """The stacks registered: the edge stack's name and each region's stack name."""

    edge: str
    regional: dict[str, str]  # region → stack name

    def names(self) -> list[str]:
        return [f"{self.edge} ({EDGE_REGION})"] + [
            f"{name} ({region})" for region, name in self.regional.items()
        ]


def stack_template(description: str, outputs: Mapping[str, str]) -> str:
    """A template of one no-op resource and ``outputs`` as literal values."""
    return json.dumps(
        {
            "AWSTemplateFormatVersion": "2010-09-09",
            "Description": description,
            "Resources": {"Lab": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
            "Outputs": {key: {"Value": value} for key, value in outputs.items()},
        }
    )


def _checked(
    what: str, outputs: Mapping[str, str], names: Sequence[str], extra: Sequence[str] = ()
) -> dict[str, str]:
    missing = [n for n in names if n not in outputs or (not outputs[n] and n not in _MAY_BE_EMPTY)]
    unknown = [n for n in outputs if n not in names and n not in extra]
    if missing or unknown:
        raise ValueError(
            f"{what}: "
            + "; ".join(
                part
                for part in (
                    f"missing outputs {', '.join(missing)}" if missing else "",
                    f"unknown outputs {', '.join(unknown)}" if unknown else "",
                )
                if part
            )
        )
    return {key: str(outputs[key]) for key in (*names, *[e for e in extra if e in outputs])}


def register_stacks(
    cloudformation_in: Callable[[str], Any],
    edge_outputs: Mapping[str, str],
    regions: Sequence[Mapping[str, str]],
    edge_parameters: Mapping[str, str] | None = None,
    regional_parameters: Mapping[str, Mapping[str, str]] | None = None,
) -> LabStacks:
    """Create the edge stack (named by each region's ``EdgeStackName``) in us-east-1 and,
    for each region description (the regional outputs by name), the stack
    ``RegionalStackName`` in that ``Region``. ``cloudformation_in(region)`` is a
    CloudFormation client of that region; the parameters only describe the stacks
    (moto's DescribeStacks returns them, as AWS would: ``KeyPrefix``, ``PrewarmTargets``).

    ``ValueError`` when a description lacks a contract output, names another one, or
    disagrees with the edge stack (``Regions``, ``EdgeStackName``, a duplicate region)."""
    edge = _checked("edge stack", edge_outputs, EDGE_OUTPUTS)
    described = [_checked(f"region {i + 1}", r, REGIONAL_OUTPUTS) for i, r in enumerate(regions)]
    listed = [r["Region"] for r in described]
    if len(set(listed)) != len(listed):
        raise ValueError(f"a region is described twice: {', '.join(listed)}")
    if edge["Regions"] != ",".join(listed):
        raise ValueError(f"the edge stack's Regions {edge['Regions']!r} are not {listed}")
    names = {r["EdgeStackName"] for r in described}
    if len(names) != 1:
        raise ValueError(f"the regions name different edge stacks: {sorted(names)}")
    edge_name = names.pop()
    _create(
        cloudformation_in(EDGE_REGION),
        edge_name,
        "edgefill edge stack (lab)",
        edge,
        edge_parameters or {},
    )
    regional: dict[str, str] = {}
    for outputs in described:
        region = outputs["Region"]
        _create(
            cloudformation_in(region),
            edge["RegionalStackName"],
            f"edgefill regional stack for {region} (lab)",
            outputs,
            (regional_parameters or {}).get(region, {}),
        )
        regional[region] = edge["RegionalStackName"]
    return LabStacks(edge_name, regional)


def _create(
    cloudformation: Any,
    name: str,
    description: str,
    outputs: Mapping[str, str],
    parameters: Mapping[str, str],
) -> None:
    body = json.loads(stack_template(description, outputs))
    body["Parameters"] = {key: {"Type": "String"} for key in parameters}
    cloudformation.create_stack(
        StackName=name,
        TemplateBody=json.dumps(body),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
    )


def delete_regional_stack(cloudformation: Any, name: str) -> None:
    """Delete one regional stack (the tests' deleted region)."""
    cloudformation.delete_stack(StackName=name)
