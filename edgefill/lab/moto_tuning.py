"""Two costs of moto in server mode that buy nothing here, removed without changing what
moto answers. ``tune_moto()`` is called by the process that runs moto for the lab and
for the test suite's session server (``edgefill/lab/aws.py``'s child).

- **Its SQS clock.** moto's SQS models ask ``moto.core.utils.unix_time_millis()`` for the
  time once per message whenever a queue's attributes are read, and SendMessage reads
  them for every message sent: each call imports ``datetime.UTC``, builds two datetimes
  and subtracts them. With a few hundred messages queued a SendMessageBatch of ten costs a
  tenth of a second of CPU, and a thousand queued fills take 18 s to send (the lab's
  playlist expansion, the sweep and their tests do exactly that). ``time.time()`` is the
  same clock (UTC seconds since the epoch, to the microsecond), so visibility, delays and
  timestamps are unchanged.
- **Its module list.** For every request the server asks whether the Host names a moto
  module by listing moto's package directory and stat-ing each of its ~170 entries: a
  sixth of the server's CPU in the integration tests. The directory of an installed
  package does not change while it runs, so the list is read once.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any


def tune_moto() -> None:
    """Apply both changes to this process's moto; idempotent."""
    _quicken_sqs_clock()
    _remember_module_list()


def _quicken_sqs_clock() -> None:
    import moto.sqs.models as sqs_models
    from moto.core import utils

    def unix_time(dt: datetime | None = None) -> float:
        return time.time() if dt is None else float(utils.unix_time(dt))

    def unix_time_millis(dt: datetime | None = None) -> float:
        return time.time() * 1000.0 if dt is None else float(utils.unix_time_millis(dt))

    module: Any = sqs_models
    module.unix_time = unix_time
    module.unix_time_millis = unix_time_millis


def _remember_module_list() -> None:
    from moto import backends

    module: Any = backends
    if getattr(module, "_edgefill_modules", None) is None:
        module._edgefill_modules = tuple(backends.list_of_moto_modules())
        module.list_of_moto_modules = lambda: module._edgefill_modules
