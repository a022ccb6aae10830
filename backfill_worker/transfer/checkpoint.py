"""The checkpoint of a copy that spans invocations: what it holds, and whether to trust it.

A checkpoint lives inside the key's lease object (``flight/lease.py``), so it is written only
with ``IfMatch`` on the lease's ETag, by the worker holding the lease. It says which
multipart upload holds the copy so far, which parts are in it (number, size, S3 ETag,
CRC32), which origin version they came from (ETag, Last-Modified, Content-Encoding,
length), when the origin gave an MD5, the MD5 state after the parts hashed so far, for a
refresh's replacing copy, which version of the stored copy it replaces, and the proof
that the next invocation fetches the same bytes: the SHA-256 of the last
``OVERLAP_BYTES`` of the last part of the unbroken run 1..k, and of each part saved past
it (``tails``). Validators alone prove nothing: an origin that rewrites an object and
keeps its Last-Modified, or whose ETag is derived from size and mtime, answers a
continuation's ``If-Range`` with a 206 of the new bytes. So a resume re-reads the end of
part k together with part k + 1 and compares it (``resume.py``). A version is named by a
strong ETag, or an MD5 of the whole object checked at the end; a checkpoint with neither
is not trusted.

The lease object is in the bucket, where anyone with write access could edit it, so a
checkpoint is input like any other: ``checkpoint_from`` accepts one only when every
field has its shape and agrees with the copy the worker is about to make (same part
size for this length, part numbers within the object, each part exactly the size the
plan gives it, an MD5 state that covers exactly the parts it claims). It names no key:
the key written is always the message's, and S3 binds an upload id to the key it was
created for, so a forged upload id can at worst name an upload that is not there.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from backfill_worker.transfer.integrity import ExpectedMD5
from backfill_worker.transfer.md5_state import MD5State, MD5StateError
from backfill_worker.transfer.plan import part_count, part_size
from shared.object_store import UploadedPart
from shared.origin import is_strong_etag

CHECKPOINT_VERSION: Final = 1
# S3 upload ids are URL-safe text of a few hundred characters; anything else is forged.
_UPLOAD_ID = re.compile(r"[A-Za-z0-9._~+=\-]{1,1024}")
# A part's ETag as S3 returns it: a quoted hex digest (MD5, or another digest with KMS).
_PART_ETAG = re.compile(r'"[0-9A-Fa-f]{32,64}"')
_HEX_MD5 = re.compile(r"[0-9a-f]{32}")
_MD5_SOURCES = ("Content-MD5", "ETag")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
MAX_VALIDATOR_CHARS: Final = 512
# The end of a kept part re-read by a resume, to prove the origin still serves the same
# bytes: enough that a rewritten object (another encode, another file) differs there, and
# little next to a part (5 MiB at least) so the resume's first request barely grows.
OVERLAP_BYTES: Final = 16 * 1024


class CheckpointError(ValueError):
    """A checkpoint that must not be used (garbled, forged, or for another plan)."""


@dataclass(frozen=True, slots=True)
class SavedPart:
    """A part S3 holds in the upload."""

    number: int
    size: int
    etag: str
    crc32: str

    def uploaded(self) -> UploadedPart:
        return UploadedPart(number=self.number, etag=self.etag, crc32=self.crc32)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Where a copy stands; ``parts`` sorted by number."""

    upload_id: str
    length: int
    part_bytes: int
    etag: str | None
    last_modified: str | None
    content_encoding: str | None
    parts: tuple[SavedPart, ...] = ()
    # The MD5s the origin announced, and the state after parts 1..md5_state's bytes.
    expected_md5s: tuple[ExpectedMD5, ...] = ()
    md5_state: MD5State | None = None
    # Throughput one part connection saw so far (bytes/s), so the next invocation judges
    # from its first part which parts can finish before its handover point.
    part_rate: float = 0.0
    origin_bytes: int = 0  # bytes fetched from the origin over the whole chain
    invocations: int = 1  # invocations that worked on this copy, this one included
    # A refresh's replacing copy: the S3 ETag of the copy it overwrites (read when the
    # refresh started; the completion is conditional on it, ``IfMatch``). None: a fill,
    # completed only if the key is still absent.
    replaces: str | None = None
    # (part number, SHA-256 hex of its last OVERLAP_BYTES): the last part of the run
    # 1..k and every part saved past it, sorted (``proof_tails``).
    tails: tuple[tuple[int, str], ...] = ()

    @property
    def count(self) -> int:
        return part_count(self.length, self.part_bytes)

    @property
    def done(self) -> frozenset[int]:
        return frozenset(part.number for part in self.parts)

    def part_size(self, number: int) -> int:
        return part_size(number, self.part_bytes, self.length)

    def tail_of(self, number: int) -> str | None:
        """The SHA-256 the end of part ``number`` had when it was copied, if kept."""
        return dict(self.tails).get(number)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "v": CHECKPOINT_VERSION,
            "uploadId": self.upload_id,
            "length": self.length,
            "partBytes": self.part_bytes,
            "etag": self.etag,
            "lastModified": self.last_modified,
            "contentEncoding": self.content_encoding,
            "parts": [[p.number, p.size, p.etag, p.crc32] for p in self.parts],
            "partRate": round(self.part_rate, 1),
            "originBytes": self.origin_bytes,
            "invocations": self.invocations,
        }
        if self.replaces is not None:
            out["replaces"] = self.replaces
        if self.tails:
            out["tails"] = [[number, digest] for number, digest in self.tails]
        if self.expected_md5s:
            out["md5"] = {
                "expected": [[promise.source, promise.hex] for promise in self.expected_md5s],
                "state": None if self.md5_state is None else self.md5_state.words,
                "bytes": 0 if self.md5_state is None else self.md5_state.length,
            }
        return out


