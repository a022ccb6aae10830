"""The backfill worker's logger and metrics, as every flow of a record uses them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric

SERVICE: Final = "backfill"


@dataclass(frozen=True, slots=True)
class Telemetry:
    """Powertools' ``Logger`` and ``Metrics`` of the worker."""

    logger: Logger
    metrics: Metrics

    def count_by_reason(self, name: str, reason: str) -> None:
        """One ``name`` count with a ``reason`` dimension (``Skipped{reason}``,
        ``Failed{reason}``, ``Refreshed{reason}``), flushed at once: reasons must not
        multiply the dimensions of the invocation's other metrics."""
        with single_metric(
            name=name,
            unit=MetricUnit.Count,
            value=1,
            namespace=self.metrics.namespace,
            default_dimensions={"service": SERVICE},
        ) as metric:
            metric.add_dimension(name="reason", value=reason)
