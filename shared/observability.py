"""Powertools Logger and Metrics for the regional workers (structured JSON, EMF on stdout).

Every worker log record passes through ``RedactingFilter`` on its way out: the message and
every ``extra`` field have their URL query values and userinfo removed
(``shared.redact.redact_text``), so a viewer's signed URL that reaches a worker (in a
path, an origin's redirect, an exception's message) never lands in CloudWatch.
"""

from __future__ import annotations

import logging
from typing import Any, Final, Protocol

from aws_lambda_powertools import Logger, Metrics

from shared.redact import redact_text

NAMESPACE: Final = "edgefill"
# The attributes every LogRecord has; anything else on a record came from ``extra=``.
_RECORD_ATTRIBUTES: Final = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
}
# How deep the filter looks into an extra field's lists and dicts (log fields are flat or
# one level deep; the bound keeps a cyclic value from looping).
_MAX_DEPTH: Final = 4


class Log(Protocol):
    """What logic modules use of a logger: Powertools' ``Logger``, a ``logging.Logger``
    or a test's recorder all fit."""

    def info(self, msg: str, *args: Any, **kwargs: Any) -> Any: ...
    def warning(self, msg: str, *args: Any, **kwargs: Any) -> Any: ...
    def error(self, msg: str, *args: Any, **kwargs: Any) -> Any: ...


class RedactingFilter(logging.Filter):
    """Removes URL query values and userinfo from a record's message and extra fields."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact_text(record.msg)
        for name, value in list(vars(record).items()):
            if name not in _RECORD_ATTRIBUTES:
                setattr(record, name, _redacted(value, _MAX_DEPTH))
        return True


def _redacted(value: object, depth: int) -> object:
    if isinstance(value, str):
        return redact_text(value)
    if depth == 0:
        return value
    if isinstance(value, list | tuple):
        return [_redacted(item, depth - 1) for item in value]
    if isinstance(value, dict):
        return {key: _redacted(item, depth - 1) for key, item in value.items()}
    return value


def worker_logger(service: str) -> Logger:
    """A JSON logger whose lines carry ``service`` (``backfill``, ``prewarm``), redacted."""
    logger = Logger(service=service)
    underlying = logging.getLogger(logger.name)
    if not any(isinstance(f, RedactingFilter) for f in underlying.filters):
        underlying.addFilter(RedactingFilter())
    return logger


def worker_metrics(service: str) -> Metrics:
    """EMF metrics in the ``edgefill`` namespace, dimensioned by ``service``."""
    return Metrics(namespace=NAMESPACE, service=service)
