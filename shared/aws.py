"""boto3 clients for the regional workers and the CLI, built once per container.

Endpoints follow botocore's standard variables (``AWS_ENDPOINT_URL``,
``AWS_ENDPOINT_URL_S3``, ``AWS_ENDPOINT_URL_SQS``), which is how the lab and the tests
point everything at moto.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import boto3
from botocore.config import Config

# Workers copy parts concurrently; the pool must be at least as large as the parts in flight.
_CONFIG = Config(
    retries={"max_attempts": 5, "mode": "standard"},
    max_pool_connections=32,
    connect_timeout=5,
    read_timeout=60,
)


@lru_cache(maxsize=16)
def client(service: str, region: str | None = None) -> Any:
    """A cached boto3 client for ``service`` (``s3``, ``sqs``, ``cloudformation``)."""
    session = boto3.session.Session()
    return session.client(service, region_name=region, config=_CONFIG)
