"""The eleven checks of ``edgefill doctor``: facts in, one verdict each out.

Each verdict is pass or fail with one line of detail and, when it fails, one line of
remedy. A check whose facts could not be read fails naming the read that failed.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any, Final

from edge_origin_request.failover import MARKER_HEADER as MARKER
from edgefill.doctor.facts import WORKER_QUEUES, Facts
from edgefill.edge_logs import DEFAULT_RETENTION_DAYS, EdgeLogGroup
from shared.keys import RESERVED_PREFIX

# An edge stack's and a regional stack's outputs (docs/CONTRACTS.md §8).
EDGE_OUTPUTS: Final = (
    "DistributionId",
    "DistributionArn",
    "DistributionDomain",
    "ViewerHost",
    "Regions",
    "DefaultRegion",
    "RegionalStackName",
    "EdgeFunctionVersionArn",
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
)
REGION_HEADER: Final = "x-edgefill-region"
REQUIRED_OUTPUTS: Final = (
    "BackfillQueueUrl",
    "BackfillDLQUrl",
    "PrewarmQueueUrl",
    "PrewarmDLQUrl",
    "BucketName",
    "DistributionDomain",
    "EdgeFunctionVersionArn",
)
GOOD_STATES: Final = ("CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE")
# Viewer protocol policies under which CloudFront reaches an S3 origin over HTTPS only.
HTTPS_ONLY_VIEWERS: Final = ("redirect-to-https", "https-only")
CLOUDFRONT: Final = "cloudfront.amazonaws.com"


@dataclass(frozen=True, slots=True)
class Check:
    check: str
    ok: bool
    detail: str
    remedy: str = ""
    region: str | None = None  # a regional stack's region; None: the edge (or single) stack

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    def of(self, region: str | None) -> Check:
        return Check(self.check, self.ok, self.detail, self.remedy, region)


def run_checks(facts: Facts) -> list[Check]:
    return [check(facts) for check in CHECKS]


# ---------------------------------------------------------------- 1. the stack
def stack_check(facts: Facts, required: tuple[str, ...] = REQUIRED_OUTPUTS) -> Check:
    name, status = facts.stack.name, facts.stack.status
    missing = [key for key in required if not facts.output(key)]
    if status not in GOOD_STATES and status != "UPDATE_ROLLBACK_COMPLETE":
        return Check(
            "stack",
            False,
            f"stack {name} is {status or 'in no known state'}",
            "wait for the deployment to finish, or fix what failed (CloudFormation events) "
            "and run `sam deploy` again",
        )
    if missing:
        return Check(
            "stack",
            False,
            f"stack {name} ({status}) lacks the outputs {', '.join(missing)}",
            "deploy this repository's template.yaml (`sam deploy`); is it an edgefill stack?",
        )
    note = " (the last update was rolled back)" if status == "UPDATE_ROLLBACK_COMPLETE" else ""
    return Check("stack", True, f"stack {name} is {status}{note}, all outputs present")


# ---------------------------------------------------------------- 2. the origin group
@dataclass(frozen=True, slots=True)
class Wiring:
    """An origin group a cache behaviour targets, with its two origins."""

    group: dict[str, Any]
    behaviors: list[dict[str, Any]]
    primary: dict[str, Any] | None
    secondary: dict[str, Any] | None

    @property
    def names(self) -> str:
        return ", ".join(_behavior_name(b) for b in self.behaviors)


def wirings(config: dict[str, Any]) -> list[Wiring]:
    groups = {g.get("Id"): g for g in _items(config.get("OriginGroups"))}
    origins = {o.get("Id"): o for o in _items(config.get("Origins"))}
    found = []
    for group_id, group in groups.items():
        behaviors = [b for b in _behaviors(config) if b.get("TargetOriginId") == group_id]
        if not behaviors:
            continue
        members = [origins.get(m.get("OriginId")) for m in _items(group.get("Members"))]
        members += [None, None]
        found.append(Wiring(group, behaviors, members[0], members[1]))
    return found


def origin_group_check(facts: Facts) -> Check:
    config = _distribution(facts)
    if isinstance(config, Check):
        return config
    groups = wirings(config)
    remedy = (
        "make an origin group (primary: the bucket through an OAC; secondary: the full "
        "origin; see the AttachToExistingDistribution output) and point the behaviours at it"
    )
    if not groups:
        targets = sorted({str(b.get("TargetOriginId")) for b in _behaviors(config)})
        return Check(
            "origin-group",
            False,
            f"no cache behaviour targets an origin group (they target {', '.join(targets)})",
            remedy,
        )
    bucket = facts.output("BucketName") or ""
    full_origin = facts.stack.parameters.get("FullOriginDomain", "")
    problems = []
    for wiring in groups:
        group = wiring.group.get("Id")
        primary, secondary = wiring.primary, wiring.secondary
        if primary is None or not _is_s3(primary):
            problems.append(f"origin group {group}: the primary is not an S3 origin")
        elif bucket and not str(primary.get("DomainName", "")).startswith(f"{bucket}.s3"):
            problems.append(
                f"origin group {group}: the primary is {primary.get('DomainName')}, "
                f"not the bucket {bucket}"
            )
        elif not primary.get("OriginAccessControlId"):
            problems.append(f"origin group {group}: the bucket origin has no OAC")
        if secondary is None or _is_s3(secondary):
            problems.append(f"origin group {group}: the secondary is not a custom (full) origin")
        elif full_origin and secondary.get("DomainName") != full_origin:
            problems.append(
                f"origin group {group}: the secondary is {secondary.get('DomainName')}, "
                f"not the full origin {full_origin}"
            )
    if problems:
        return Check("origin-group", False, "; ".join(problems), remedy)
    detail = "; ".join(
        f"origin group {w.group.get('Id')} ({w.names}): "
        f"{(w.primary or {}).get('DomainName')} → {(w.secondary or {}).get('DomainName')}"
        for w in groups
    )
    return Check("origin-group", True, detail)


# ---------------------------------------------------------------- 3. failover criteria
def failover_check(facts: Facts) -> Check:
    groups = _wirings_or_check(facts, "failover")
    if isinstance(groups, Check):
        return groups
    problems, advisories = [], []
    for wiring in groups:
        codes = {
            int(c) for c in _items(wiring.group.get("FailoverCriteria", {}).get("StatusCodes"))
        }
        name = wiring.group.get("Id")
        lacking = sorted({403, 404} - codes)
        if lacking:
            problems.append(f"origin group {name} does not fail over on {lacking}")
        elif not any(500 <= code < 600 for code in codes):
            advisories.append(
                f"advisory: origin group {name} has no 5xx criterion (a bucket error is not "
                "retried at the full origin)"
            )
        else:
            advisories.append(f"origin group {name} fails over on {sorted(codes)}")
    if problems:
        return Check(
            "failover",
            False,
            "; ".join(problems),
            "add 403 and 404 (S3 behind an OAC answers 403 for a missing key) to the "
            "failover criteria; 500, 502, 503, 504 are advised",
        )
    return Check("failover", True, "; ".join(advisories))


# ---------------------------------------------------------------- 4. edge association
def association_check(facts: Facts) -> Check:
    groups = _wirings_or_check(facts, "edge-association")
    if isinstance(groups, Check):
        return groups
    current = facts.output("EdgeFunctionVersionArn") or ""
    if not current:
        return Check(
            "edge-association", False, "the stack has no EdgeFunctionVersionArn output", ""
        )
    function, _, version = current.rpartition(":")
    problems = []
    for wiring in groups:
        for behavior in wiring.behaviors:
            arns = [
                str(a.get("LambdaFunctionARN", ""))
                for a in _items(behavior.get("LambdaFunctionAssociations"))
                if a.get("EventType") == "origin-request"
            ]
            name = _behavior_name(behavior)
            if current in arns:
                continue
            older = [arn for arn in arns if arn.rpartition(":")[0] == function]
            if older:
                problems.append(
                    f"behaviour {name} runs version {older[0].rpartition(':')[2]} of the edge "
                    f"function; the current is {version}"
                )
            else:
                problems.append(f"behaviour {name} has no origin-request association with it")
    if problems:
        return Check(
            "edge-association",
            False,
            "; ".join(problems),
            f"associate {current} with the behaviours (origin-request, IncludeBody false)",
        )
    return Check(
        "edge-association", True, f"origin-request runs {function.rpartition(':')[2]}:{version}"
    )


# ---------------------------------------------------------------- 5. queue header
def queue_header_check(facts: Facts) -> Check:
    groups = _wirings_or_check(facts, "queue-header")
    if isinstance(groups, Check):
        return groups
    queue = facts.output("BackfillQueueUrl") or ""
    problems = []
    origins = [wiring.secondary or {} for wiring in groups]
    config = _distribution(facts)
    if facts.region is not None and isinstance(config, dict):
        # An edge stack: region R's misses reach its own full origin, full-<R> (the
        # CloudFront Function builds R's origin group from it).
        own = [o for o in _items(config.get("Origins")) if o.get("Id") == f"full-{facts.region}"]
        origins = own or origins
        problems += [
            f"origin {o.get('Id')} sends {REGION_HEADER}: {h}, not {facts.region}"
            for o in own
            if (h := _custom_headers(o).get(REGION_HEADER)) != facts.region
        ]
    for origin in origins:
        headers = {
            str(h.get("HeaderName", "")).lower(): h.get("HeaderValue")
            for h in _items(origin.get("CustomHeaders"))
        }
        value = headers.get(MARKER)
        if value is None:
            problems.append(f"origin {origin.get('Id')} has no {MARKER} header")
        elif value != queue:
            problems.append(f"origin {origin.get('Id')} sends {MARKER}: {value}, not {queue}")
    if problems:
        return Check(
            "queue-header",
            False,
            "; ".join(problems),
            f"set the origin custom header {MARKER} = {queue} on the full (secondary) origin",
        )
    return Check("queue-header", True, f"the full origin carries {MARKER}: {queue}")


# ---------------------------------------------------------------- 6. bucket policy
def bucket_policy_check(facts: Facts) -> Check:
    bucket = facts.output("BucketName")
    policy = facts.bucket_policy
    if not bucket or policy is None:
        return Check("bucket-policy", False, "no BucketName output to read", "")
    if isinstance(policy, str):
        return Check(
            "bucket-policy",
            False,
            policy,
            "add the OAC read and the _edgefill deny (ExistingBucketPolicyNeeded output)",
        )
    arn = _distribution_arn(facts)
    statements = policy.get("Statement", [])
    statements = statements if isinstance(statements, list) else [statements]
    allows = any(_allows_oac(s, bucket, arn) for s in statements)
    denies = any(_denies_reserved(s, bucket) for s in statements)
    problems = []
    if not allows:
        problems.append(f"no statement allows {CLOUDFRONT} s3:GetObject with AWS:SourceArn {arn}")
    if not denies:
        problems.append(f"no statement denies CloudFront s3:GetObject on {RESERVED_PREFIX}*")
    if problems:
        return Check(
            "bucket-policy",
            False,
            "; ".join(problems),
            "add the statements of the ExistingBucketPolicyNeeded/AttachToExistingDistribution "
            "outputs (step 5) to the bucket policy",
        )
    return Check("bucket-policy", True, f"OAC reads allowed for {arn}; {RESERVED_PREFIX}* denied")


# ---------------------------------------------------------------- 7. methods, encodings
def methods_check(facts: Facts) -> Check:
    groups = _wirings_or_check(facts, "methods-encodings")
    if isinstance(groups, Check):
        return groups
    problems = []
    for wiring in groups:
        for behavior in wiring.behaviors:
            name = _behavior_name(behavior)
            methods = set(_items(behavior.get("AllowedMethods")))
            if not {"GET", "HEAD"} <= methods <= {"GET", "HEAD", "OPTIONS"}:
                problems.append(f"behaviour {name} allows {sorted(methods)}")
            if not behavior.get("Compress"):
                problems.append(f"behaviour {name} does not compress")
            problems.extend(_encoding_problems(facts, behavior, name))
    if problems:
        return Check(
            "methods-encodings",
            False,
            "; ".join(problems),
            "allow GET, HEAD (and OPTIONS) only, turn compression on, and use a cache policy "
            "with gzip and Brotli enabled",
        )
    return Check(
        "methods-encodings",
        True,
        "GET/HEAD(/OPTIONS), compressed, gzip + brotli in the cache key: four encodings",
    )


def _encoding_problems(facts: Facts, behavior: dict[str, Any], name: str) -> Iterator[str]:
    policy_id = behavior.get("CachePolicyId")
    if not policy_id:
        yield f"behaviour {name} uses legacy cache settings, no cache policy"
        return
    policy = facts.cache_policies.get(policy_id)
    if not isinstance(policy, dict):
        yield policy or f"cache policy {policy_id} was not read"
        return
    parameters = policy.get("CachePolicyConfig", {}).get(
        "ParametersInCacheKeyAndForwardedToOrigin", {}
    )
    for flag, encoding in (
        ("EnableAcceptEncodingGzip", "gzip"),
        ("EnableAcceptEncodingBrotli", "br"),
    ):
        if not parameters.get(flag):
            yield f"cache policy {policy_id} leaves {encoding} out of the cache key"


# ---------------------------------------------------------------- 8. queues and DLQs
def queues_check(facts: Facts) -> Check:
    problems, backlog, details = [], [], []
    for role in WORKER_QUEUES:
        queue, dlq = facts.queues.get(role), facts.queues.get(f"{role}-dlq")
        for name, attributes in ((role, queue), (f"{role} DLQ", dlq)):
            if isinstance(attributes, str):
                problems.append(f"{name}: {attributes}")
            elif attributes is None:
                problems.append(f"{name}: no queue URL in the stack outputs")
        if not isinstance(queue, dict) or not isinstance(dlq, dict):
            continue
        try:
            redrive = json.loads(queue.get("RedrivePolicy", "") or "{}")
        except ValueError:
            redrive = {}
        if redrive.get("deadLetterTargetArn") != dlq.get("QueueArn"):
            problems.append(f"{role} queue does not redrive to its DLQ {dlq.get('QueueArn')}")
        else:
            details.append(f"{role} → DLQ after {redrive.get('maxReceiveCount')} receives")
        waiting = int(dlq.get("ApproximateNumberOfMessages", "0") or 0)
        if waiting:
            backlog.append((role, waiting))
    stack = facts.stack.name
    if problems:
        return Check(
            "queues",
            False,
            "; ".join(problems),
            "give each queue a RedrivePolicy to its DLQ (the template does; redeploy it)",
        )
    if backlog:
        return Check(
            "queues",
            False,
            "; ".join(f"{role} DLQ holds {count} messages" for role, count in backlog),
            "fix the cause (the worker's logs), then "
            + " and ".join(f"`edgefill redrive --stack {stack} --queue {r}`" for r, _ in backlog),
        )
    return Check("queues", True, "; ".join(details) + "; DLQs empty")


# ---------------------------------------------------------------- 9. event sources
def event_sources_check(facts: Facts) -> Check:
    problems, details = [], []
    for role in WORKER_QUEUES:
        mappings = facts.mappings.get(role)
        if isinstance(mappings, str):
            problems.append(f"{role}: {mappings}")
            continue
        if not mappings:
            problems.append(f"{role} queue has no event source mapping")
            continue
        for mapping in mappings:
            function = str(mapping.get("FunctionArn", "")).rpartition(":function:")[2]
            state = mapping.get("State")
            if state != "Enabled":
                problems.append(f"{role} → {function} is {state}")
            else:
                details.append(f"{role} → {function} Enabled")
    metrics = facts.worker_metrics
    if isinstance(metrics, str):
        details.append(metrics)
    else:
        details += [
            f"{name}: {m['Errors']:.0f} errors, {m['Throttles']:.0f} throttles in the last hour"
            for name, m in metrics.items()
        ]
    if problems:
        return Check(
            "event-sources",
            False,
            "; ".join(problems + details),
            "enable each queue's mapping to its worker (aws lambda "
            "update-event-source-mapping --uuid ID --enabled), or redeploy the stack to "
            "recreate a missing one",
        )
    return Check("event-sources", True, "; ".join(details))


# ---------------------------------------------------------------- 10. viewer protocol
def viewer_protocol_check(facts: Facts) -> Check:
    """Every behaviour that reaches the bucket must refuse plain HTTP: CloudFront asks an S3
    origin with the viewer's protocol, and the bucket policy denies requests without TLS
    (``aws:SecureTransport``), so an HTTP viewer gets a 403 from S3, which fails over to
    the full origin and queues a backfill of an object already there."""
    config = _distribution(facts)
    if isinstance(config, Check):
        return Check("viewer-protocol", False, config.detail, config.remedy)
    targets = _bucket_targets(config, facts.output("BucketName") or "")
    behaviors = [b for b in _behaviors(config) if b.get("TargetOriginId") in targets]
    if not behaviors:
        return Check(
            "viewer-protocol", False, "no cache behaviour targets the bucket (see origin-group)", ""
        )
    allowing = [
        f"behaviour {_behavior_name(b)} is {b.get('ViewerProtocolPolicy') or 'unset'}"
        for b in behaviors
        if b.get("ViewerProtocolPolicy") not in HTTPS_ONLY_VIEWERS
    ]
    if allowing:
        return Check(
            "viewer-protocol",
            False,
            "; ".join(allowing)
            + ": HTTP viewers reach the bucket over HTTP, its TLS-only policy answers 403, "
            "they never get the copy and each miss queues a backfill for nothing",
            "set ViewerProtocolPolicy to redirect-to-https (or https-only) on each behaviour "
            "targeting the bucket",
        )
    return Check(
        "viewer-protocol",
        True,
        "; ".join(f"{_behavior_name(b)}: {b['ViewerProtocolPolicy']}" for b in behaviors),
    )


# ---------------------------------------------------------------- 11. edge log retention
def edge_logs_check(facts: Facts) -> Check:
    """The edge function's log groups (one per region where a replica ran) expire."""
    found = facts.edge_logs
    if found is None or isinstance(found, str):
        return Check(
            "edge-logs", False, found or "the edge function's log groups were not read", ""
        )
    groups = [state for state in found.values() if isinstance(state, EdgeLogGroup)]
    errors = [state for state in found.values() if isinstance(state, str)]
    forever = sorted(group.region for group in groups if group.retention_days is None)
    command = f"edgefill edge-logs --stack {facts.stack.name}"
    if forever:
        name = groups[0].name
        return Check(
            "edge-logs",
            False,
            "; ".join([f"{name} never expires in {', '.join(forever)}", *errors]),
            f"`{command} --retention-days {DEFAULT_RETENTION_DAYS}` (add --create-missing "
            "for the regions with no group yet)",
        )
    if errors:
        return Check(
            "edge-logs",
            False,
            "; ".join(errors),
            f"allow logs:DescribeLogGroups in those regions, or pass --regions to `{command}`",
        )
    if not groups:
        return Check("edge-logs", True, f"no edge log group yet in the {len(found)} edge regions")
    kept = sorted({group.retention_days or 0 for group in groups})
    return Check(
        "edge-logs",
        True,
        f"edge logs in {len(groups)} of {len(found)} regions, each expiring "
        f"({', '.join(str(days) for days in kept)} days)",
    )


