"""The workers' boto3 clients (``shared.aws``): one botocore data loader per process.

A worker's cold start builds its clients (S3, SQS, CloudFront), the lab runs every worker in
one process, and the CLI makes a session per region: with a loader each, every session
parsed botocore's models and endpoint rules from disk again."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from edgefill.operations import aws_session
from shared import aws


@pytest.fixture
def fresh_clients() -> Iterator[None]:
    aws.client.cache_clear()
    yield
    aws.client.cache_clear()


def test_a_workers_clients_share_one_loader_with_the_cli(fresh_clients: None) -> None:
    # Given the clients a backfill and a prewarm container build, in two regions
    s3, sqs = aws.client("s3", "eu-west-1"), aws.client("sqs", "ap-northeast-1")
    cloudfront = aws.client("cloudfront", "us-east-1")
    # Then one loader read botocore's data for all of them, and for the CLI's sessions
    loaders = {id(c._loader) for c in (s3, sqs, cloudfront)}
    assert len(loaders) == 1
    assert id(aws_session("us-east-1")._session.get_component("data_loader")) in loaders
    # And each client keeps its own region and the workers' retry settings
    assert (s3.meta.region_name, sqs.meta.region_name) == ("eu-west-1", "ap-northeast-1")
    assert s3.meta.config.retries == {"total_max_attempts": 6, "mode": "standard"}


def test_a_client_is_built_once_per_service_and_region(fresh_clients: None) -> None:
    assert aws.client("sqs", "us-east-1") is aws.client("sqs", "us-east-1")
    assert aws.client("sqs", "us-east-1") is not aws.client("sqs", "us-west-2")
