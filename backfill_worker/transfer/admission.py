"""Part admission: whether a resumable copy may still start a part before its handover
point, judged by the throughput seen so far.

A copy that will not finish in this invocation stops starting parts at ``handover_at``
(``EDGEFILL_HANDOVER_SECONDS`` before the invocation's end) and is handed over to a
continuation (``flight/continuation.py``). Starting a part that cannot finish by then
would download bytes that are thrown away, so a part starts only when the rate one part
connection has reached so far says it ends before ``handover_at``. With nothing measured
yet (the first parts of a first invocation) parts start; a continuation starts with the
rate its predecessor saw (kept in the checkpoint).

Parts still in flight at ``handover_at`` may go on until the copy plan's ``deadline``
(the cleanup margin): the read budget ends those that cannot, and they are dropped.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Final

# Weight of the newest part in the rate: recent parts matter more (a link that slows
# down shows within a few parts), one odd part does not swing the judgement.
_SMOOTHING: Final = 0.3


class PartAdmission:
    """Admission of parts before the handover point (thread-safe)."""

    def __init__(
        self,
        handover_at: float | None,
        rate: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.handover_at = handover_at
        self._rate = max(0.0, rate)
        self._clock = clock
        self._lock = threading.Lock()

    @property
    def rate(self) -> float:
        """Bytes per second one part connection achieves (0 until measured)."""
        return self._rate

    def record(self, size: int, seconds: float) -> None:
        """A part of ``size`` bytes took ``seconds`` from its first request to its upload."""
        if size <= 0 or seconds <= 0:
            return
        sample = size / seconds
        with self._lock:
            if self._rate <= 0:
                self._rate = sample
            else:
                self._rate += _SMOOTHING * (sample - self._rate)

    def may_start(self, size: int) -> bool:
        """True when a part of ``size`` bytes started now should end before the handover."""
        if self.handover_at is None:
            return True
        now = self._clock()
        if now >= self.handover_at:
            return False
        rate = self._rate
        return rate <= 0 or now + size / rate <= self.handover_at

    def past_handover(self) -> bool:
        return self.handover_at is not None and self._clock() >= self.handover_at
