"""moto's SQS clock, read as a float instead of a datetime: same time, a fraction of the cost.

moto's SQS models ask ``moto.core.utils.unix_time_millis()`` for the time once per message
whenever a queue's attributes are read, and SendMessage reads them for every message sent:
each call imports ``datetime.UTC``, builds two datetimes and subtracts them. With a few
hundred messages queued a SendMessageBatch of ten then costs a tenth of a second of CPU,
and a thousand queued fills take 18 s to send (the lab's playlist expansion, the sweep and
their tests do exactly that). ``time.time()`` is the same clock (UTC seconds since the
epoch, to the microsecond), so visibility, delays and timestamps are unchanged.

Called by the process that runs moto for the lab and for the test suite's session server
(``edgefill/lab/aws.py``'s child).
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any


def quicken_sqs_clock() -> None:
    """Make moto's SQS models read "now" as ``time.time()``; idempotent."""
    import moto.sqs.models as sqs_models
    from moto.core import utils

    if getattr(sqs_models, "_edgefill_quick_clock", False):
        return

    def unix_time(dt: datetime | None = None) -> float:
        return time.time() if dt is None else float(utils.unix_time(dt))

    def unix_time_millis(dt: datetime | None = None) -> float:
        return time.time() * 1000.0 if dt is None else float(utils.unix_time_millis(dt))

    module: Any = sqs_models
    module.unix_time = unix_time
    module.unix_time_millis = unix_time_millis
    module._edgefill_quick_clock = True
