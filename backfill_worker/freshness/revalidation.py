"""Revalidation: the decision of a refresh. A copy is checked against the origin, then
kept, replaced or deleted.

The decision, in order (docs/BACKFILL.md "Freshness"):

1. **The copy is missing**: the caller fills it, as for ``mode: "fill"``.
2. **The copy is not edgefill's** (``is_edgefills``: no ``fetched-at`` nor
   ``origin-etag`` / ``origin-last-modified`` metadata): left alone; edgefill never
   replaces or deletes an object it did not write.
3. Under the key's lease, held by the caller (single-flight: concurrent refreshes of one
   object cost the origin one body; the others find the lease taken), a conditional GET with
   ``If-None-Match: <origin-etag>`` and ``If-Modified-Since: <origin-last-modified>``:
   - **304**, a **200 with the stored ETag**, or (an origin without validators) a
     one-part 200 whose bytes are the copy's: ``unchanged``. No byte is rewritten;
     ``checked-at`` is recorded in the due index, which moves the next revalidation;
   - **200, another version**: ``replaced``, through the same verified streaming copy,
     with the overwrite conditional on the S3 ETag read at the start (``IfMatch``);
   - **404 or 410**: ``deleted``, with a delete conditional on that same ETag;
   - anything else raises, as for a fill (transient: retried; permanent: skipped).

4. A replacing copy longer than one invocation resumes like a fill's (docs/BACKFILL.md,
   "Copies longer than one invocation"): given the lease's progress it saves its
   checkpoint, which also names the S3 ETag it replaces (``replaces``), and stops at the
   handover point (``handed_over``, with the checkpoint). The continuation, under the
   same lease, reads the copy again: one that no longer has that ETag was changed by
   another writer meanwhile, so the upload is aborted (``COPY_CHANGED``); otherwise the copy
   resumes from the checkpoint (no new conditional GET) and completes with ``IfMatch``
   on that same ETag. An origin that changed again starts over on its newest version.

A copy that changed under us (a concurrent writer won the ``IfMatch``) is kept as it is
and reported as ``COPY_CHANGED``: the other writer's version is at least as new as ours.
That status is the copy changing, never the origin (a changed origin is ``REPLACED``, or
``DELETED``); its value stays ``"changed"``, the public ``Refreshed{reason}`` dimension.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Final

from backfill_worker.freshness.due_index import DueIndex, record_copy
from backfill_worker.freshness.lifetime import FETCHED_AT, ORIGIN_ETAG, ORIGIN_LAST_MODIFIED
from backfill_worker.transfer.copy import CopyResult, CopyTerms, copy_object
from backfill_worker.transfer.errors import CopyUnchanged
from backfill_worker.transfer.plan import CopyPlan
from backfill_worker.transfer.progress import Progress
from backfill_worker.transfer.resume import abort_if_ours
from shared.messages import format_time
from shared.object_store import ObjectStore, StoredCopy
from shared.origin import OriginClient, OriginError

# Origin statuses that mean "the object is gone": the copy must go too.
GONE: Final = (404, 410)
# Validators come from object metadata (anyone with write access may have set it): only
# printable ASCII of a sane length is sent back to the origin as a header.
_HEADER_VALUE = re.compile(r"[\x20-\x7e]{1,512}")
_PLAIN_MD5 = re.compile(r'"?([0-9a-fA-F]{32})"?')


class RefreshStatus(StrEnum):
    """How a revalidation ended; the values are the ``Refreshed{reason}`` dimensions."""

    UNCHANGED = "unchanged"  # the origin has the copy's version: nothing rewritten
    REPLACED = "replaced"  # the origin has another version: the copy now holds it
    DELETED = "deleted"  # the origin no longer has the object: neither has the bucket
    COPY_CHANGED = "changed"  # another writer changed the copy meanwhile: theirs stays
    HANDED_OVER = "handed_over"  # the replacing copy continues in another invocation


@dataclass(frozen=True, slots=True)
class RefreshResult:
    """``status`` (``RefreshStatus``); with ``HANDED_OVER``, ``copy`` carries the
    checkpoint a continuation resumes from."""

    status: RefreshStatus
    size: int = 0
    copy: CopyResult | None = None


@dataclass
class Revalidation:
    """The adapters a refresh uses (the same as a fill's, plus the due index)."""

    store: ObjectStore
    copies: ObjectStore
    index: DueIndex
    origin: OriginClient
    revalidate_after: int
    now: Callable[[], datetime] = lambda: datetime.now(UTC)

    def revalidate(
        self,
        key: str,
        url: str,
        plan: CopyPlan,
        stored: StoredCopy,
        progress: Progress | None = None,
    ) -> RefreshResult:
        """Steps 3 and 4 of the module docstring for ``stored``, read under the caller's
        lease; ``progress`` (the lease's) makes the replacing copy resumable. Raises what
        ``copy_object`` raises (the caller maps it as for a fill)."""
        replaced = replaced_etag(progress)
        if replaced is not None and replaced != stored.etag:
            # Another writer changed the copy since this replace began: theirs stays.
            assert progress is not None and progress.inherited is not None
            abort_if_ours(self.store, key, progress.inherited.get("uploadId"))
            return RefreshResult(RefreshStatus.COPY_CHANGED)
        started = self.now()
        terms = CopyTerms(
            metadata={FETCHED_AT: format_time(started)},
            conditions=conditions_of(stored),
            unchanged_etag=_header_value(stored.metadata.get(ORIGIN_ETAG)),
            unchanged_md5=plain_md5(stored.etag),
        )
        try:
            result = copy_object(
                self.origin,
                self.store.replacing(stored.etag),
                key,
                url,
                plan,
                terms,
                progress=progress,
            )
        except CopyUnchanged:
            self.record(key, stored, checked_at=started)
            return RefreshResult(RefreshStatus.UNCHANGED, stored.size)
        except OriginError as error:
            if error.status not in GONE:
                raise
            deleted = self.copies.delete_if_match(key, stored.etag)
            return RefreshResult(RefreshStatus.DELETED if deleted else RefreshStatus.COPY_CHANGED)
        if result.handover is not None:
            return RefreshResult(RefreshStatus.HANDED_OVER, copy=result)
        if not result.created:
            return RefreshResult(RefreshStatus.COPY_CHANGED, copy=result)
        fresh = self.copies.head(key)
        if fresh is not None:
            self.record(key, fresh, checked_at=None)
        return RefreshResult(RefreshStatus.REPLACED, result.size, result)

    def record(self, key: str, copy: StoredCopy, checked_at: datetime | None) -> None:
        """Write the due entry of ``copy``; ``checked_at`` is when it was last revalidated
        (it is then due a lifetime after that)."""
        record_copy(
            self.index,
            key,
            copy,
            checked_at,
            default_lifetime=self.revalidate_after,
            now=self.now(),
        )


def replaced_etag(progress: Progress | None) -> str | None:
    """The S3 ETag an inherited checkpoint's upload was made to replace (``replaces``);
    None without one (no checkpoint, a fill's, or one too garbled to say:
    ``transfer/resume.py`` then drops it)."""
    inherited = progress.inherited if progress is not None else None
    value = inherited.get("replaces") if isinstance(inherited, dict) else None
    return value if isinstance(value, str) and value else None


def is_edgefills(copy: StoredCopy) -> bool:
    """True when edgefill wrote this object (it carries edgefill's metadata)."""
    return any(name in copy.metadata for name in (FETCHED_AT, ORIGIN_ETAG, ORIGIN_LAST_MODIFIED))


def conditions_of(copy: StoredCopy) -> dict[str, str]:
    """The conditional GET headers of a copy's stored validators (usable ones only)."""
    conditions: dict[str, str] = {}
    etag = _header_value(copy.metadata.get(ORIGIN_ETAG))
    if etag is not None:
        conditions["If-None-Match"] = etag
    modified = _header_value(copy.metadata.get(ORIGIN_LAST_MODIFIED))
    if modified is not None:
        conditions["If-Modified-Since"] = modified
    return conditions


def plain_md5(s3_etag: str) -> str | None:
    """The MD5 an S3 ETag is, for a one-part object stored with SSE-S3 (32 hex digits);
    None for a multipart or SSE-KMS ETag, which is not the bytes' MD5."""
    match = _PLAIN_MD5.fullmatch(s3_etag.strip())
    return match.group(1).lower() if match else None


def _header_value(value: str | None) -> str | None:
    if value is None or not _HEADER_VALUE.fullmatch(value):
        return None
    return value
