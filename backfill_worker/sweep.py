"""Lambda entry point of the scheduled sweep (EventBridge): refresh messages for due copies
(the logic: ``freshness/sweep.py``), one run at a time (``flight/exclusive.py``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from backfill_worker.flight.exclusive import SWEEP_RUN, exclusive_run
from backfill_worker.freshness.sweep import SweepReport, sweep
from backfill_worker.runtime import SWEEP_SERVICE, sweep_runtime
from shared.observability import worker_logger, worker_metrics

logger = worker_logger(SWEEP_SERVICE)
metrics = worker_metrics(SWEEP_SERVICE)


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """One sweep run; a ConfigError naming the variable fails the invocation."""
    rt = sweep_runtime()
    seconds = context.get_remaining_time_in_millis() / 1000
    with exclusive_run(rt.flight, SWEEP_RUN, context.aws_request_id, seconds) as alone:
        if not alone:  # another run is still going: it sends these refreshes
            logger.warning("sweep skipped: another run holds the sweep lease")
            metrics.add_metric(name="SweepsOverlapped", unit=MetricUnit.Count, value=1)
            return {**SweepReport().as_dict(), "overlapped": True}
        report = sweep(
            rt.index,
            rt.queue,
            datetime.now(UTC),
            lambda: context.get_remaining_time_in_millis() / 1000,
            logger,
            lookahead=rt.lookahead,
        )
    logger.info("sweep summary", extra=report.as_dict())
    metrics.add_metric(name="RefreshesQueued", unit=MetricUnit.Count, value=report.sent)
    metrics.add_metric(name="DueEntriesBad", unit=MetricUnit.Count, value=report.bad_entries)
    return report.as_dict()
