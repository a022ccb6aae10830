"""``edgefill doctor``'s eleven checks on answers shaped exactly like AWS's: every AWS call
goes through a botocore Stubber, which validates each canned response against the
service model. One healthy deployment, then one broken fixture per check."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from edgefill.doctor.checks import Check, run_checks
from edgefill.doctor.facts import Clients, gather
from edgefill.stack import read_stack

ACCOUNT = "123456789012"
STACK = "edgefill"
DISTRIBUTION = "E2QWRUHAPOMQZL"
DIST_ARN = f"arn:aws:cloudfront::{ACCOUNT}:distribution/{DISTRIBUTION}"
BUCKET = "edgefill-originbucket-1a2b3c"
FULL_ORIGIN = "origin.example.com"
EDGE = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{STACK}-edge"
QUEUE_URL = f"https://sqs.us-east-1.amazonaws.com/{ACCOUNT}"
QUEUE_ARN = f"arn:aws:sqs:us-east-1:{ACCOUNT}"
CACHE_POLICY = "658327ea-f89d-4fab-a63d-7e88639e58f6"
NOW = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
NAMES = (
    "stack",
    "origin-group",
    "failover",
    "edge-association",
    "queue-header",
    "bucket-policy",
    "methods-encodings",
    "queues",
    "event-sources",
    "viewer-protocol",
    "edge-logs",
)
EDGE_REGIONS = ("us-east-1", "eu-west-1", "ap-northeast-1")
EDGE_LOG_GROUP = f"/aws/lambda/us-east-1.{STACK}-edge"


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stubbers answer every call; a real request would go to a closed port and fail."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")


# ---------------------------------------------------------------- the AWS answers
def describe_stacks() -> dict[str, Any]:
    outputs = {
        "BackfillQueueUrl": f"{QUEUE_URL}/{STACK}-BackfillQueue",
        "BackfillDLQUrl": f"{QUEUE_URL}/{STACK}-BackfillDLQ",
        "PrewarmQueueUrl": f"{QUEUE_URL}/{STACK}-PrewarmQueue",
        "PrewarmDLQUrl": f"{QUEUE_URL}/{STACK}-PrewarmDLQ",
        "BucketName": BUCKET,
        "BucketRegion": "us-east-1",
        "DistributionDomain": "d111111abcdef8.cloudfront.net",
        "DistributionId": DISTRIBUTION,
        "EdgeFunctionVersionArn": f"{EDGE}:7",
    }
    parameters = {
        "FullOriginDomain": FULL_ORIGIN,
        "KeyPrefix": "",
        "CreateDistribution": "true",
        "DashboardEdgeRegions": ",".join(EDGE_REGIONS),
    }
    return {
        "Stacks": [
            {
                "StackId": f"arn:aws:cloudformation:us-east-1:{ACCOUNT}:stack/{STACK}/1",
                "StackName": STACK,
                "CreationTime": NOW,
                "StackStatus": "CREATE_COMPLETE",
                "Outputs": [{"OutputKey": k, "OutputValue": v} for k, v in outputs.items()],
                "Parameters": [
                    {"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()
                ],
            }
        ]
    }


def distribution_config() -> dict[str, Any]:
    """GetDistributionConfig as CloudFront answers it for the template's distribution."""
    behavior = {
        "TargetOriginId": "bucket-then-full-origin",
        "TrustedKeyGroups": {"Enabled": False, "Quantity": 0},
        "ViewerProtocolPolicy": "redirect-to-https",
        "AllowedMethods": {
            "Quantity": 3,
            "Items": ["HEAD", "GET", "OPTIONS"],
            "CachedMethods": {"Quantity": 2, "Items": ["HEAD", "GET"]},
        },
        "SmoothStreaming": False,
        "Compress": True,
        "LambdaFunctionAssociations": {
            "Quantity": 1,
            "Items": [
                {
                    "LambdaFunctionARN": f"{EDGE}:7",
                    "EventType": "origin-request",
                    "IncludeBody": False,
                }
            ],
        },
        "FunctionAssociations": {"Quantity": 0},
        "FieldLevelEncryptionId": "",
        "CachePolicyId": CACHE_POLICY,
    }
    return {
        "ETag": "E2QWRUHEXAMPLE",
        "DistributionConfig": {
            "CallerReference": "edgefill-1",
            "Aliases": {"Quantity": 0},
            "DefaultRootObject": "",
            "Origins": {
                "Quantity": 2,
                "Items": [
                    {
                        "Id": "regional-bucket",
                        "DomainName": f"{BUCKET}.s3.us-east-1.amazonaws.com",
                        "OriginPath": "",
                        "CustomHeaders": {"Quantity": 0},
                        "S3OriginConfig": {"OriginAccessIdentity": ""},
                        "ConnectionAttempts": 3,
                        "ConnectionTimeout": 10,
                        "OriginAccessControlId": "E1OACEXAMPLE",
                    },
                    {
                        "Id": "full-origin",
                        "DomainName": FULL_ORIGIN,
                        "OriginPath": "",
                        "CustomHeaders": {
                            "Quantity": 1,
                            "Items": [
                                {
                                    "HeaderName": "x-edgefill-queue",
                                    "HeaderValue": f"{QUEUE_URL}/{STACK}-BackfillQueue",
                                }
                            ],
                        },
                        "CustomOriginConfig": {
                            "HTTPPort": 80,
                            "HTTPSPort": 443,
                            "OriginProtocolPolicy": "https-only",
                            "OriginSslProtocols": {"Quantity": 1, "Items": ["TLSv1.2"]},
                            "OriginReadTimeout": 30,
                            "OriginKeepaliveTimeout": 5,
                        },
                        "ConnectionAttempts": 3,
                        "ConnectionTimeout": 10,
                        "OriginAccessControlId": "",
                    },
                ],
            },
            "OriginGroups": {
                "Quantity": 1,
                "Items": [
                    {
                        "Id": "bucket-then-full-origin",
                        "FailoverCriteria": {
                            "StatusCodes": {"Quantity": 6, "Items": [403, 404, 500, 502, 503, 504]}
                        },
                        "Members": {
                            "Quantity": 2,
                            "Items": [{"OriginId": "regional-bucket"}, {"OriginId": "full-origin"}],
                        },
                    }
                ],
            },
            "DefaultCacheBehavior": behavior,
            "CacheBehaviors": {"Quantity": 0},
            "CustomErrorResponses": {"Quantity": 0},
            "Comment": "edgefill",
            "PriceClass": "PriceClass_All",
            "Enabled": True,
            "ViewerCertificate": {
                "CloudFrontDefaultCertificate": True,
                "MinimumProtocolVersion": "TLSv1",
                "CertificateSource": "cloudfront",
            },
            "HttpVersion": "http2and3",
            "IsIPV6Enabled": True,
        },
    }


