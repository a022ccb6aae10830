"""A deployment as ``--stack`` finds it: the edge stack in us-east-1 and, in each region its
``Regions`` output lists, the regional stack ``RegionalStackName`` (docs/DEPLOY.md).

- ``read_deployment`` reads them all. A regional stack that cannot be read (deleted, in
  a region the credentials cannot reach) is kept as the reason, so ``doctor`` can name
  the broken region while the others are still checked; ``view`` refuses it (exit 2).
- ``view(region)`` is what a command of one region reads: the edge stack's outputs and
  parameters with the regional stack's over them (a ``StackInfo`` named after the
  regional stack), every value a command takes checked first: a queue URL must be one
  of SQS in that region or on the configured endpoint's host (``--endpoint-url``,
  ``AWS_ENDPOINT_URL``), a bucket a bucket name, a host a host name. A hostile output
  is an ``OperatorError`` naming the stack and the output.
- A stack deployed before the split (one stack holding everything, no ``Regions``
  output) is a deployment of one region: itself."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit

from edgefill.aws_regions import UnknownRegion, check_region
from edgefill.operations import OperatorError
from edgefill.stack import StackInfo, read_stack

EDGE_REGION: Final = "us-east-1"  # Lambda@Edge: the edge stack lives here
QUEUE_OUTPUTS: Final = ("BackfillQueueUrl", "BackfillDLQUrl", "PrewarmQueueUrl", "PrewarmDLQUrl")
HOST_OUTPUTS: Final = ("DistributionDomain", "ViewerHost")
_STACK_NAME: Final = re.compile(r"[A-Za-z][-A-Za-z0-9]{0,127}")
_BUCKET: Final = re.compile(r"(?!xn--)(?!.*\.\.)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_DISTRIBUTION_ID: Final = re.compile(r"[A-Z0-9]{5,32}")


@dataclass(frozen=True, slots=True)
class Deployment:
    edge: StackInfo
    regions: tuple[str, ...]  # the Regions output, in its order
    regional: dict[str, StackInfo | str] = field(default_factory=dict)  # or why not read
    default_region: str = ""
    single_stack: bool = False  # a stack from before the split: edge and regional in one
    endpoint_hosts: frozenset[str] = frozenset()

    @property
    def regional_name(self) -> str:
        return self.edge.output("RegionalStackName") or self.edge.name

    def selected(self, region: str | None) -> list[str]:
        """``[region]`` (``--region``), else every region of the deployment. A region the
        deployment does not have is exit 2."""
        if region is None or self.single_stack:
            return list(self.regions)
        if region not in self.regions:
            raise OperatorError(
                f"--region {region}: stack {self.edge.name!r} has no regional stack there "
                f"(its Regions output lists {', '.join(self.regions)})"
            )
        return [region]

    def checked_edge(self) -> StackInfo:
        """The edge stack, its outputs checked (what ``warm``, ``invalidate`` and
        ``prewarm --host`` read: a broken regional stack does not stop them)."""
        check_outputs(self.edge, self.regions[0], self.endpoint_hosts)
        return self.edge

    def view(self, region: str) -> StackInfo:
        """The edge stack and ``region``'s regional stack in one, its values checked."""
        regional = self.regional.get(region)
        if regional is None or isinstance(regional, str):
            raise OperatorError(regional or f"stack {self.edge.name!r} lists no region {region!r}")
        check_outputs(self.edge, region, self.endpoint_hosts)
        if regional is not self.edge:
            check_outputs(regional, region, self.endpoint_hosts)
        return StackInfo(
            name=regional.name,
            status=regional.status,
            outputs={**self.edge.outputs, **regional.outputs},
            parameters={**self.edge.parameters, **regional.parameters},
        )


def endpoint_hosts(endpoint_url: str | None) -> frozenset[str]:
    """The hosts the configuration names for AWS: ``--endpoint-url`` and botocore's
    endpoint variables (the lab's moto)."""
    urls = [endpoint_url] + [
        os.environ.get(name) for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SQS")
    ]
    return frozenset(str(urlsplit(url).hostname).lower() for url in urls if url)