CHECKS: Final[tuple[Callable[[Facts], Check], ...]] = (
    stack_check,
    origin_group_check,
    failover_check,
    association_check,
    queue_header_check,
    bucket_policy_check,
    methods_check,
    queues_check,
    event_sources_check,
    viewer_protocol_check,
    edge_logs_check,
)


# ---------------------------------------------------------------- helpers
def _items(value: Any) -> list[Any]:
    """``Items`` of a CloudFront ``{Quantity, Items}`` list (absent when Quantity is 0)."""
    if isinstance(value, dict):
        items = value.get("Items") or []
        return items if isinstance(items, list) else []
    return []


def _custom_headers(origin: dict[str, Any]) -> dict[str, Any]:
    return {
        str(h.get("HeaderName", "")).lower(): h.get("HeaderValue")
        for h in _items(origin.get("CustomHeaders"))
    }


def _behaviors(config: dict[str, Any]) -> list[dict[str, Any]]:
    return [config.get("DefaultCacheBehavior", {}), *_items(config.get("CacheBehaviors"))]


def _behavior_name(behavior: dict[str, Any]) -> str:
    return str(behavior.get("PathPattern", "default"))


def _bucket_targets(config: dict[str, Any], bucket: str) -> set[str]:
    """The ids a behaviour may target to reach ``bucket``: its S3 origins (any S3 origin
    when the bucket is unknown) and the origin groups holding one."""
    origins = {
        str(o.get("Id"))
        for o in _items(config.get("Origins"))
        if _is_s3(o) and (not bucket or str(o.get("DomainName", "")).startswith(f"{bucket}.s3"))
    }
    groups = {
        str(g.get("Id"))
        for g in _items(config.get("OriginGroups"))
        if any(m.get("OriginId") in origins for m in _items(g.get("Members")))
    }
    return origins | groups


