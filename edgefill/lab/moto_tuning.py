"""Four costs of moto in server mode that buy nothing here, removed without changing what
moto answers, and one way its S3 differs from S3's that the workers' leases depend on.
``tune_moto()`` is called by the process that runs moto for the lab and for the test
suite's session server (``edgefill/lab/aws.py``'s child).

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
- **Its first requests.** moto routes each request through botocore's model of the
  service, loaded on first use and cached, but not under a lock: every request that
  arrives before the first load ends loads the model again, each on a thread of its own
  and all on one GIL. A lab or a test that starts with a burst (the pollers, fifty
  viewers) paid for dozens of loads; a session server of the suite spent up to a third of
  its CPU there. And moto imports a service's code on its first request: SQS's took 0.3 s
  on an idle machine, past the edge function's 0.5 s read timeout on a loaded one (a test
  of the edge's SQS errors saw a timeout instead of SQS's answer). The models and code of
  S3 and SQS, the two services every lab and test uses, are loaded before the server
  takes its first request.
- **Its botocore sessions.** moto makes a new botocore session wherever it needs a list
  of regions: each of its backends when first used, and three times when CloudFormation
  (which the lab's stacks use) imports moto's EC2 models. Each new session has a data
  loader of its own, which parses the service's model again from disk: EC2's alone takes
  a quarter of a second each time. The sessions of this process share one loader here,
  as ``shared/aws.core_session`` does for the workers; it only reads botocore's packaged
  data, the same for every session.
- **Its conditional writes.** S3 applies ``If-None-Match: *`` and ``If-Match`` atomically:
  of two creates of one key, one fails. moto checks the condition, then writes, with
  nothing held between, and its server runs each request on a thread of its own: on a
  loaded machine two workers racing for one lease could both create it (seen in a CI run:
  two copies of one object, the first's release refused because the second had
  overwritten its lease). ``atomic_conditional_writes`` makes PutObject, DeleteObject and
  the POSTs (CompleteMultipartUpload with its ``If-None-Match``) one step each, as S3 does.
"""

from __future__ import annotations

import functools
import importlib
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

# The S3 request handlers whose conditions moto checks before it writes.
CONDITIONAL_WRITES = ("put_object", "delete_object", "_key_response_post")
# The services whose models are loaded before the first request: those that see bursts.
BURST_SERVICES = ("s3", "sqs")


def tune_moto() -> None:
    """Apply the five changes to this process's moto; idempotent."""
    _share_botocore_loader()
    _quicken_sqs_clock()
    _remember_module_list()
    _load_models_once()
    from moto.s3.responses import S3Response

    if not getattr(S3Response, "_edgefill_atomic", False):
        for name, handler in atomic_conditional_writes(S3Response).items():
            setattr(S3Response, name, handler)
        S3Response._edgefill_atomic = True  # type: ignore[attr-defined]


def atomic_conditional_writes(response_class: Any) -> dict[str, Callable[..., Any]]:
    """The S3 handlers of ``CONDITIONAL_WRITES``, each wrapped to run under one lock:
    a condition and the write it guards happen with no other write of this process between
    them. Returned rather than applied, so a test can apply them for its own duration."""
    lock = threading.RLock()  # reentrant: one handler may call another
    wrapped: dict[str, Callable[..., Any]] = {}
    for name in CONDITIONAL_WRITES:
        original = getattr(response_class, name)

        def one_step(
            self: Any, *args: Any, _original: Callable[..., Any] = original, **kwargs: Any
        ) -> Any:
            with lock:
                return _original(self, *args, **kwargs)

        wrapped[name] = functools.update_wrapper(one_step, original)
    return wrapped


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


def _share_botocore_loader() -> None:
    import botocore.session

    module: Any = botocore.session
    if not getattr(module.create_loader, "_edgefill_shared", False):
        shared = functools.cache(module.create_loader)  # one loader per data path
        shared._edgefill_shared = True  # type: ignore[attr-defined]
        module.create_loader = shared


def _load_models_once() -> None:
    from moto import backends as moto_backends
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.core.routing import get_service_router

    backends: Any = moto_backends  # get_backend's overloads take literal names only
    importlib.import_module("moto.iam.models")  # every first request reads the account from it
    for service in BURST_SERVICES:
        get_service_router(service)  # cached: loads the model (and its router) once
        # The service's code and its backend for the account (its regions read once), as
        # its first request would; then its routes.
        backends.get_backend(service)[DEFAULT_ACCOUNT_ID]
        importlib.import_module(f"moto.{service}.urls")


def _remember_module_list() -> None:
    from moto import backends

    module: Any = backends
    if getattr(module, "_edgefill_modules", None) is None:
        module._edgefill_modules = tuple(backends.list_of_moto_modules())
        module.list_of_moto_modules = lambda: module._edgefill_modules