def upload_id_shape_ok(value: object) -> bool:
    """True when ``value`` looks like an S3 upload id (safe to pass to AbortMultipartUpload)."""
    return isinstance(value, str) and _UPLOAD_ID.fullmatch(value) is not None


def checkpoint_from(
    raw: object, *, max_object_bytes: int, part_size_for: Callable[[int], int]
) -> Checkpoint:
    """The checkpoint in ``raw`` (a lease body's ``checkpoint``), checked against the plan:
    ``part_size_for(length)`` is the part size this worker would cut that length into."""
    if not isinstance(raw, dict):
        raise CheckpointError("checkpoint: must be a JSON object")
    if raw.get("v") != CHECKPOINT_VERSION or isinstance(raw.get("v"), bool):
        raise CheckpointError(f"checkpoint.v: unsupported version {raw.get('v')!r:.20}")
    upload_id = raw.get("uploadId")
    if not upload_id_shape_ok(upload_id):
        raise CheckpointError("checkpoint.uploadId: not an S3 upload id")
    length = _int(raw, "length", 1, max_object_bytes)
    part_bytes = _int(raw, "partBytes", 1, length)
    if part_bytes != part_size_for(length) or part_bytes >= length:
        raise CheckpointError(
            f"checkpoint.partBytes: {part_bytes} is not this worker's part size for "
            f"{length} bytes ({part_size_for(length)})"
        )
    validators = {
        name: _validator(raw, name) for name in ("etag", "lastModified", "contentEncoding")
    }
    etag, last_modified = validators["etag"], validators["lastModified"]
    count = part_count(length, part_bytes)
    parts = _parts(raw.get("parts"), count, length, part_bytes)
    expected_md5s, md5_state = _md5(raw.get("md5"), parts, part_bytes)
    if not is_strong_etag(etag) and not expected_md5s:
        # A Last-Modified or a weak ETag may stay the same over other bytes.
        raise CheckpointError("checkpoint: no strong ETag nor MD5 names the version")
    rate = raw.get("partRate", 0.0)
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate < 1e12:
        raise CheckpointError("checkpoint.partRate: must be a number of bytes per second")
    return Checkpoint(
        upload_id=str(upload_id),
        length=length,
        part_bytes=part_bytes,
        etag=etag,
        last_modified=last_modified,
        content_encoding=validators["contentEncoding"],
        parts=parts,
        expected_md5s=expected_md5s,
        md5_state=md5_state,
        part_rate=float(rate),
        origin_bytes=_int(raw, "originBytes", 0, 1 << 62, default=0),
        invocations=_int(raw, "invocations", 1, 1_000_000, default=1),
        replaces=_validator(raw, "replaces"),
        tails=_tails(raw.get("tails", []), parts),
    )


def tail_digest(part: memoryview | bytes | bytearray) -> str:
    """The SHA-256 (hex) of the last ``OVERLAP_BYTES`` of a part (all of a shorter one)."""
    return hashlib.sha256(part[-OVERLAP_BYTES:]).hexdigest()


def overlap_of(checkpoint: Checkpoint, number: int) -> int:
    """How many bytes ``tail_digest`` covered at the end of part ``number``."""
    return min(OVERLAP_BYTES, checkpoint.part_size(number))


def proof_tails(
    parts: tuple[SavedPart, ...], digests: Mapping[int, str]
) -> tuple[tuple[int, str], ...]:
    """The tails a checkpoint keeps: of the last part of the run 1..k (where the next
    invocation resumes) and of each part saved past it (one may end the run later)."""
    run = run_of(parts)
    wanted = sorted(part.number for part in parts if part.number >= run)
    return tuple((n, digests[n]) for n in wanted if n in digests)


def run_of(parts: tuple[SavedPart, ...]) -> int:
    """k such that parts 1..k are all among ``parts`` (0 without part 1)."""
    numbers = {part.number for part in parts}
    run = 0
    while run + 1 in numbers:
        run += 1
    return run


def _int(raw: dict[str, Any], name: str, low: int, high: int, default: int | None = None) -> int:
    value = raw.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise CheckpointError(f"checkpoint.{name}: must be a whole number from {low} to {high}")
    return value


