"""What the lab mirrors from the stacks' templates: queue attributes and SQS event
sources from ``regional.yaml``, the origin group's failover codes from ``template.yaml``.

The lab must behave like the deployed stacks, so it reads the numbers (visibility timeouts,
redrive policies, batch sizes, batching windows, maximum concurrency, function timeouts)
from the templates rather than repeating them. Only the small subset of CloudFormation the
templates use for those numbers is resolved: literals, ``!Ref`` to a parameter's
``Default``, ``!GetAtt X.Arn``/``!Ref X`` naming a queue, and SAM ``Globals``.

Since issue 20 the queues live in the regional stack and the distribution in the edge
stack: ``TemplateSpec.load`` given either file reads its sibling for the other half, and
``from_text`` takes the edge stack's text as ``edge_text`` (one text holding both, as the
lab's tests write it, still works).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml

# The two stacks' files, side by side at the top of the repository.
EDGE_TEMPLATE: Final = "template.yaml"
REGIONAL_TEMPLATE: Final = "regional.yaml"
# The queues edgefill's regional stack declares, by logical ID; the lab creates exactly these.
QUEUE_IDS: Final = ("BackfillQueue", "BackfillDLQ", "PrewarmQueue", "PrewarmDLQ")
# Queue attributes the lab copies as they are (SSE settings are meaningless in moto).
_COPIED_ATTRIBUTES: Final = (
    "DelaySeconds",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "VisibilityTimeout",
)
# CloudFront's managed AllViewer origin request policy: the only one that forwards Host.
ALL_VIEWER_POLICY_ID: Final = "216adef6-5c7f-47e4-b989-5492eafa07d3"
# Lambda's defaults for an SQS event source when the template leaves them out.
_DEFAULT_BATCH_SIZE: Final = 10
_DEFAULT_FUNCTION_TIMEOUT: Final = 3


class TemplateError(ValueError):
    """A template lacks something the lab needs, or uses a form it cannot resolve."""


# libyaml's loader where PyYAML was built with it (its wheels are): each lab reads both
# templates when it starts: 0.21 s of CPU with the pure-Python loader, 0.03 s with this one.
_SafeLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _CfnLoader(_SafeLoader):
    """A YAML loader that turns CloudFormation short tags (``!Ref``, ``!GetAtt``...) into
    their long JSON forms instead of failing on them."""


def _construct_tag(loader: _CfnLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = suffix if suffix == "Ref" else f"Fn::{suffix}"
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if suffix == "GetAtt" and isinstance(value, str):
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_CfnLoader.add_multi_constructor("!", _construct_tag)


@dataclass(frozen=True, slots=True)
class QueueSpec:
    """One queue of the template: its attributes and, if any, its dead-letter queue."""

    logical_id: str
    attributes: Mapping[str, str]
    dead_letter_target: str | None = None  # logical ID of the DLQ
    max_receive_count: int | None = None

    @property
    def visibility_timeout(self) -> int:
        return int(self.attributes.get("VisibilityTimeout", "30"))


@dataclass(frozen=True, slots=True)
class EventSourceSpec:
    """An SQS event source of a function: which queue feeds it and how Lambda batches."""

    function_id: str
    queue_id: str
    batch_size: int
    batching_window: float
    maximum_concurrency: int | None
    function_timeout: int
    report_batch_item_failures: bool


@dataclass(frozen=True, slots=True)
class TemplateSpec:
    """The queues and SQS event sources ``template.yaml`` declares."""

    queues: Mapping[str, QueueSpec]
    event_sources: tuple[EventSourceSpec, ...]
    # The distribution's origin group: statuses from the primary that fail over, and
    # whether the origin request carries the viewer's Host (else the origin's domain).
    failover_statuses: frozenset[int] = frozenset({403, 404})
    forwards_host: bool = False

    def event_source_for(self, queue_id: str) -> EventSourceSpec:
        """The event source reading ``queue_id`` (``BackfillQueue``, ``PrewarmQueue``)."""
        for source in self.event_sources:
            if source.queue_id == queue_id:
                return source
        raise TemplateError(f"no function has an SQS event on {queue_id}")

    @classmethod
    def load(cls, path: Path) -> TemplateSpec:
        """Read ``path`` (either stack's SAM template) and its sibling, and resolve what the
        lab mirrors: the queues from ``regional.yaml``, the distribution from
        ``template.yaml``. A file holding both (no sibling needed) is read alone."""
        text = _read(path)
        if path.name == EDGE_TEMPLATE and (path.parent / REGIONAL_TEMPLATE).is_file():
            return cls.from_text(_read(path.parent / REGIONAL_TEMPLATE), edge_text=text)
        if path.name == REGIONAL_TEMPLATE and (path.parent / EDGE_TEMPLATE).is_file():
            return cls.from_text(text, edge_text=_read(path.parent / EDGE_TEMPLATE))
        return cls.from_text(text)

    @classmethod
    def from_text(cls, text: str, edge_text: str | None = None) -> TemplateSpec:
        """Resolve the queues and event sources of ``text`` (the regional stack) and the
        distribution of ``edge_text`` (the edge stack; ``None``: ``text`` holds it)."""
        document = _document(text)
        resolver = _Resolver(document)
        queues = {queue_id: resolver.queue(queue_id) for queue_id in QUEUE_IDS}
        sources = tuple(
            source
            for function_id, resource in document["Resources"].items()
            if isinstance(resource, dict) and resource.get("Type") == "AWS::Serverless::Function"
            for source in resolver.event_sources(function_id, resource)
        )
        edge = resolver if edge_text is None else _Resolver(_document(edge_text))
        failover, forwards_host = edge.distribution()
        return cls(queues, sources, failover, forwards_host)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as error:
        raise TemplateError(f"cannot read {path}: {error.strerror}") from None


def _document(text: str) -> dict[str, Any]:
    try:
        document = yaml.load(text, Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass
    except yaml.YAMLError as error:
        raise TemplateError(f"template is not valid YAML: {error}") from None
    if not isinstance(document, dict) or not isinstance(document.get("Resources"), dict):
        raise TemplateError("template has no Resources section")
    return document


class _Resolver:
    def __init__(self, document: dict[str, Any]) -> None:
        self._resources: dict[str, Any] = document["Resources"]
        self._parameters: dict[str, Any] = document.get("Parameters") or {}
        globals_ = document.get("Globals") or {}
        self._function_globals: dict[str, Any] = globals_.get("Function") or {}

    def value(self, raw: Any, where: str) -> Any:
        """A literal, or a ``Ref`` to a parameter resolved to its default."""
        if isinstance(raw, dict) and set(raw) == {"Ref"}:
            name = raw["Ref"]
            parameter = self._parameters.get(name)
            if not isinstance(parameter, dict) or "Default" not in parameter:
                raise TemplateError(f"{where}: !Ref {name} is not a parameter with a Default")
            return parameter["Default"]
        if isinstance(raw, dict):
            raise TemplateError(f"{where}: cannot resolve {sorted(raw)} in the lab")
        return raw

    def referenced_resource(self, raw: Any, where: str) -> str:
        """The logical ID named by ``!GetAtt X.Arn`` or ``!Ref X``."""
        if isinstance(raw, dict) and "Fn::GetAtt" in raw:
            target = raw["Fn::GetAtt"]
            if isinstance(target, list) and target:
                return str(target[0])
        if isinstance(raw, dict) and "Ref" in raw and raw["Ref"] in self._resources:
            return str(raw["Ref"])
        raise TemplateError(f"{where}: expected !GetAtt <Queue>.Arn, got {raw!r:.80}")

    def queue(self, queue_id: str) -> QueueSpec:
        resource = self._resources.get(queue_id)
        if not isinstance(resource, dict) or resource.get("Type") != "AWS::SQS::Queue":
            raise TemplateError(f"template has no AWS::SQS::Queue named {queue_id}")
        properties = resource.get("Properties") or {}
        attributes = {
            name: str(int(self.value(properties[name], f"{queue_id}.{name}")))
            for name in _COPIED_ATTRIBUTES
            if name in properties
        }
        redrive = properties.get("RedrivePolicy")
        if redrive is None:
            return QueueSpec(queue_id, attributes)
        where = f"{queue_id}.RedrivePolicy"
        target = self.referenced_resource(redrive.get("deadLetterTargetArn"), where)
        count = int(self.value(redrive.get("maxReceiveCount"), f"{where}.maxReceiveCount"))
        return QueueSpec(queue_id, attributes, target, count)

    def distribution(self) -> tuple[frozenset[int], bool]:
        """(failover statuses, Host forwarded) of the first CloudFront distribution."""
        for logical_id, resource in self._resources.items():
            if not isinstance(resource, dict) or resource.get("Type") != (
                "AWS::CloudFront::Distribution"
            ):
                continue
            config = (resource.get("Properties") or {}).get("DistributionConfig") or {}
            groups = (config.get("OriginGroups") or {}).get("Items") or []
            if not groups:
                raise TemplateError(f"{logical_id} has no origin group")
            criteria = (groups[0].get("FailoverCriteria") or {}).get("StatusCodes") or {}
            statuses = frozenset(
                int(self.value(code, f"{logical_id}.FailoverCriteria"))
                for code in criteria.get("Items") or []
            )
            if not statuses:
                raise TemplateError(f"{logical_id}'s origin group has no failover status codes")
            behavior = config.get("DefaultCacheBehavior") or {}
            policy = behavior.get("OriginRequestPolicyId")
            return statuses, policy == ALL_VIEWER_POLICY_ID
        raise TemplateError("template has no AWS::CloudFront::Distribution")

    def event_sources(self, function_id: str, resource: dict[str, Any]) -> list[EventSourceSpec]:
        properties = resource.get("Properties") or {}
        timeout = properties.get("Timeout", self._function_globals.get("Timeout"))
        timeout = int(self.value(timeout, f"{function_id}.Timeout") or _DEFAULT_FUNCTION_TIMEOUT)
        sources = []
        for name, event in (properties.get("Events") or {}).items():
            if not isinstance(event, dict) or event.get("Type") != "SQS":
                continue
            where = f"{function_id}.Events.{name}"
            props = event.get("Properties") or {}
            scaling = props.get("ScalingConfig") or {}
            concurrency = scaling.get("MaximumConcurrency")
            sources.append(
                EventSourceSpec(
                    function_id=function_id,
                    queue_id=self.referenced_resource(props.get("Queue"), f"{where}.Queue"),
                    batch_size=int(
                        self.value(
                            props.get("BatchSize", _DEFAULT_BATCH_SIZE), f"{where}.BatchSize"
                        )
                    ),
                    batching_window=float(
                        self.value(props.get("MaximumBatchingWindowInSeconds", 0), where)
                    ),
                    maximum_concurrency=(
                        None
                        if concurrency is None
                        else int(self.value(concurrency, f"{where}.ScalingConfig"))
                    ),
                    function_timeout=timeout,
                    report_batch_item_failures="ReportBatchItemFailures"
                    in (props.get("FunctionResponseTypes") or []),
                )
            )
        return sources
