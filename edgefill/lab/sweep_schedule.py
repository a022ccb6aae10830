"""The revalidation sweep's EventBridge schedule, emulated: the real sweep handler
(``backfill_worker/sweep.py``) invoked every ``period`` seconds in a thread.

What EventBridge does and the lab does too: one invocation per period, with a scheduled
event and a Lambda context whose deadline is the function's timeout (the template's,
read by ``template_spec``); an invocation that raises is logged and the next one runs on
time. What differs: the period is the lab's (seconds, not the template's 15 minutes), and
a run that outlasts its period delays the next one instead of overlapping it (the
template reserves a concurrency of one for the same effect).

The sweep reads ``EDGEFILL_SWEEP_LOOKAHEAD`` like in Lambda; the lab sets it to this
period (``lab.py``), so every copy's refresh starts at its due time, as in production.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from edgefill.lab.pollers import LambdaContext

Handler = Callable[[dict[str, Any], Any], Any]
_log = logging.getLogger("edgefill.lab.sweep")


class SweepSchedule:
    """Invoke ``handler`` every ``period`` seconds until ``stop()``; ``runs`` counts them
    and ``last`` keeps the last run's answer (the sweep's report)."""

    def __init__(self, handler: Handler, period: float, function_timeout: float = 300.0) -> None:
        if period <= 0:
            raise ValueError(f"period must be positive, got {period}")
        self._handler = handler
        self.period = period
        self._timeout = function_timeout
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.runs = 0
        self.failures = 0
        self.last: Any = None

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="lab-sweep", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the schedule; a run in progress finishes first."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise RuntimeError(f"the lab sweep still runs after {timeout}s")
        self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None

    def _run(self) -> None:
        next_run = time.monotonic()
        while not self._stopping.is_set():
            event = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}
            context = LambdaContext("edgefill-lab-sweep", timeout=self._timeout)
            try:
                self.last = self._handler(event, context)
            except Exception:
                _log.exception("the lab sweep raised; the next run is on schedule")
                self.failures += 1
            self.runs += 1
            next_run = max(next_run + self.period, time.monotonic())
            self._stopping.wait(max(0.0, next_run - time.monotonic()))
