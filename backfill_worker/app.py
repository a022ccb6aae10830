"""Lambda entry point: an SQS batch of backfill messages, with partial failures."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.typing import LambdaContext

from backfill_worker.backfill import SERVICE, backfill_record, backfiller
from shared.observability import worker_logger, worker_metrics

logger = worker_logger(SERVICE)
metrics = worker_metrics(SERVICE)
# A batch whose every record failed (a trickling origin ran the invocation to its copy
# deadline) is still answered record by record, not raised as an invocation error.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    """Copy each record's object; failed records come back in ``batchItemFailures``."""
    backfiller()  # a ConfigError naming the variable fails the invocation: nothing is lost
    return process_partial_response(
        event=event, record_handler=backfill_record, processor=processor, context=context
    )
