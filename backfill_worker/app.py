"""Lambda entry point: an SQS batch of backfill messages, with partial failures."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from backfill_worker.flight.invocation import InvocationContext
from backfill_worker.flight.outcome import Outcome
from backfill_worker.runtime import BACKFILL_SERVICE, backfiller
from shared.observability import worker_logger, worker_metrics

logger = worker_logger(BACKFILL_SERVICE)
metrics = worker_metrics(BACKFILL_SERVICE)
# A batch whose every record failed (a trickling origin ran the invocation to its copy
# deadline) is still answered record by record, not raised as an invocation error.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def backfill_record(record: SQSRecord, lambda_context: InvocationContext | None = None) -> Outcome:
    """Powertools record handler: process one SQS record (raises to have it retried)."""
    return backfiller().backfill(record.body, lambda_context, record.message_id)


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    """Copy each record's object; failed records come back in ``batchItemFailures``.
    Paths the batch replaced or deleted are invalidated in batches across invocations."""
    worker = backfiller()  # a ConfigError naming the variable fails the invocation
    response = process_partial_response(
        event=event, record_handler=backfill_record, processor=processor, context=context
    )
    worker.settle_invalidations()
    return response
