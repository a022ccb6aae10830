"""What ``EDGEFILL_MAX_WARM_BYTES`` left out of a message, said once.

The engine stops starting tasks once a message's downloads reach the cap and lists the
tasks it left out (``WarmReport.capped``). They are not failures: the worker neither
re-enqueues them nor gives them up; this one warning line names how many and which
(up to ``QUOTED_TASKS``), and the ``WarmCapped`` metric counts them."""

from __future__ import annotations

from typing import Final

from prewarm_worker.engine import WarmReport
from shared.observability import Log

QUOTED_TASKS: Final = 20  # tasks named in the log line; the count covers them all


def log_capped(report: WarmReport, max_bytes: int | None, log: Log, message_id: str | None) -> None:
    """One warning when the cap left tasks out; nothing otherwise."""
    if not report.capped:
        return
    log.warning(
        "prewarm tasks capped",
        extra={
            "messageId": message_id,
            "maxWarmBytes": max_bytes,
            "bytes": report.bytes,
            "capped": len(report.capped),
            "left": [
                {"path": task.path, "target": task.target, "encoding": task.encoding}
                for task in report.capped[:QUOTED_TASKS]
            ],
        },
    )
