"""Everything the doctor reads from AWS, gathered once, in a fixed order.

A read that fails does not stop the others: its reason is kept where the fact would be,
and the checks that need it fail naming it. Reads, by service:

- CloudFormation ``DescribeStacks``: status, outputs, parameters;
- CloudFront ``GetDistributionConfig`` (the stack's ``DistributionId`` output, else its
  ``ExistingDistributionId`` parameter, else ``--distribution-id``) and ``GetCachePolicy``
  for each cache policy a behaviour uses;
- S3 ``GetBucketPolicy`` on the ``BucketName`` output;
- SQS ``GetQueueAttributes`` on the four queues;
- Lambda ``ListEventSourceMappings`` by queue ARN (which also names the workers);
- CloudWatch ``GetMetricData``: the workers' errors and throttles over the last hour;
- CloudWatch Logs ``DescribeLogGroups`` in each edge region (``edgefill/edge_logs.py``):
  the edge function's log groups and their retention.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Final, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from edgefill.edge_logs import (
    Found,
    LogsFor,
    edge_function_name,
    edge_log_group,
    edge_regions,
    find_edge_log_groups,
)
from edgefill.stack import StackInfo

# Queue role → the stack output naming it.
QUEUE_OUTPUTS: Final = {
    "backfill": "BackfillQueueUrl",
    "backfill-dlq": "BackfillDLQUrl",
    "prewarm": "PrewarmQueueUrl",
    "prewarm-dlq": "PrewarmDLQUrl",
}
WORKER_QUEUES: Final = ("backfill", "prewarm")
METRIC_WINDOW: Final = timedelta(hours=1)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Clients:
    cloudformation: Any
    cloudfront: Any
    s3: Any
    sqs: Any
    lambda_: Any
    cloudwatch: Any
    logs: LogsFor | None = None  # region → CloudWatch Logs client (the edge's log groups)


@dataclass
class Facts:
    """What the doctor knows; a ``str`` in place of a fact is why it could not be read."""

    stack: StackInfo
    distribution_id: str | None = None
    distribution: dict[str, Any] | str | None = None  # DistributionConfig
    cache_policies: dict[str, dict[str, Any] | str] = field(default_factory=dict)
    bucket_policy: dict[str, Any] | str | None = None
    queues: dict[str, dict[str, str] | str] = field(default_factory=dict)  # role → attributes
    mappings: dict[str, list[dict[str, Any]] | str] = field(default_factory=dict)
    worker_metrics: dict[str, dict[str, float]] | str = field(default_factory=dict)
    edge_logs: Found | str | None = None  # region → the edge log group (None: not read)
    region: str | None = None  # the regional stack's region (None: a single-stack deployment)

    def output(self, key: str) -> str | None:
        return self.stack.output(key)


def gather(
    clients: Clients,
    stack: StackInfo,
    distribution_id: str | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    region: str | None = None,
) -> Facts:
    facts = Facts(stack=stack, region=region)
    facts.distribution_id = (
        distribution_id
        or stack.output("DistributionId")
        or stack.parameters.get("ExistingDistributionId")
        or None
    )
    if facts.distribution_id:
        facts.distribution = _read(
            lambda: clients.cloudfront.get_distribution_config(Id=facts.distribution_id)[
                "DistributionConfig"
            ],
            "GetDistributionConfig",
        )
    if isinstance(facts.distribution, dict):
        for policy_id in _cache_policy_ids(facts.distribution):
            facts.cache_policies[policy_id] = _read(
                partial(_cache_policy, clients.cloudfront, policy_id), "GetCachePolicy"
            )
    bucket = stack.output("BucketName")
    if bucket:
        facts.bucket_policy = _read(
            lambda: json.loads(clients.s3.get_bucket_policy(Bucket=bucket)["Policy"]),
            "GetBucketPolicy",
        )
    for role, output in QUEUE_OUTPUTS.items():
        url = stack.output(output)
        if url:
            facts.queues[role] = _read(
                partial(_queue_attributes, clients.sqs, url), "GetQueueAttributes"
            )
    for role in WORKER_QUEUES:
        attributes = facts.queues.get(role)
        if isinstance(attributes, dict) and attributes.get("QueueArn"):
            arn = attributes["QueueArn"]
            facts.mappings[role] = _read(
                partial(_all_mappings, clients.lambda_, arn), "ListEventSourceMappings"
            )
    functions = sorted(
        {
            mapping["FunctionArn"].split(":")[6]
            for found in facts.mappings.values()
            if isinstance(found, list)
            for mapping in found
            if mapping.get("FunctionArn", "").count(":") >= 6
        }
    )
    if functions:
        facts.worker_metrics = _read(
            lambda: _errors_and_throttles(clients.cloudwatch, functions, now()), "GetMetricData"
        )
    facts.edge_logs = _edge_logs(clients.logs, stack)
    return facts


def _edge_logs(logs: LogsFor | None, stack: StackInfo) -> Found | str | None:
    if logs is None:
        return None
    function = edge_function_name(stack)
    if function is None:
        return "the stack has no EdgeFunctionVersionArn output naming the edge function"
    return find_edge_log_groups(logs, edge_log_group(function), edge_regions(stack))


def _read(call: Callable[[], T], what: str) -> T | str:
    """``call()``, or the reason it failed (AWS's error code and message)."""
    try:
        return call()
    except ClientError as error:
        details = error.response.get("Error", {})
        return f"{what} failed: {details.get('Code', '?')}: {details.get('Message', '')}".strip()
    except (BotoCoreError, ValueError, KeyError) as error:
        return f"{what} failed: {type(error).__name__}: {error}"


def _cache_policy(cloudfront: Any, policy_id: str) -> dict[str, Any]:
    policy: dict[str, Any] = cloudfront.get_cache_policy(Id=policy_id)["CachePolicy"]
    return policy


def _queue_attributes(sqs: Any, url: str) -> dict[str, str]:
    names = ["QueueArn", "RedrivePolicy", "ApproximateNumberOfMessages"]
    attributes: dict[str, str] = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)[
        "Attributes"
    ]
    return attributes


