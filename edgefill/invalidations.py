"""``edgefill invalidate``: CloudFront invalidations in batches, and waiting for them.

CloudFront takes at most 3 000 paths in progress per distribution, and at most 15 of
them wildcards (``/img/*``). A batch is therefore at most 3 000 paths with at most 15
wildcards (``shared/invalidations.py``, shared with the backfill worker); batches are
created one after another, and one refused with ``TooManyInvalidationsInProgress`` is
tried again once earlier ones have progressed.

Paths are what viewers request, percent-encoded as CloudFront expects (an operator may
type ``/img/a b.jpg``: it becomes ``/img/a%20b.jpg``). A ``*`` is a wildcard only as the
last character, as CloudFront reads it.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from botocore.exceptions import ClientError

from edgefill.operations import OperatorError, as_uri
from shared.invalidations import batches, create_invalidation

# Polling GetInvalidation: CloudFront usually completes within a minute or two.
POLL_SECONDS: Final = 5.0
RETRY_BUSY_SECONDS: Final = 20.0


def invalidation_paths(paths: Sequence[tuple[str, str]]) -> list[str]:
    """Percent-encoded invalidation paths; ``where`` names each one's source in errors."""
    out: list[str] = []
    for where, path in paths:
        wildcard = path.endswith("*")
        stem = path[:-1] if wildcard else path
        if "*" in stem:
            raise OperatorError(f"{where}: {path[:80]!r}: '*' is a wildcard only at the end")
        if stem in ("", "/"):
            if not path.startswith("/"):
                raise OperatorError(f"{where}: path {path[:80]!r} must start with '/'")
            uri = "/"  # the root (default root object), or /* for everything
        else:
            # as_uri validates the path as the backfill would (no traversal, no _edgefill/).
            uri = as_uri(where, stem)
        out.append(uri + ("*" if wildcard else ""))
    return list(dict.fromkeys(out))


@dataclass
class Batch:
    paths: list[str]
    invalidation_id: str | None = None
    status: str | None = None
    error: str | None = None


@dataclass
class InvalidationRun:
    distribution_id: str
    batches: list[Batch] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(batch.invalidation_id and batch.error is None for batch in self.batches)

    @property
    def completed(self) -> int:
        return sum(1 for b in self.batches if (b.status or "").lower() == "completed")


def create(
    cloudfront: Any,
    distribution_id: str,
    paths: Sequence[str],
    sleep: Callable[[float], None] = time.sleep,
    busy_retries: int = 30,
    on_batch: Callable[[Batch], None] | None = None,
    stop: threading.Event | None = None,
) -> InvalidationRun:
    """Create one invalidation per batch; a batch that fails is recorded, not raised.
    Once ``stop`` is set (Ctrl-C) no batch is created: those left have no ID and no error."""
    run = InvalidationRun(distribution_id, [Batch(list(b)) for b in batches(paths)])
    for batch in run.batches:
        for attempt in range(busy_retries + 1):
            if stop is not None and stop.is_set():
                return run
            try:
                invalidation = create_invalidation(
                    cloudfront, distribution_id, batch.paths, f"edgefill-cli-{uuid.uuid4()}"
                )
            except ClientError as error:
                code = str(error.response.get("Error", {}).get("Code", ""))
                message = str(error.response.get("Error", {}).get("Message", error))
                if code == "TooManyInvalidationsInProgress" and attempt < busy_retries:
                    _pause(RETRY_BUSY_SECONDS, sleep, stop)
                    continue
                if code in ("NoSuchDistribution", "AccessDenied", "InvalidArgument") and (
                    batch is run.batches[0]
                ):
                    raise OperatorError(f"CreateInvalidation: {code}: {message}") from None
                batch.error = f"{code}: {message}"
                break
            batch.invalidation_id = str(invalidation["Id"])
            batch.status = str(invalidation.get("Status", ""))
            break
        if on_batch is not None:
            on_batch(batch)
    return run


def wait(
    cloudfront: Any,
    run: InvalidationRun,
    timeout: float,
    on_progress: Callable[[InvalidationRun], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    stop: threading.Event | None = None,
) -> bool:
    """Poll each created batch until every one is Completed; False on timeout, or as soon
    as ``stop`` is set."""
    deadline = clock() + timeout
    while True:
        if stop is not None and stop.is_set():
            return False
        for batch in run.batches:
            if batch.invalidation_id is None or (batch.status or "").lower() == "completed":
                continue
            found = cloudfront.get_invalidation(
                DistributionId=run.distribution_id, Id=batch.invalidation_id
            )
            batch.status = str(found["Invalidation"].get("Status", ""))
        if on_progress is not None:
            on_progress(run)
        created = [b for b in run.batches if b.invalidation_id is not None]
        if all((b.status or "").lower() == "completed" for b in created):
            return True
        if clock() >= deadline:
            return False
        _pause(POLL_SECONDS, sleep, stop)


def _pause(seconds: float, sleep: Callable[[float], None], stop: threading.Event | None) -> None:
    """``sleep``, or, with a ``stop`` event, a wait that ends when it is set."""
    if stop is None:
        sleep(seconds)
    else:
        stop.wait(seconds)