def _is_s3(origin: dict[str, Any]) -> bool:
    return "S3OriginConfig" in origin or ".s3." in str(origin.get("DomainName", ""))


def _distribution(facts: Facts) -> dict[str, Any] | Check:
    if not facts.distribution_id:
        return Check(
            "origin-group",
            False,
            "no distribution: the stack has no DistributionId output nor ExistingDistributionId",
            "pass --distribution-id ID",
        )
    if isinstance(facts.distribution, str) or facts.distribution is None:
        return Check(
            "origin-group",
            False,
            f"distribution {facts.distribution_id}: {facts.distribution or 'not read'}",
            "check the id and that your credentials may call cloudfront:GetDistributionConfig",
        )
    return facts.distribution


def _wirings_or_check(facts: Facts, name: str) -> list[Wiring] | Check:
    config = _distribution(facts)
    if isinstance(config, Check):
        return Check(name, False, config.detail, config.remedy)
    found = wirings(config)
    if not found:
        return Check(name, False, "no origin group to check (see origin-group)", "")
    return found


def _distribution_arn(facts: Facts) -> str:
    """The distribution's ARN; partition and account from the edge function's ARN."""
    parts = (facts.output("EdgeFunctionVersionArn") or "").split(":")
    partition = parts[1] if len(parts) > 4 else "aws"
    account = parts[4] if len(parts) > 4 else "*"
    return f"arn:{partition}:cloudfront::{account}:distribution/{facts.distribution_id}"


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _principal_is_cloudfront(statement: dict[str, Any], or_anyone: bool) -> bool:
    principal = statement.get("Principal")
    if principal == "*" or (isinstance(principal, dict) and principal.get("AWS") == "*"):
        return or_anyone
    return isinstance(principal, dict) and CLOUDFRONT in _as_list(principal.get("Service", []))


