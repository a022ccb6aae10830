"""What a container builds once, for both handlers: configuration (read from the
environment on first use, a ``ConfigError`` naming the variable otherwise) and the
clients and adapters the logic receives.

- ``backfiller()``: the backfill worker (``app.py``), a ``record.Backfiller``;
- ``sweep_runtime()``: the scheduled sweep (``sweep.py``): the due index and the queue
  its refresh messages go to.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

from backfill_worker.fill.expand import PlaylistExpander
from backfill_worker.flight.lease import SingleFlight
from backfill_worker.flight.telemetry import SERVICE
from backfill_worker.freshness.due_index import DueIndex
from backfill_worker.freshness.sweep import RefreshQueue
from backfill_worker.record import Backfiller
from shared import aws
from shared.config import BackfillConfig, ConfigError
from shared.dead_letters import dead_letters_for
from shared.object_store import ObjectStore
from shared.observability import worker_logger, worker_metrics
from shared.origin import OriginClient
from shared.queues import region_from_queue_url

BACKFILL_SERVICE: Final = SERVICE
SWEEP_SERVICE: Final = "sweep"


@lru_cache(maxsize=1)
def backfiller() -> Backfiller:
    """The container's Backfiller: configuration read and clients built once, on first use."""
    config = BackfillConfig.from_env(os.environ)
    sqs = None
    # One client for the prewarm queue and the continuations (one stack, one region).
    queue_url = config.prewarm_queue_url or config.backfill_queue_url
    if queue_url is not None:
        sqs = aws.client("sqs", region_from_queue_url(queue_url))
    # An existing bucket may live in another region (EDGEFILL_BUCKET_REGION).
    s3 = aws.client("s3", config.bucket_region)
    store = ObjectStore(s3, config.bucket)
    logger, metrics = worker_logger(BACKFILL_SERVICE), worker_metrics(BACKFILL_SERVICE)
    expander = None
    if config.expand_playlists and config.backfill_queue_url is not None:
        backfill_sqs = aws.client("sqs", region_from_queue_url(config.backfill_queue_url))
        expander = PlaylistExpander(config, store, backfill_sqs, logger, metrics)
    return Backfiller(
        config=config,
        store=store,
        origin=OriginClient(config.origin_url),
        sqs=sqs,
        logger=logger,
        metrics=metrics,
        expander=expander,
        copies=store,
        # CloudFront's API lives in us-east-1 whatever the worker's region.
        cloudfront=aws.client("cloudfront", "us-east-1") if config.distribution_id else None,
        dead_letters=dead_letters_for(config.dlq_url),
    )


@dataclass(frozen=True)
class SweepRuntime:
    """What a sweep container builds once."""

    index: DueIndex
    queue: RefreshQueue
    lookahead: int  # EDGEFILL_SWEEP_LOOKAHEAD: refreshes queued this far ahead, delayed
    flight: SingleFlight  # the run lease: one sweep at a time (flight/exclusive.py)


@lru_cache(maxsize=1)
def sweep_runtime() -> SweepRuntime:
    """The container's sweep runtime, from the backfill worker's variables on first use."""
    config = BackfillConfig.from_env(os.environ)
    if config.backfill_queue_url is None:
        raise ConfigError("EDGEFILL_BACKFILL_QUEUE_URL", "is required by the sweep but not set")
    store = ObjectStore(aws.client("s3", config.bucket_region), config.bucket)
    return SweepRuntime(
        index=DueIndex(store),
        queue=RefreshQueue(
            sqs=aws.client("sqs", region_from_queue_url(config.backfill_queue_url)),
            queue_url=config.backfill_queue_url,
            key_prefix=config.key_prefix,
        ),
        lookahead=config.sweep_lookahead,
        flight=SingleFlight(store),
    )