def _validator(raw: dict[str, Any], name: str) -> str | None:
    value = raw.get(name)
    if value is None:
        return None
    if (
        not isinstance(value, str)
        or not value
        or len(value) > MAX_VALIDATOR_CHARS
        or not value.isascii()
        or not value.isprintable()
    ):
        raise CheckpointError(f"checkpoint.{name}: must be printable ASCII text")
    return value


def _parts(raw: object, count: int, length: int, part_bytes: int) -> tuple[SavedPart, ...]:
    if not isinstance(raw, list) or len(raw) > count:
        raise CheckpointError(f"checkpoint.parts: must be a list of at most {count} parts")
    parts: dict[int, SavedPart] = {}
    for index, item in enumerate(raw):
        where = f"checkpoint.parts[{index}]"
        if not isinstance(item, list) or len(item) != 4:
            raise CheckpointError(f"{where}: must be [number, size, etag, crc32]")
        number, size, etag, crc32 = item
        if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= count:
            raise CheckpointError(f"{where}: part number must be from 1 to {count}")
        if number in parts:
            raise CheckpointError(f"{where}: part {number} appears twice")
        expected = part_size(number, part_bytes, length)
        if isinstance(size, bool) or size != expected:
            raise CheckpointError(f"{where}: part {number} must be {expected} bytes")
        if not isinstance(etag, str) or not _PART_ETAG.fullmatch(etag):
            raise CheckpointError(f"{where}: not an S3 part ETag")
        if not _crc32_ok(crc32):
            raise CheckpointError(f"{where}: not a base64 CRC32")
        parts[number] = SavedPart(number, expected, etag, crc32)
    return tuple(parts[number] for number in sorted(parts))


def _tails(raw: object, parts: tuple[SavedPart, ...]) -> tuple[tuple[int, str], ...]:
    numbers = {part.number for part in parts}
    if not isinstance(raw, list) or len(raw) > len(numbers):
        raise CheckpointError("checkpoint.tails: must be a list, one entry per saved part")
    tails: dict[int, str] = {}
    for index, item in enumerate(raw):
        if (
            not isinstance(item, list)
            or len(item) != 2
            or isinstance(item[0], bool)
            or not isinstance(item[0], int)
            or item[0] not in numbers
            or item[0] in tails
            or not isinstance(item[1], str)
            or not _SHA256_HEX.fullmatch(item[1])
        ):
            raise CheckpointError(
                f"checkpoint.tails[{index}]: must be [a saved part's number, 64 lowercase hex]"
            )
        tails[item[0]] = item[1]
    return tuple(sorted(tails.items()))


def _crc32_ok(value: object) -> bool:
    if not isinstance(value, str) or len(value) != 8:
        return False
    try:
        return len(base64.b64decode(value, validate=True)) == 4
    except (binascii.Error, ValueError):
        return False


def _md5(
    raw: object, parts: tuple[SavedPart, ...], part_bytes: int
) -> tuple[tuple[ExpectedMD5, ...], MD5State | None]:
    if raw is None:
        return (), None
    if not isinstance(raw, dict):
        raise CheckpointError("checkpoint.md5: must be an object")
    expected = _promises(raw.get("expected"))
    words, hashed = raw.get("state"), raw.get("bytes", 0)
    if words is None:
        if hashed != 0:
            raise CheckpointError("checkpoint.md5.bytes: no state for those bytes")
        state = None
    else:
        try:
            state = MD5State(words=words, length=hashed)
        except MD5StateError as error:
            raise CheckpointError(f"checkpoint.md5: {error}") from None
    # The state must cover exactly parts 1..k, every one of them in the upload: the
    # next part hashed is k + 1.
    covered = 0 if state is None else state.length
    if covered % part_bytes:
        raise CheckpointError("checkpoint.md5.bytes: not a whole number of parts")
    done = {part.number for part in parts}
    if any(number not in done for number in range(1, covered // part_bytes + 1)):
        raise CheckpointError("checkpoint.md5.bytes: covers parts the upload does not hold")
    return expected, state


def _promises(raw: object) -> tuple[ExpectedMD5, ...]:
    """The origin's MD5 promises: one or two [source, 32 lowercase hex digits]."""
    if not isinstance(raw, list) or not 1 <= len(raw) <= len(_MD5_SOURCES):
        raise CheckpointError("checkpoint.md5.expected: must list the origin's MD5s")
    promises = []
    for item in raw:
        if (
            not isinstance(item, list)
            or len(item) != 2
            or item[0] not in _MD5_SOURCES
            or not isinstance(item[1], str)
            or not _HEX_MD5.fullmatch(item[1])
        ):
            raise CheckpointError(
                "checkpoint.md5.expected: each must be [Content-MD5|ETag, 32 lowercase hex]"
            )
        promises.append(ExpectedMD5(source=item[0], hex=item[1]))
    return tuple(promises)
