"""Invalidations of one invocation: the paths a batch replaced or deleted, sent to
CloudFront in one ``CreateInvalidation`` when the batch is done, never one per object
(CloudFront bills each path beyond 1 000 a month, and an invalidation per object would
also hit the limit of 3 000 paths in progress).

Paths are the viewer URIs as CloudFront passes them to the origin: percent-encoded
(non-ASCII and RFC 1738 unsafe characters escaped, nothing else), with ``*`` escaped as
``%2A`` so a URI holding one is never read as a wildcard. Replaced paths are then warmed
by one prewarm message carrying ``afterInvalidation``; deleted and unchanged ones are
not. Without ``EDGEFILL_DISTRIBUTION_ID`` nothing is invalidated and the log says so:
edges keep the old copy until their TTL.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from botocore.exceptions import BotoCoreError, ClientError

from shared.messages import MAX_PATHS, PrewarmMessage, to_json
from shared.observability import Log
from shared.queues import send_and_log

# CloudFront takes at most 3 000 paths in progress per distribution (15 wildcards).
MAX_PATHS_PER_INVALIDATION: Final = 3000


def invalidation_path(uri: str) -> str:
    """The CloudFront invalidation path of a viewer URI (already percent-encoded)."""
    return uri.replace("*", "%2A")


@dataclass
class FlushReport:
    """What one flush did."""

    paths: int = 0
    invalidation_ids: list[str] = field(default_factory=list)
    warmed_paths: int = 0
    failed: str | None = None


class PendingInvalidations:
    """Paths collected while a batch runs (records may run in threads: a lock guards)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._replaced: dict[str, None] = {}
        self._deleted: dict[str, None] = {}

    def replaced(self, uri: str) -> None:
        with self._lock:
            self._replaced[uri] = None

    def deleted(self, uri: str) -> None:
        with self._lock:
            self._deleted[uri] = None

    def take(self) -> tuple[list[str], list[str]]:
        """(replaced, deleted) URIs collected so far; the collection starts empty again."""
        with self._lock:
            replaced, deleted = list(self._replaced), list(self._deleted)
            self._replaced, self._deleted = {}, {}
        return replaced, deleted

    def flush(
        self,
        cloudfront: Any | None,
        distribution_id: str | None,
        sqs: Any | None,
        prewarm_queue_url: str | None,
        log: Log,
    ) -> FlushReport:
        """Invalidate every collected path, then warm the replaced ones after it."""
        replaced, deleted = self.take()
        paths = list(dict.fromkeys(invalidation_path(uri) for uri in replaced + deleted))
        report = FlushReport(paths=len(paths))
        if not paths:
            return report
        if distribution_id is None or cloudfront is None:
            log.warning(
                "EDGEFILL_DISTRIBUTION_ID is not set: nothing invalidated, edges keep the "
                "old copy until their TTL",
                extra={"paths": paths[:20], "count": len(paths)},
            )
            return report
        id_of: dict[str, str] = {}
        try:
            for start in range(0, len(paths), MAX_PATHS_PER_INVALIDATION):
                chunk = paths[start : start + MAX_PATHS_PER_INVALIDATION]
                invalidation_id = _create(cloudfront, distribution_id, chunk)
                report.invalidation_ids.append(invalidation_id)
                id_of.update(dict.fromkeys(chunk, invalidation_id))
        except (ClientError, BotoCoreError) as error:
            report.failed = f"{type(error).__name__}: {error}"
            # The copies are already replaced or deleted; a retry of the records would
            # find them unchanged. So the operator is told exactly what to run.
            log.error(
                "CreateInvalidation failed: edges keep the old copy until their TTL; run "
                "`edgefill invalidate` for these paths",
                extra={"paths": paths[:50], "count": len(paths), "error": report.failed},
            )
            return report
        log.info(
            "invalidation created",
            extra={"ids": report.invalidation_ids, "paths": paths[:20], "count": len(paths)},
        )
        by_invalidation: dict[str, list[str]] = {}
        for uri in replaced:
            by_invalidation.setdefault(id_of[invalidation_path(uri)], []).append(uri)
        for invalidation_id, uris in by_invalidation.items():
            report.warmed_paths += _warm_after(sqs, prewarm_queue_url, uris, invalidation_id, log)
        return report


def _create(cloudfront: Any, distribution_id: str, paths: Sequence[str]) -> str:
    response = cloudfront.create_invalidation(
        DistributionId=distribution_id,
        InvalidationBatch={
            "Paths": {"Quantity": len(paths), "Items": list(paths)},
            "CallerReference": f"edgefill-{uuid.uuid4()}",
        },
    )
    return str(response["Invalidation"]["Id"])


def _warm_after(
    sqs: Any | None, queue_url: str | None, uris: list[str], invalidation_id: str, log: Log
) -> int:
    if sqs is None or queue_url is None:
        return 0
    bodies = [
        to_json(
            PrewarmMessage(
                paths=tuple(uris[start : start + MAX_PATHS]),
                source="refresh",
                after_invalidation=invalidation_id,
            )
        )
        for start in range(0, len(uris), MAX_PATHS)
    ]
    if send_and_log(sqs, queue_url, bodies, log, "prewarm after invalidation not sent"):
        return 0
    return len(uris)
