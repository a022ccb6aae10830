"""What a sweep container builds once: configuration, the due index and the SQS client."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final

from backfill_worker.due_index import DueIndex
from shared import aws
from shared.config import BackfillConfig, ConfigError
from shared.queues import region_from_queue_url
from shared.revalidation_store import RevalidationStore

SERVICE: Final = "sweep"


@dataclass(frozen=True)
class SweepRuntime:
    index: DueIndex
    sqs: Any
    queue_url: str
    key_prefix: str


@lru_cache(maxsize=1)
def sweep_runtime() -> SweepRuntime:
    """The container's runtime, from the backfill worker's variables on first use."""
    config = BackfillConfig.from_env(os.environ)
    if config.backfill_queue_url is None:
        raise ConfigError("EDGEFILL_BACKFILL_QUEUE_URL", "is required by the sweep but not set")
    return SweepRuntime(
        index=DueIndex(RevalidationStore(aws.client("s3", config.bucket_region), config.bucket)),
        sqs=aws.client("sqs", region_from_queue_url(config.backfill_queue_url)),
        queue_url=config.backfill_queue_url,
        key_prefix=config.key_prefix,
    )