def _action_reads(statement: dict[str, Any]) -> bool:
    actions = [str(a) for a in _as_list(statement.get("Action", []))]
    return any(fnmatch.fnmatchcase("s3:GetObject", a) for a in actions)


def _resources(statement: dict[str, Any]) -> list[str]:
    return [str(r) for r in _as_list(statement.get("Resource", []))]


def _allows_oac(statement: dict[str, Any], bucket: str, arn: str) -> bool:
    if statement.get("Effect") != "Allow" or not _principal_is_cloudfront(statement, False):
        return False
    if not _action_reads(statement):
        return False
    if not any(r.split(":::", 1)[-1].startswith(f"{bucket}/") for r in _resources(statement)):
        return False
    condition = statement.get("Condition", {})
    for operator in ("StringEquals", "ArnEquals", "ArnLike", "StringLike"):
        values = condition.get(operator, {}).get("AWS:SourceArn") or condition.get(
            operator, {}
        ).get("aws:SourceArn")
        if values is not None and any(fnmatch.fnmatchcase(arn, str(v)) for v in _as_list(values)):
            return True
    return False


def _denies_reserved(statement: dict[str, Any], bucket: str) -> bool:
    if statement.get("Effect") != "Deny" or not _principal_is_cloudfront(statement, True):
        return False
    if statement.get("Condition") or not _action_reads(statement):
        return False
    reserved = f"{bucket}/{RESERVED_PREFIX}x"
    return any(fnmatch.fnmatchcase(reserved, r.split(":::", 1)[-1]) for r in _resources(statement))
