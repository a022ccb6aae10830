"""boto3 clients for the regional workers and the CLI, built once per container.

Endpoints follow botocore's standard variables (``AWS_ENDPOINT_URL``,
``AWS_ENDPOINT_URL_S3``, ``AWS_ENDPOINT_URL_SQS``), which is how the lab and the tests
point everything at moto.
"""

from __future__ import annotations

import functools
from functools import lru_cache
from typing import Any

# boto3 is imported on the first client, not with this module: the CLI reaches this module
# from commands that never call AWS (`edgefill --help`, a `warm` without caps), and boto3
# is most of a start-up's imports (issue 23). A worker builds its clients at its first
# invocation's setup either way.


@lru_cache(maxsize=16)
def client(service: str, region: str | None = None) -> Any:
    """A cached boto3 client for ``service`` (``s3``, ``sqs``, ``cloudformation``)."""
    import boto3
    from botocore.config import Config

    # Workers copy parts concurrently: the pool is at least as large as the parts in flight.
    config = Config(
        retries={"max_attempts": 5, "mode": "standard"},
        max_pool_connections=32,
        connect_timeout=5,
        read_timeout=60,
    )
    session = boto3.session.Session(botocore_session=core_session())
    return session.client(service, region_name=region, config=config)


def core_session(profile: str | None = None) -> Any:
    """A botocore session that shares this process's one data loader. With a loader of its
    own, each session parses the service models and endpoint rules again from disk (about
    70 ms a client, more for S3): a worker's cold start builds three clients, the lab runs
    every worker in one process, and a CLI command across regions makes a session per
    region. The loader only reads botocore's packaged data, the same for every session, so
    it is shared unless the profile names its own ``data_path``."""
    import botocore.session

    core = botocore.session.Session(profile=profile)
    if core.get_config_variable("data_path") is None:
        core.register_component("data_loader", _shared_loader())
    return core


@functools.cache
def _shared_loader() -> Any:
    from botocore.loaders import create_loader

    return create_loader()
