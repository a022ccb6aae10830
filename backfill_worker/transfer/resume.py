"""Where an interrupted copy resumes, or why it starts over.

A copy inherits a checkpoint with its lease (a continuation, or a redelivery after a
crash). Before one origin byte is fetched it is checked, in this order:

1. the checkpoint parses and agrees with this worker's plan (``checkpoint_from``);
   otherwise it is dropped, and its upload aborted when that id is an open upload of
   this very key (ListMultipartUploads): a forged id never touches another key's upload;
2. it was made for the same kind of write: a fill's upload (no ``replaces``) only as a
   fill, a refresh's only as the overwrite of the same stored version (``replaces`` is
   the store's ``IfMatch`` ETag); otherwise it is dropped and its upload aborted;
3. when it carries an MD5, this process can continue an MD5 state (``md5_state``);
4. the upload is still open, for this key (ListMultipartUploads under the key, then
   ListParts): the lifecycle rule may have aborted it; each
   saved part must be there with the same size and ETag (and CRC32 when S3 lists one),
   a part that is not is fetched again;
5. the origin still has the same version: the first missing part is asked for with
   ``Range`` + ``If-Range`` on the saved strong ETag (else Last-Modified; neither, when
   only the MD5 names the version). A 200, or a 206 whose validators, length or encoding
   differ, means the object changed: the old upload is aborted and the copy starts over
   on the new version, never mixing the two;
6. the origin still serves the same bytes: validators can stay the same over new bytes
   (a Last-Modified kept across a rewrite, an ETag made of size and mtime), so the range
   asked for also covers the last ``OVERLAP_BYTES`` of part k, the last of the unbroken
   run 1..k of kept parts, and they must hash to the checkpoint's ``tails`` entry for k.
   A difference aborts the upload and starts over (``origin_changed``); no entry for k
   (a checkpoint written before it kept tails, or a part of the run gone) starts over
   too. With no part 1 kept there is nothing to compare, and nothing is kept: parts saved
   out of order are fetched again. With every part kept, the range is that overlap alone
   and the copy is completed.

With an MD5 to check, only the parts its saved state covers (1..k) count as done: the
bytes of later parts are not at hand to hash, so they are fetched again.

A transient failure of that first request (5xx, timeout, a short overlap) keeps the
checkpoint for the record's redelivery; a permanent one (404, 416...) aborts the upload.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from backfill_worker.transfer import md5_state
from backfill_worker.transfer.checkpoint import (
    Checkpoint,
    CheckpointError,
    SavedPart,
    checkpoint_from,
    overlap_of,
    run_of,
    tail_digest,
    upload_id_shape_ok,
)
from backfill_worker.transfer.plan import CopyJob, part_bytes_for
from backfill_worker.transfer.progress import Progress
from shared.object_store import ListedPart, ObjectStore
from shared.origin import OriginError, OriginResponse, Validators, read_exactly


@dataclass(frozen=True, slots=True)
class ResumePoint:
    """A checkpoint worth continuing: the parts to keep, those to fetch, and the open
    206 response carrying the first of those."""

    checkpoint: Checkpoint
    missing: tuple[int, ...]
    response: OriginResponse


def resume_point(job: CopyJob, progress: Progress) -> ResumePoint | None:
    """The point to resume ``job`` from, given the checkpoint ``progress`` inherited, or
    None to start over (the old upload then aborted)."""
    raw = progress.inherited
    if raw is None:
        return None
    store, key, plan = job.store, job.key, job.plan
    try:
        checkpoint = checkpoint_from(
            raw,
            max_object_bytes=plan.max_object_bytes,
            part_size_for=lambda length: part_bytes_for(length, plan),
        )
    except CheckpointError as error:
        progress.note("checkpoint_rejected", str(error))
        abort_if_ours(store, key, raw.get("uploadId"))
        return None
    if checkpoint.replaces != store.replaces:
        # An upload goes visible only under the condition it was started for: a fill's
        # as a create, a refresh's as the overwrite of the very copy it replaces.
        progress.note(
            "checkpoint_rejected",
            f"the upload replaces {checkpoint.replaces!r:.80}, this copy {store.replaces!r:.80}",
        )
        abort_if_ours(store, key, checkpoint.upload_id)
        return None
    if checkpoint.expected_md5s and not md5_state.available():
        progress.note("checkpoint_rejected", "no resumable MD5 in this process")
        store.abort(key, checkpoint.upload_id)
        return None
    kept_only = _kept_parts(store, key, checkpoint, progress)
    if kept_only is None:
        return None
    checkpoint = kept_only
    run = run_of(checkpoint.parts)
    missing = tuple(n for n in range(1, checkpoint.count + 1) if n not in checkpoint.done)
    # One request: the end of part ``run`` (the proof), then the first missing part
    # (run + 1); with every part kept, the proof alone.
    overlap = overlap_of(checkpoint, run) if run else 0
    start = run * checkpoint.part_bytes - overlap
    end = checkpoint.length
    if missing:
        end = (missing[0] - 1) * checkpoint.part_bytes + checkpoint.part_size(missing[0])
    response = _first_request(job, progress, checkpoint, start, end)
    if response is None:
        return None
    if overlap and not _same_bytes(progress, checkpoint, run, response, overlap):
        store.abort(key, checkpoint.upload_id)
        return None
    return ResumePoint(checkpoint=checkpoint, missing=missing, response=response)


def _kept_parts(
    store: ObjectStore, key: str, checkpoint: Checkpoint, progress: Progress
) -> Checkpoint | None:
    """The checkpoint with the parts S3 still holds as saved and a resume can prove
    (steps 4 and 6); None to start over (the upload aborted, unless it is gone)."""
    listed = None
    if store.upload_is_open(key, checkpoint.upload_id):
        listed = store.list_parts(key, checkpoint.upload_id)
    if listed is None:
        progress.note("upload_vanished", f"upload {checkpoint.upload_id[:40]} is gone")
        return None
    kept = _parts_still_there(checkpoint, listed)
    if kept is None:
        progress.note("checkpoint_rejected", "parts hashed into the MD5 are gone from S3")
        store.abort(key, checkpoint.upload_id)
        return None
    run = run_of(kept)
    if run == 0:
        kept = ()  # nothing to compare the origin's bytes with: keep no old byte
    elif checkpoint.tail_of(run) is None:
        progress.note("checkpoint_rejected", f"no hash of part {run}'s end proves its bytes")
        store.abort(key, checkpoint.upload_id)
        return None
    return dataclasses.replace(checkpoint, parts=kept)


def _first_request(
    job: CopyJob, progress: Progress, checkpoint: Checkpoint, start: int, end: int
) -> OriginResponse | None:
    """Bytes ``[start, end)`` of the checkpoint's version (``If-Range``); None when the
    origin has another version (the upload then aborted)."""
    validators = Validators(
        etag=checkpoint.etag,
        last_modified=checkpoint.last_modified,
        content_encoding=checkpoint.content_encoding,
        total=checkpoint.length,
    )
    try:
        response = job.origin.get_resuming(job.url, start, end, validators, job.budget)
    except OriginError as error:
        if error.permanent:  # the path is gone or refused: nothing to resume, ever
            job.store.abort(job.key, checkpoint.upload_id)
        else:  # a 5xx or a timeout: the redelivery resumes from the same checkpoint
            progress.keep(checkpoint)
        raise
    if response is None:
        progress.note("origin_changed", "the origin has another version: starting over")
        job.store.abort(job.key, checkpoint.upload_id)
    return response


def _same_bytes(
    progress: Progress, checkpoint: Checkpoint, run: int, response: OriginResponse, overlap: int
) -> bool:
    """Read the overlap at the head of ``response``: True when it hashes as the end of
    part ``run`` did when it was copied."""
    try:
        head = read_exactly(response, overlap)
    except OriginError:
        response.close()
        progress.keep(checkpoint)  # a reset mid-overlap: the redelivery tries again
        raise
    if tail_digest(head) == checkpoint.tail_of(run):
        return True
    response.close()
    progress.note(
        "origin_changed",
        f"the last {overlap} bytes of part {run} differ from those copied: the origin "
        "serves other bytes under the same validators; starting over",
    )
    return False


def abort_if_ours(store: ObjectStore, key: str, upload_id: object) -> None:
    """Abort ``upload_id`` only when it is an open upload of ``key`` itself: an id from a
    checkpoint nobody vouches for never reaches another key's upload (whatever the S3
    implementation makes of an id that belongs to another key)."""
    if upload_id_shape_ok(upload_id) and store.upload_is_open(key, str(upload_id)):
        store.abort(key, str(upload_id))


def _parts_still_there(
    checkpoint: Checkpoint, listed: dict[int, ListedPart]
) -> tuple[SavedPart, ...] | None:
    """The saved parts S3 still holds as saved; None when a part the MD5 state covers is
    not among them (the state would then hash bytes twice or skip some)."""
    hashed = 0 if checkpoint.md5_state is None else checkpoint.md5_state.length
    covered = hashed // checkpoint.part_bytes
    kept: list[SavedPart] = []
    for part in checkpoint.parts:
        there = listed.get(part.number)
        same = (
            there is not None
            and there.size == part.size
            and there.etag == part.etag
            and (there.crc32 is None or there.crc32 == part.crc32)
        )
        if not same and part.number <= covered:
            return None
        if same and (not checkpoint.expected_md5s or part.number <= covered):
            kept.append(part)
    return tuple(kept)
