"""Revalidation: the decision of a refresh. The copy is checked against the origin, and
the bucket then holds what the origin says *now* (RFC 9111 §4.3.3, §4.3.4).

The decision, in order (docs/BACKFILL.md "Freshness" has the table):

1. **The copy is missing**: the caller fills it, as for ``mode: "fill"``.
2. **The copy is not edgefill's** (``is_edgefills``: no ``fetched-at`` nor
   ``origin-etag`` / ``origin-last-modified`` metadata): left alone; edgefill never
   replaces or deletes an object it did not write.
3. Under the key's lease, held by the caller (single-flight: concurrent refreshes of one
   object cost the origin one body; the others find the lease taken), a conditional GET with
   ``If-None-Match: <origin-etag>`` and ``If-Modified-Since: <origin-last-modified>``:
   - **304**: the stored header fields are updated from the 304's (§3.2: every field it
     sends replaces the stored one, Content-Length and Content-Encoding excepted) and
     the result is judged like a new response (``transfer/storable.py``). Still
     storable with the same fields S3 serves: ``unchanged``, nothing written,
     ``checked-at`` recorded in the due index; with other fields (a new Cache-Control,
     Expires, ETag…): ``updated``, the object's headers rewritten in place
     (CopyObject onto itself, conditional on the S3 ETag read), invalidated and warmed;
     no longer storable (``private``, ``no-store``, a Vary, stale on arrival…):
     ``withdrawn``.
   - **a storable 200 of the same version** (the stored ETag, or, from an origin without
     validators, the copy's very bytes: S3's SHA-256 or CRC32 of it, or its MD5 where
     the S3 ETag is one): the same, with the 200's fields in place of the stored ones;
   - **200, another version**, storable: ``replaced``, through the same verified
     streaming copy, the overwrite conditional on the S3 ETag read at the start
     (``IfMatch``);
   - **a response that is not storable** (any refusal of ``storable.py``: a redirect,
     ``private``, ``no-store``, ``no-cache``, ``Set-Cookie``, ``max-age=0``, an
     unkeepable Cache-Control, a Vary…), a **403** or another 4xx except 408/429, an
     unreadable response: ``withdrawn`` (``deleted`` for 404/410): a delete conditional
     on that same S3 ETag. The origin's 3xx/4xx status is also remembered as a missing
     marker (by the caller), so the next viewer miss does not copy it back at once;
   - a **5xx, 408, 429, timeout or reset** raises, as for a fill; the caller keeps the
     copy in revalidation (``kept``), or removes it when it may not be served stale
     any longer (``stale_deadline``).

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
That status is the copy changing, never the origin (a changed origin is ``REPLACED``,
``UPDATED``, ``WITHDRAWN`` or ``DELETED``); its value stays ``"changed"``, the public
``Refreshed{reason}`` dimension.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Final

from backfill_worker.freshness.lifetime import (
    FETCHED_AT,
    ORIGIN_AGE,
    ORIGIN_DATE,
    ORIGIN_ETAG,
    ORIGIN_LAST_MODIFIED,
    stored_fields,
)
from backfill_worker.transfer.copy import CopyResult, CopyTerms, copy_object
from backfill_worker.transfer.errors import CopyRefused, CopyUnchanged
from backfill_worker.transfer.plan import CopyPlan
from backfill_worker.transfer.progress import Progress
from backfill_worker.transfer.resume import abort_if_ours
from backfill_worker.transfer.storable import Refusal, decide, lower_fields
from shared.cache_control import NO_STALE_DIRECTIVES, format_http_date, parse_cache_control
from shared.messages import format_time
from shared.object_store import ObjectAttributes, ObjectStore, StoredCopy
from shared.origin import OriginClient, OriginError

# Origin statuses that mean "the object is gone": the copy must go too (``deleted``).
GONE: Final = (404, 410)
# A copy whose origin forbids serving it stale (must-revalidate, proxy-revalidate,
# s-maxage: RFC 9111 §4.2.4) is removed once its refreshes have kept failing this long
# past its due time: one default sweep interval, so it gets at least one retry.
STALE_GRACE: Final = timedelta(seconds=900)
# CopyObject copies objects up to 5 GiB; a larger copy's headers change by a new copy.
COPY_OBJECT_MAX_BYTES: Final = 5 * 1024**3
# Fields of a 304 that never replace the stored ones (RFC 9111 §3.2): the framing, and
# the encoding the stored bytes depend on.
_NOT_UPDATED: Final = frozenset(
    {"content-length", "content-encoding", "content-range", "transfer-encoding", "connection"}
)
# Validators come from object metadata (anyone with write access may have set it): only
# printable ASCII of a sane length is sent back to the origin as a header.
_HEADER_VALUE = re.compile(r"[\x20-\x7e]{1,512}")
_PLAIN_MD5 = re.compile(r'"?([0-9a-fA-F]{32})"?')
# The metadata that changes with every answer (Date, Age) or every copy (fetched-at):
# not what tells whether the copy's headers changed.
_VOLATILE_METADATA: Final = frozenset({FETCHED_AT, ORIGIN_DATE, ORIGIN_AGE})
RULE_GONE: Final = "the origin no longer serves it at this URI"


class RefreshStatus(StrEnum):
    """How a revalidation ended; the values are the ``Refreshed{reason}`` dimensions."""

    UNCHANGED = "unchanged"  # the origin has the copy's version and fields: nothing written
    UPDATED = "updated"  # same bytes, new header fields: the copy's headers rewritten
    REPLACED = "replaced"  # the origin has another version: the copy now holds it
    DELETED = "deleted"  # the origin no longer has the object (404/410): neither has S3
    WITHDRAWN = "withdrawn"  # the origin no longer allows a shared copy: removed
    KEPT = "kept"  # the origin failed: the copy stays, revalidated again soon
    COPY_CHANGED = "changed"  # another writer changed the copy meanwhile: theirs stays
    HANDED_OVER = "handed_over"  # the replacing copy continues in another invocation


@dataclass(frozen=True, slots=True)
class Withdrawal:
    """Why a copy is removed: the log line's ``reason``, ``detail``, ``directive`` (the
    header field) and ``rule``; ``status`` is the origin's 3xx/4xx, remembered as a
    missing marker."""

    reason: str
    detail: str
    directive: str | None = None
    rule: str | None = None
    status: int | None = None


@dataclass(frozen=True, slots=True)
class RefreshResult:
    """``status`` (``RefreshStatus``); with ``HANDED_OVER``, ``copy`` carries the
    checkpoint a continuation resumes from; with ``UNCHANGED`` and ``UPDATED``,
    ``fields`` are the answer's header fields and ``checked_at`` when it was asked for
    (the next due time is theirs); with ``DELETED`` and ``WITHDRAWN``, ``withdrawal``;
    with ``KEPT``, ``remove_after``: when the copy goes if the origin still fails."""

    status: RefreshStatus
    size: int = 0
    copy: CopyResult | None = None
    fields: Mapping[str, str] | None = None
    checked_at: datetime | None = None
    withdrawal: Withdrawal | None = None
    remove_after: datetime | None = None


@dataclass
class Revalidation:
    """The adapters a refresh uses (the same as a fill's)."""

    store: ObjectStore
    copies: ObjectStore
    origin: OriginClient
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
        ``copy_object`` raises for a transient failure (the caller maps it as for a
        fill)."""
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
            unchanged_bytes=bytes_of(stored),
            clock=self.now,
        )
        try:
            result = self._copy(stored, key, url, plan, terms, progress)
        except CopyUnchanged as same:
            return self._same_version(key, url, plan, stored, same, started)
        except CopyRefused as refused:
            withdrawal = Withdrawal(
                refused.reason, refused.detail, refused.directive, refused.rule, refused.status
            )
            return self.withdraw(key, stored, withdrawal)
        except OriginError as error:
            if not error.permanent or (error.status is None and error.kind != "bad_header"):
                raise
            shown = f"HTTP {error.status}" if error.status is not None else None
            withdrawal = Withdrawal(error.kind, error.reason, shown, RULE_GONE, error.status)
            return self.withdraw(key, stored, withdrawal)
        return _written(result)

    def withdraw(self, key: str, stored: StoredCopy, withdrawal: Withdrawal) -> RefreshResult:
        """Remove ``stored`` while it still has its S3 ETag (a concurrent fill or replace
        is never deleted): ``DELETED`` (404/410) or ``WITHDRAWN``; ``COPY_CHANGED`` when
        it changed meanwhile."""
        if not self.copies.delete_if_match(key, stored.etag):
            return RefreshResult(RefreshStatus.COPY_CHANGED)
        status = RefreshStatus.DELETED if withdrawal.status in GONE else RefreshStatus.WITHDRAWN
        return RefreshResult(status, withdrawal=withdrawal)

    def _copy(
        self,
        stored: StoredCopy,
        key: str,
        url: str,
        plan: CopyPlan,
        terms: CopyTerms,
        progress: Progress | None,
    ) -> CopyResult:
        """The verified copy of ``url``, overwriting ``stored`` only (``IfMatch``)."""
        replacing = self.store.replacing(stored.etag)
        return copy_object(self.origin, replacing, key, url, plan, terms, progress=progress)

    def _same_version(
        self,
        key: str,
        url: str,
        plan: CopyPlan,
        stored: StoredCopy,
        same: CopyUnchanged,
        started: datetime,
    ) -> RefreshResult:
        """The origin has the copy's bytes: keep, update or withdraw by its new fields."""
        if same.status == 304:
            fields = updated_fields(stored, same.headers)
        else:
            fields = lower_fields(same.headers)
        verdict = decide(200, fields, self.now())
        if isinstance(verdict, Refusal):
            withdrawal = Withdrawal(verdict.reason, verdict.detail, verdict.directive, verdict.rule)
            return self.withdraw(key, stored, withdrawal)
        attributes = replace(
            verdict.attributes, metadata={**stored.metadata, **verdict.attributes.metadata}
        )
        if served_fields(attributes) == served_fields_of(stored):
            return RefreshResult(
                RefreshStatus.UNCHANGED, stored.size, fields=fields, checked_at=started
            )
        if stored.size > COPY_OBJECT_MAX_BYTES:
            # Too large to rewrite in place: a fresh copy carries the new fields.
            terms = CopyTerms(metadata={FETCHED_AT: format_time(started)}, clock=self.now)
            return _written(self._copy(stored, key, url, plan, terms, None))
        if not self.copies.update_attributes(key, stored.etag, attributes):
            return RefreshResult(RefreshStatus.COPY_CHANGED)
        return RefreshResult(RefreshStatus.UPDATED, stored.size, fields=fields, checked_at=started)


def _written(result: CopyResult) -> RefreshResult:
    if result.handover is not None:
        return RefreshResult(RefreshStatus.HANDED_OVER, copy=result)
    if not result.created:
        return RefreshResult(RefreshStatus.COPY_CHANGED, copy=result)
    return RefreshResult(RefreshStatus.REPLACED, result.size, result)


def updated_fields(stored: StoredCopy, answer: Mapping[str, str]) -> dict[str, str]:
    """The stored header fields updated from a 304's (RFC 9111 §3.2, §4.3.4): each field
    the 304 sends replaces the stored one, except framing and Content-Encoding."""
    fields = stored_fields(stored)
    for name, value in lower_fields(answer).items():
        if name not in _NOT_UPDATED:
            fields[name] = value
    return fields


def served_fields(attributes: ObjectAttributes) -> tuple[object, ...]:
    """What S3 serves of a copy besides its bytes (the fields a 304 may change)."""
    expires = None if attributes.expires is None else format_http_date(attributes.expires)
    return _served(attributes, expires)


def served_fields_of(copy: StoredCopy) -> tuple[object, ...]:
    """``served_fields`` of a stored copy, as HeadObject reports it (Expires as text)."""
    return _served(copy.attributes(), copy.expires)


def _served(attributes: ObjectAttributes, expires: str | None) -> tuple[object, ...]:
    metadata = {k: v for k, v in attributes.metadata.items() if k not in _VOLATILE_METADATA}
    return (
        attributes.content_type,
        attributes.cache_control,
        attributes.content_disposition,
        attributes.content_language,
        attributes.content_encoding,
        expires,
        tuple(sorted(metadata.items())),
    )


def stale_deadline(copy: StoredCopy, stale_since: datetime) -> tuple[datetime | None, str]:
    """Until when ``copy``, due since ``stale_since``, may stay while its refreshes fail,
    and the rule that says so; None: as long as it takes (the origin is down: RFC 9111
    §4.2.4 lets a disconnected cache serve stale)."""
    control = parse_cache_control(copy.cache_control)
    for name in NO_STALE_DIRECTIVES:
        if control.has(name):
            grace = int(STALE_GRACE.total_seconds())
            return stale_since + STALE_GRACE, f"RFC 9111 §4.2.4 {name} (grace {grace} s)"
    seconds = control.seconds("stale-if-error")
    if seconds is not None:
        return stale_since + timedelta(seconds=seconds), "RFC 5861 §4 stale-if-error"
    return None, "RFC 9111 §4.2.4 (the origin is unreachable: served stale)"


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


def bytes_of(copy: StoredCopy) -> tuple[str, str] | None:
    """What tells a one-part copy's bytes, strongest first: S3's SHA-256 or CRC32 of the
    whole object, else the MD5 where the S3 ETag is one (``plain_md5``). None for a
    multipart copy (its checksums are of its parts)."""
    if "-" in copy.etag:
        return None
    if copy.checksum_sha256 and "-" not in copy.checksum_sha256:
        return ("sha256", copy.checksum_sha256)
    if copy.checksum_crc32 and "-" not in copy.checksum_crc32:
        return ("crc32", copy.checksum_crc32)
    md5 = plain_md5(copy)
    return ("md5", md5) if md5 is not None else None


def plain_md5(copy: StoredCopy) -> str | None:
    """The MD5 a copy's S3 ETag is: a one-part object without SSE-KMS, DSSE-KMS or SSE-C
    (S3 documents that those ETags are not MD5s); None otherwise."""
    if copy.customer_key or (copy.encryption or "").startswith("aws:kms"):
        return None
    match = _PLAIN_MD5.fullmatch(copy.etag.strip())
    return match.group(1).lower() if match else None


def _header_value(value: str | None) -> str | None:
    if value is None or not _HEADER_VALUE.fullmatch(value):
        return None
    return value