def read_deployment(
    cloudformation_in: Callable[[str], Any], name: str, endpoint_url: str | None = None
) -> Deployment:
    """The deployment whose edge stack is ``name`` (``cloudformation_in(region)``: a
    CloudFormation client there). ``OperatorError`` when the edge stack cannot be read or
    lacks ``Regions``/``RegionalStackName``, or lists a region no partition knows."""
    hosts = endpoint_hosts(endpoint_url)
    edge = read_stack(cloudformation_in(EDGE_REGION), name)
    listed = edge.output("Regions")
    if listed is None:
        if not any(edge.output(o) for o in QUEUE_OUTPUTS):
            raise OperatorError(
                f"stack {name!r} has no Regions output (an edge stack lists its regions) "
                "and no queue outputs: is it an edgefill stack?"
            )
        # Its queues are in its own region (us-east-1); its bucket may be elsewhere
        # (BucketRegion), which the commands reading the bucket take from the output.
        return Deployment(edge, (EDGE_REGION,), {EDGE_REGION: edge}, EDGE_REGION, True, hosts)
    regions = tuple(r.strip() for r in listed.split(","))
    for region in regions:
        try:
            check_region(region)
        except UnknownRegion as error:
            raise OperatorError(f"stack {name!r} output Regions: {error}") from None
    if len(set(regions)) != len(regions):
        raise OperatorError(f"stack {name!r} output Regions lists a region twice: {listed!r}")
    regional_name = edge.output("RegionalStackName")
    if regional_name is None:
        raise OperatorError(f"stack {name!r} has no RegionalStackName output")
    if not _STACK_NAME.fullmatch(regional_name):
        raise OperatorError(
            f"stack {name!r} output RegionalStackName: {regional_name[:80]!r} is not a stack name"
        )
    default = edge.output("DefaultRegion") or regions[0]
    regional: dict[str, StackInfo | str] = {}
    for region in regions:
        try:
            found = read_stack(cloudformation_in(region), regional_name)
        except OperatorError as error:
            regional[region] = f"region {region}: regional stack {regional_name!r}: {error}"
            continue
        named = found.output("Region")
        if named != region:
            regional[region] = (
                f"region {region}: stack {regional_name!r} output Region is {named!r}, "
                f"not {region!r}"
            )
            continue
        regional[region] = found
    return Deployment(edge, regions, regional, default, False, hosts)


def check_outputs(stack: StackInfo, region: str, hosts: Iterable[str]) -> None:
    """Every output of ``stack`` a command takes, checked (``OperatorError`` naming the
    stack and the output); ``region``: where its queues must be."""

    def refuse(output: str, why: str) -> OperatorError:
        return OperatorError(f"stack {stack.name!r} output {output}: {why}")

    for output in QUEUE_OUTPUTS:
        _check_queue(stack, output, region, set(hosts))
    bucket = stack.output("BucketName")
    if bucket is not None and (not _BUCKET.fullmatch(bucket) or re.fullmatch(r"[\d.]+", bucket)):
        raise refuse("BucketName", f"{bucket[:80]!r} is not a bucket name")
    for output in ("Region", "BucketRegion"):
        value = stack.output(output)
        if value is not None:
            try:
                check_region(value)
            except UnknownRegion as error:
                raise refuse(output, str(error)) from None
    from shared.messages import is_host_name

    for output in HOST_OUTPUTS:
        value = stack.output(output)
        if value is not None and not is_host_name(value):
            raise refuse(output, f"{value[:80]!r} is not a host name")
    distribution = stack.output("DistributionId")
    if distribution is not None and not _DISTRIBUTION_ID.fullmatch(distribution):
        raise refuse("DistributionId", f"{distribution[:80]!r} is not a distribution ID")


def _check_queue(stack: StackInfo, output: str, region: str, allowed: set[str]) -> None:
    from shared.queues import InvalidQueueUrl, region_in_queue_url

    url = stack.output(output)
    if url is None:
        return
    where = f"stack {stack.name!r} output {output}"
    try:
        named = region_in_queue_url(url)
    except InvalidQueueUrl as error:
        raise OperatorError(f"{where}: {error}") from None
    host = str(urlsplit(url).hostname).lower()
    if named is None and host not in allowed:
        raise OperatorError(
            f"{where}: {url[:120]!r} is on {host}, neither SQS nor the configured endpoint "
            "(--endpoint-url, AWS_ENDPOINT_URL)"
        )
    if named is not None and named != region:
        raise OperatorError(f"{where}: {url[:120]!r} is a queue in {named}, not in {region}")


def required(stack: StackInfo, output: str) -> str:
    """The output's value, else exit 2 naming the stack and the output."""
    value = stack.output(output)
    if value is None:
        raise OperatorError(f"stack {stack.name!r} has no {output} output")
    return value
