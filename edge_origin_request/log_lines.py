"""The edge function's log: one JSON object per line on stdout.

Lambda@Edge writes stdout to CloudWatch Logs in the region where the function ran, in the
group ``/aws/lambda/us-east-1.<function name>``. A plain ``print`` of compact JSON costs a
few microseconds and needs no logging framework at every edge.
"""

from __future__ import annotations

import json
from typing import Any, Final

# A log line quotes at most this much of a viewer-controlled value (URIs reach 8 KiB).
MAX_QUOTED_CHARS: Final = 256


def quoted(value: object) -> object:
    """``value`` cut to ``MAX_QUOTED_CHARS`` if it is a long string, else unchanged."""
    if isinstance(value, str) and len(value) > MAX_QUOTED_CHARS:
        return value[:MAX_QUOTED_CHARS] + "..."
    return value


def log_queued(**fields: Any) -> None:
    """One line for a backfill message that SQS accepted."""
    _write("INFO", "backfill-queued", fields)


def log_skipped(reason: str, detail: str, **fields: Any) -> None:
    """One line for a failover that queues nothing because the worker would refuse it;
    ``reason`` is the worker's skip reason (``bad_key``, ``non_canonical``)."""
    _write("INFO", "backfill-skipped", {"reason": reason, "detail": quoted(detail), **fields})


def log_error(problem: str, reason: str, **fields: Any) -> None:
    """One line for something that went wrong; ``problem`` names the field or step."""
    _write("ERROR", "edge-error", {"problem": problem, "reason": quoted(reason), **fields})


def _write(level: str, event: str, fields: dict[str, Any]) -> None:
    line: dict[str, Any] = {"level": level, "event": event}
    line.update((name, quoted(value)) for name, value in fields.items())
    # default=repr: a log line must never raise on a value JSON cannot hold.
    print(json.dumps(line, separators=(",", ":"), default=repr), flush=True)
