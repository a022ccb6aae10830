"""Powertools Logger and Metrics for the regional workers (structured JSON, EMF on stdout)."""

from __future__ import annotations

from typing import Final

from aws_lambda_powertools import Logger, Metrics

NAMESPACE: Final = "edgefill"


def worker_logger(service: str) -> Logger:
    """A JSON logger whose lines carry ``service`` (``backfill``, ``prewarm``)."""
    return Logger(service=service)


def worker_metrics(service: str) -> Metrics:
    """EMF metrics in the ``edgefill`` namespace, dimensioned by ``service``."""
    return Metrics(namespace=NAMESPACE, service=service)
