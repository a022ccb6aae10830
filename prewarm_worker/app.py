"""Lambda entry point: an SQS batch of prewarm messages, with partial batch failures."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from prewarm_worker.worker import prewarm_record, runtime
from shared.observability import worker_logger, worker_metrics

processor = BatchProcessor(event_type=EventType.SQS)
logger = worker_logger("prewarm")
metrics = worker_metrics("prewarm")


def warm_record(record: SQSRecord, lambda_context: Any = None) -> None:
    remaining = lambda_context.get_remaining_time_in_millis() if lambda_context else None
    prewarm_record(record.body, runtime, logger, metrics, record.message_id, remaining_ms=remaining)


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> Any:
    return process_partial_response(
        event=event, record_handler=warm_record, processor=processor, context=context
    )
