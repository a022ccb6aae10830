"""The edge function's log: one JSON object per line on stdout.

Lambda@Edge writes stdout to CloudWatch Logs in the region where the function ran, in the
group ``/aws/lambda/us-east-1.<function name>``. A plain ``print`` of compact JSON costs a
few microseconds and needs no logging framework at every edge.

Two events also carry a CloudWatch metric in the embedded metric format (EMF): a backfill
queued (``FailoversQueued``) and a backfill that could not be sent (``SendFailures``).
The metric rides on the event's own log line, so it costs no extra print and no I/O;
CloudWatch Logs extracts it in the replica's region, in the ``edgefill`` namespace with the
dimension ``service=edge`` (the dashboard's edge widgets read exactly that).

Every field is redacted before it is written (``shared.redact``): a ``query`` field keeps
its parameter names and loses its values, and any other text loses the values of every
URL query and the userinfo of every URL it holds, so a viewer's signed URL never lands in
CloudWatch.
"""

from __future__ import annotations

import json
import time
from typing import Any, Final

from shared.redact import redact_query, redact_text

# A log line quotes at most this much of a viewer-controlled value (URIs reach 8 KiB).
MAX_QUOTED_CHARS: Final = 256
# EMF: the namespace the workers use too, and the one dimension the edge's metrics carry.
METRICS_NAMESPACE: Final = "edgefill"
SERVICE: Final = "edge"


def quoted(value: object) -> object:
    """``value`` cut to ``MAX_QUOTED_CHARS`` if it is a long string, else unchanged."""
    if isinstance(value, str) and len(value) > MAX_QUOTED_CHARS:
        return value[:MAX_QUOTED_CHARS] + "..."
    return value


def redacted(name: str, value: object) -> object:
    """``value`` of field ``name`` as it may be logged: query values and userinfo removed
    (before any cut, so a cut can never leave half a value behind)."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if not isinstance(value, str):  # a list or an object: logged as its redacted repr
        return redact_text(repr(value))
    return redact_query(value) if name == "query" else redact_text(value)


def log_queued(**fields: Any) -> None:
    """One line for a backfill message that SQS accepted; counts ``FailoversQueued``."""
    _write("INFO", "backfill-queued", fields, metric="FailoversQueued")


def log_skipped(reason: str, detail: str, **fields: Any) -> None:
    """One line for a failover that queues nothing because the worker would refuse it;
    ``reason`` is the worker's skip reason (``bad_key``, ``non_canonical``)."""
    _write("INFO", "backfill-skipped", {"reason": reason, "detail": detail, **fields})


def log_error(problem: str, reason: str, **fields: Any) -> None:
    """One line for something that went wrong; ``problem`` names the field or step."""
    _write("ERROR", "edge-error", {"problem": problem, "reason": reason, **fields})


def log_send_failed(problem: str, reason: str, **fields: Any) -> None:
    """``log_error`` for a backfill message that did not reach its queue; counts
    ``SendFailures``."""
    _write(
        "ERROR",
        "edge-error",
        {"problem": problem, "reason": quoted(reason), **fields},
        metric="SendFailures",
    )


def _write(level: str, event: str, fields: dict[str, Any], metric: str | None = None) -> None:
    line: dict[str, Any] = {"level": level, "event": event}
    line.update((name, quoted(redacted(name, value))) for name, value in fields.items())
    if metric is not None:
        line.update(_emf(metric))
    # default=repr: a log line must never raise on a value JSON cannot hold.
    print(json.dumps(line, separators=(",", ":"), default=repr), flush=True)


def _emf(metric: str) -> dict[str, Any]:
    """The EMF members that make a log line count one ``metric`` (set last, so no field of
    the line can shadow them)."""
    return {
        "_aws": {
            "Timestamp": int(time.time() * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": METRICS_NAMESPACE,
                    "Dimensions": [["service"]],
                    "Metrics": [{"Name": metric, "Unit": "Count"}],
                }
            ],
        },
        "service": SERVICE,
        metric: 1,
    }