def cache_policy(gzip: bool = True, brotli: bool = True) -> dict[str, Any]:
    return {
        "ETag": "E23ZP02F085DFQ",
        "CachePolicy": {
            "Id": CACHE_POLICY,
            "LastModifiedTime": NOW,
            "CachePolicyConfig": {
                "Name": f"{STACK}-cache",
                "DefaultTTL": 86400,
                "MaxTTL": 31536000,
                "MinTTL": 1,
                "ParametersInCacheKeyAndForwardedToOrigin": {
                    "EnableAcceptEncodingGzip": gzip,
                    "EnableAcceptEncodingBrotli": brotli,
                    "HeadersConfig": {"HeaderBehavior": "none"},
                    "CookiesConfig": {"CookieBehavior": "none"},
                    "QueryStringsConfig": {"QueryStringBehavior": "none"},
                },
            },
        },
    }


def bucket_policy(statements: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    default = [
        {
            "Sid": "DenyCloudFrontReadsOfEdgefillObjects",
            "Effect": "Deny",
            "Principal": {"Service": "cloudfront.amazonaws.com"},
            "Action": "s3:GetObject",
            "Resource": f"arn:aws:s3:::{BUCKET}/_edgefill/*",
        },
        {
            "Sid": "AllowCloudFrontOriginAccessControl",
            "Effect": "Allow",
            "Principal": {"Service": "cloudfront.amazonaws.com"},
            "Action": "s3:GetObject",
            "Resource": f"arn:aws:s3:::{BUCKET}/*",
            "Condition": {"StringEquals": {"AWS:SourceArn": DIST_ARN}},
        },
    ]
    document = {"Version": "2012-10-17", "Statement": default if statements is None else statements}
    return {"Policy": json.dumps(document)}


def queue_attributes(name: str, redrive_to: str | None = None, waiting: int = 0) -> dict[str, Any]:
    attributes = {
        "QueueArn": f"{QUEUE_ARN}:{STACK}-{name}",
        "ApproximateNumberOfMessages": str(waiting),
    }
    if redrive_to:
        attributes["RedrivePolicy"] = json.dumps(
            {"deadLetterTargetArn": f"{QUEUE_ARN}:{STACK}-{redrive_to}", "maxReceiveCount": 5}
        )
    return {"Attributes": attributes}


def mappings(worker: str, queue: str, state: str = "Enabled") -> dict[str, Any]:
    return {
        "EventSourceMappings": [
            {
                "UUID": f"14e0db71-0000-0000-0000-{len(worker):012d}",
                "BatchSize": 10,
                "EventSourceArn": f"{QUEUE_ARN}:{STACK}-{queue}",
                "FunctionArn": f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{STACK}-{worker}",
                "LastModified": NOW,
                "State": state,
                "StateTransitionReason": "USER_INITIATED",
            }
        ]
    }


def metric_data(errors: float = 0.0) -> dict[str, Any]:
    return {
        "MetricDataResults": [
            {
                "Id": f"m{index}{metric[0].lower()}",
                "Label": f"{STACK}-{worker} {metric}",
                "Timestamps": [NOW],
                "Values": [errors if metric == "Errors" else 0.0],
                "StatusCode": "Complete",
            }
            for index, worker in enumerate(("backfill", "prewarm"))
            for metric in ("Errors", "Throttles")
        ],
        "Messages": [],
    }


def log_groups(retention: int | None = 30) -> dict[str, Any]:
    """DescribeLogGroups answering the edge function's group (retention None: never expires)."""
    group: dict[str, Any] = {
        "logGroupName": EDGE_LOG_GROUP,
        "creationTime": 1796000000000,
        "storedBytes": 2048,
        "arn": f"arn:aws:logs:eu-west-1:{ACCOUNT}:log-group:{EDGE_LOG_GROUP}:*",
    }
    if retention is not None:
        group["retentionInDays"] = retention
    return {"logGroups": [group]}


def healthy() -> dict[str, Any]:
    """Every answer of a well-wired deployment, by (service, operation)."""
    return {
        "stack": describe_stacks(),
        "distribution": distribution_config(),
        "cache_policy": cache_policy(),
        "bucket_policy": bucket_policy(),
        "queues": [
            queue_attributes("BackfillQueue", redrive_to="BackfillDLQ"),
            queue_attributes("BackfillDLQ"),
            queue_attributes("PrewarmQueue", redrive_to="PrewarmDLQ"),
            queue_attributes("PrewarmDLQ"),
        ],
        "mappings": [mappings("backfill", "BackfillQueue"), mappings("prewarm", "PrewarmQueue")],
        "metrics": metric_data(),
        # The edge logged in two regions (each group expiring), not yet in the third.
        "logs": {
            "us-east-1": log_groups(30),
            "eu-west-1": log_groups(90),
            "ap-northeast-1": {"logGroups": []},
        },
    }


# ---------------------------------------------------------------- running the doctor
def doctor(answers: dict[str, Any]) -> list[Check]:
    """The checks, with every AWS call answered by ``answers`` through Stubbers."""
    services = ("cloudformation", "cloudfront", "s3", "sqs", "lambda", "cloudwatch")
    clients = {name: boto3.client(name, region_name="us-east-1") for name in services}
    stubs = {name: Stubber(client) for name, client in clients.items()}
    stubs["cloudformation"].add_response("describe_stacks", answers["stack"], {"StackName": STACK})
    stubs["cloudfront"].add_response(
        "get_distribution_config", answers["distribution"], {"Id": DISTRIBUTION}
    )
    if answers["cache_policy"] is not None:
        stubs["cloudfront"].add_response(
            "get_cache_policy", answers["cache_policy"], {"Id": CACHE_POLICY}
        )
    if isinstance(answers["bucket_policy"], str):
        stubs["s3"].add_client_error(
            "get_bucket_policy",
            service_error_code=answers["bucket_policy"],
            http_status_code=404,
        )
    else:
        stubs["s3"].add_response("get_bucket_policy", answers["bucket_policy"], {"Bucket": BUCKET})
    for response in answers["queues"]:
        stubs["sqs"].add_response("get_queue_attributes", response)
    for response in answers["mappings"]:
        stubs["lambda"].add_response("list_event_source_mappings", response)
    stubs["cloudwatch"].add_response("get_metric_data", answers["metrics"])
    logs = {region: boto3.client("logs", region_name=region) for region in answers["logs"]}
    for region, response in answers["logs"].items():
        stub = stubs[f"logs {region}"] = Stubber(logs[region])
        if isinstance(response, str):  # the region refuses the read with this code
            stub.add_client_error("describe_log_groups", response, http_status_code=400)
        else:
            stub.add_response(
                "describe_log_groups", response, {"logGroupNamePrefix": EDGE_LOG_GROUP}
            )
    for stub in stubs.values():
        stub.activate()
    stack = read_stack(clients["cloudformation"], STACK)
    facts = gather(
        Clients(
            cloudformation=clients["cloudformation"],
            cloudfront=clients["cloudfront"],
            s3=clients["s3"],
            sqs=clients["sqs"],
            lambda_=clients["lambda"],
            cloudwatch=clients["cloudwatch"],
            logs=logs.__getitem__,
        ),
        stack,
        now=lambda: NOW,
    )
    for stub in stubs.values():
        stub.assert_no_pending_responses()
    return run_checks(facts)


def verdicts(checks: list[Check]) -> dict[str, Check]:
    assert [c.check for c in checks] == list(NAMES)
    return {c.check: c for c in checks}


def test_a_well_wired_deployment_passes_all_eleven_checks() -> None:
    checks = verdicts(doctor(healthy()))
    assert all(c.ok for c in checks.values()), [c for c in checks.values() if not c.ok]
    assert all(c.detail and not c.remedy for c in checks.values())
    assert "bucket-then-full-origin" in checks["origin-group"].detail
    assert "edge:7" in checks["edge-association"].detail
    assert "0 errors, 0 throttles" in checks["event-sources"].detail
    assert "default: redirect-to-https" in checks["viewer-protocol"].detail
    assert "edge logs in 2 of 3 regions, each expiring (30, 90 days)" in checks["edge-logs"].detail


# ---------------------------------------------------------------- one break per check
def _status(answers: dict[str, Any]) -> None:
    answers["stack"]["Stacks"][0]["StackStatus"] = "ROLLBACK_COMPLETE"


def _no_origin_group(answers: dict[str, Any]) -> None:
    config = answers["distribution"]["DistributionConfig"]
    config["OriginGroups"] = {"Quantity": 0}
    config["DefaultCacheBehavior"]["TargetOriginId"] = "regional-bucket"


def _no_404(answers: dict[str, Any]) -> None:
    group = answers["distribution"]["DistributionConfig"]["OriginGroups"]["Items"][0]
    group["FailoverCriteria"]["StatusCodes"] = {"Quantity": 2, "Items": [500, 502]}


def _old_version(answers: dict[str, Any]) -> None:
    behavior = answers["distribution"]["DistributionConfig"]["DefaultCacheBehavior"]
    behavior["LambdaFunctionAssociations"]["Items"][0]["LambdaFunctionARN"] = f"{EDGE}:6"


def _wrong_queue_header(answers: dict[str, Any]) -> None:
    origins = answers["distribution"]["DistributionConfig"]["Origins"]["Items"]
    origins[1]["CustomHeaders"]["Items"][0]["HeaderValue"] = f"{QUEUE_URL}/someone-elses"


def _no_deny(answers: dict[str, Any]) -> None:
    statements = json.loads(answers["bucket_policy"]["Policy"])["Statement"]
    answers["bucket_policy"] = bucket_policy([s for s in statements if s["Effect"] == "Allow"])


def _no_brotli(answers: dict[str, Any]) -> None:
    answers["cache_policy"] = cache_policy(brotli=False)


def _dlq_backlog(answers: dict[str, Any]) -> None:
    answers["queues"][1] = queue_attributes("BackfillDLQ", waiting=3)


def _disabled_mapping(answers: dict[str, Any]) -> None:
    answers["mappings"][1] = mappings("prewarm", "PrewarmQueue", state="Disabled")


def _http_viewers(answers: dict[str, Any]) -> None:
    behavior = answers["distribution"]["DistributionConfig"]["DefaultCacheBehavior"]
    behavior["ViewerProtocolPolicy"] = "allow-all"


def _edge_logs_kept_for_ever(answers: dict[str, Any]) -> None:
    answers["logs"]["eu-west-1"] = log_groups(retention=None)


BROKEN: list[tuple[str, Callable[[dict[str, Any]], None], str, str]] = [
    ("stack", _status, "ROLLBACK_COMPLETE", "sam deploy"),
    ("origin-group", _no_origin_group, "no cache behaviour targets an origin group",
     "origin group"),
    ("failover", _no_404, "does not fail over on [403, 404]", "403 and 404"),
    ("edge-association", _old_version, "runs version 6 of the edge function; the current is 7",
     f"{EDGE}:7"),
    ("queue-header", _wrong_queue_header, "someone-elses", "x-edgefill-queue"),
    ("bucket-policy", _no_deny, "denies CloudFront s3:GetObject on _edgefill/*", "bucket policy"),
    ("methods-encodings", _no_brotli, "leaves br out of the cache key", "Brotli"),
    ("queues", _dlq_backlog, "backfill DLQ holds 3 messages",
     "edgefill redrive --stack edgefill --queue backfill"),
    ("event-sources", _disabled_mapping, "prewarm → edgefill-prewarm is Disabled", "enable"),
    ("viewer-protocol", _http_viewers, "behaviour default is allow-all: HTTP viewers",
     "redirect-to-https"),
    ("edge-logs", _edge_logs_kept_for_ever, f"{EDGE_LOG_GROUP} never expires in eu-west-1",
     "edgefill edge-logs --stack edgefill --retention-days 30"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "breaks", "detail", "remedy"), BROKEN, ids=[b[0] for b in BROKEN])
def test_each_broken_wiring_fails_its_own_check_with_a_remedy(
    name: str, breaks: Callable[[dict[str, Any]], None], detail: str, remedy: str
) -> None:
    # Given a deployment broken in exactly one way
    answers = healthy()
    breaks(answers)
    if breaks is _no_origin_group:
        answers["cache_policy"] = cache_policy()
    # When the doctor runs
    checks = verdicts(doctor(answers))
    # Then that check fails, saying what is wrong and what to do
    failed = checks[name]
    assert not failed.ok
    assert detail in failed.detail
    assert remedy in failed.remedy
    # And the checks that do not depend on it still pass
    independent = {"stack", "bucket-policy", "queues", "event-sources"} - {name}
    assert all(checks[other].ok for other in independent)


def test_only_5xx_criteria_missing_is_advisory() -> None:
    answers = healthy()
    group = answers["distribution"]["DistributionConfig"]["OriginGroups"]["Items"][0]
    group["FailoverCriteria"]["StatusCodes"] = {"Quantity": 2, "Items": [403, 404]}
    check = verdicts(doctor(answers))["failover"]
    assert check.ok and "advisory" in check.detail and "5xx" in check.detail


def test_a_bucket_policy_for_another_distribution_fails() -> None:
    answers = healthy()
    statements = json.loads(answers["bucket_policy"]["Policy"])["Statement"]
    statements[1]["Condition"]["StringEquals"]["AWS:SourceArn"] = DIST_ARN.replace("E2Q", "EXX")
    answers["bucket_policy"] = bucket_policy(statements)
    check = verdicts(doctor(answers))["bucket-policy"]
    assert not check.ok and DIST_ARN in check.detail


def test_a_bucket_without_a_policy_fails_naming_the_error() -> None:
    answers = healthy()
    answers["bucket_policy"] = "NoSuchBucketPolicy"
    check = verdicts(doctor(answers))["bucket-policy"]
    assert not check.ok and "NoSuchBucketPolicy" in check.detail


def test_post_allowed_and_no_compression_fail_methods() -> None:
    answers = healthy()
    behavior = answers["distribution"]["DistributionConfig"]["DefaultCacheBehavior"]
    behavior["AllowedMethods"] = {
        "Quantity": 7,
        "Items": ["GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"],
        "CachedMethods": {"Quantity": 2, "Items": ["HEAD", "GET"]},
    }
    behavior["Compress"] = False
    check = verdicts(doctor(answers))["methods-encodings"]
    assert not check.ok and "POST" in check.detail and "does not compress" in check.detail


def test_worker_errors_are_reported_from_cloudwatch() -> None:
    answers = healthy()
    answers["metrics"] = metric_data(errors=4.0)
    check = verdicts(doctor(answers))["event-sources"]
    assert check.ok and "4 errors" in check.detail


def test_the_canary_goes_to_the_viewer_host_only_with_its_own_certificate() -> None:
    from edgefill.commands.doctor import viewer_host
    from edgefill.doctor.facts import Facts
    from edgefill.stack import StackInfo

    stack = StackInfo(STACK, "CREATE_COMPLETE", {"DistributionDomain": "d111.cloudfront.net"})
    config = distribution_config()["DistributionConfig"]
    config["Aliases"] = {"Quantity": 1, "Items": ["cdn.example.com"]}
    # With CloudFront's default certificate an alias would not verify: the domain is used
    assert viewer_host(Facts(stack, DISTRIBUTION, config)) == "d111.cloudfront.net"
    config["ViewerCertificate"] = {"ACMCertificateArn": "arn:aws:acm:us-east-1:1:certificate/x"}
    assert viewer_host(Facts(stack, DISTRIBUTION, config)) == "cdn.example.com"


@pytest.mark.parametrize(
    ("target", "checked"),
    [
        ("regional-bucket", True),  # the bucket without the origin group: checked too
        ("full-origin", False),  # never reaches the bucket: its TLS-only policy is moot
    ],
)
def test_every_behaviour_reaching_the_bucket_and_only_those_must_refuse_http(
    target: str, checked: bool
) -> None:
    # Given a second behaviour, on HTTP, targeting one origin directly
    answers = healthy()
    config = answers["distribution"]["DistributionConfig"]
    extra = {**config["DefaultCacheBehavior"], "PathPattern": "/extra/*"}
    extra.update(TargetOriginId=target, ViewerProtocolPolicy="allow-all")
    config["CacheBehaviors"] = {"Quantity": 1, "Items": [extra]}
    # When the doctor runs, then only a behaviour reaching the bucket is named
    check = verdicts(doctor(answers))["viewer-protocol"]
    assert check.ok is not checked
    assert ("behaviour /extra/* is allow-all" in check.detail) is checked


def test_an_edge_region_that_cannot_be_read_fails_naming_it() -> None:
    answers = healthy()
    answers["logs"]["ap-northeast-1"] = "AccessDeniedException"
    check = verdicts(doctor(answers))["edge-logs"]
    assert not check.ok and "DescribeLogGroups in ap-northeast-1 failed" in check.detail
    assert "AccessDeniedException" in check.detail and "logs:DescribeLogGroups" in check.remedy
