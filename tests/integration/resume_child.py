"""A backfill worker in its own process, for the test that kills it mid-part.

    python -m tests.integration.resume_child '<worker env JSON>' '<message body>'

Runs one record with a 300 s Lambda context (the copy would take far less) and prints
"done" when it ends; the test kills it long before.
"""

from __future__ import annotations

import json
import sys

import boto3

from backfill_worker.record import Backfiller
from shared.config import BackfillConfig
from shared.object_store import ObjectStore
from shared.observability import worker_logger, worker_metrics
from shared.origin import OriginClient
from tests.integration.backfill_world import FakeLambdaContext


def main() -> None:
    config = BackfillConfig.from_env(json.loads(sys.argv[1]))
    worker = Backfiller(
        config=config,
        store=ObjectStore(boto3.client("s3"), config.bucket),
        origin=OriginClient(config.origin_url),
        sqs=boto3.client("sqs"),
        logger=worker_logger("backfill"),
        metrics=worker_metrics("backfill"),
    )
    print(worker.backfill(sys.argv[2], FakeLambdaContext(300)).status, flush=True)


if __name__ == "__main__":
    main()
