"""Lambda entry point of the scheduled sweep (EventBridge): refresh messages for due copies."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from backfill_worker.revalidation_sweep import sweep
from backfill_worker.sweep_runtime import SERVICE, sweep_runtime
from shared.observability import worker_logger, worker_metrics

logger = worker_logger(SERVICE)
metrics = worker_metrics(SERVICE)


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """One sweep run; a ConfigError naming the variable fails the invocation."""
    rt = sweep_runtime()
    report = sweep(
        rt.index,
        rt.sqs,
        rt.queue_url,
        rt.key_prefix,
        datetime.now(UTC),
        lambda: context.get_remaining_time_in_millis() / 1000,
        logger,
    )
    logger.info("sweep summary", extra=report.as_dict())
    metrics.add_metric(name="RefreshesQueued", unit=MetricUnit.Count, value=report.sent)
    metrics.add_metric(name="DueEntriesBad", unit=MetricUnit.Count, value=report.bad_entries)
    return report.as_dict()