def _cache_policy_ids(config: dict[str, Any]) -> list[str]:
    behaviors = [config.get("DefaultCacheBehavior", {})]
    behaviors += config.get("CacheBehaviors", {}).get("Items", []) or []
    return sorted({b["CachePolicyId"] for b in behaviors if b.get("CachePolicyId")})


def _all_mappings(lambda_: Any, queue_arn: str) -> list[dict[str, Any]]:
    mappings: list[dict[str, Any]] = []
    marker: str | None = None
    for _ in range(100):  # bound: 100 pages of mappings for one queue is far past real use
        kwargs = {"EventSourceArn": queue_arn, **({"Marker": marker} if marker else {})}
        page = lambda_.list_event_source_mappings(**kwargs)
        mappings.extend(page.get("EventSourceMappings", []))
        marker = page.get("NextMarker")
        if not marker:
            break
    return mappings


def _errors_and_throttles(
    cloudwatch: Any, functions: list[str], now: datetime
) -> dict[str, dict[str, float]]:
    queries = [
        {
            "Id": f"m{index}{metric[0].lower()}",
            "MetricStat": {
                "Metric": {
                    "Namespace": "AWS/Lambda",
                    "MetricName": metric,
                    "Dimensions": [{"Name": "FunctionName", "Value": function}],
                },
                "Period": int(METRIC_WINDOW.total_seconds()),
                "Stat": "Sum",
            },
            "Label": f"{function} {metric}",
        }
        for index, function in enumerate(functions)
        for metric in ("Errors", "Throttles")
    ]
    answer = cloudwatch.get_metric_data(
        MetricDataQueries=queries, StartTime=now - METRIC_WINDOW, EndTime=now
    )
    by_id = {result["Id"]: sum(result.get("Values", [])) for result in answer["MetricDataResults"]}
    return {
        function: {
            metric: by_id.get(f"m{index}{metric[0].lower()}", 0.0)
            for metric in ("Errors", "Throttles")
        }
        for index, function in enumerate(functions)
    }
