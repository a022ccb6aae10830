"""The regional bucket as the backfill and its sweep see it: conditional writes,
multipart, leases, and the copies' state for revalidation.

Every write that makes an object visible is conditional (``IfNoneMatch='*'``), so a copy
never replaces an object that appeared meanwhile; ``False`` from ``put_if_absent`` and
``complete_if_absent`` means "already there", which the caller treats as success. Every
part carries a CRC32 additional checksum computed here from the bytes in hand, so S3
rejects a part damaged on the way.

Lease objects implement single-flight copies with the same primitives: create with
``IfNoneMatch='*'``, take over with ``IfMatch`` on the ETag read, delete with ``IfMatch``
so a worker never removes a lease another worker has taken over.

Revalidation reads a copy with HeadObject (its ETag guards what follows), deletes it only
if it still has that ETag (``IfMatch``: a copy replaced meanwhile is never removed), and
keeps the due index as small JSON objects under ``_edgefill/due/`` listed in key order.
"""

from __future__ import annotations

import base64
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from botocore.exceptions import BotoCoreError, ClientError

_MISSING = {"404", "NoSuchKey", "NotFound", "NoSuchUpload"}
_PRECONDITION = {"412", "PreconditionFailed"}
# S3 answers 409 when two conditional writes race on one key. For a lease that means
# another worker is taking it; for an object it is a StoreError (retried).
_LEASE_TAKEN = _PRECONDITION | {"409", "ConditionalRequestConflict"}
MAX_LEASE_BYTES = 2 * 1024 * 1024
# DeleteObjects takes at most 1 000 keys a call.
MAX_DELETE_KEYS: Final = 1000
# ListObjectsV2 returns at most 1 000 keys a page.
MAX_LIST_KEYS: Final = 1000


class StoreError(RuntimeError):
    """S3 failed (throttling, 5xx, network); the operation may succeed when retried."""


@dataclass(frozen=True, slots=True)
class ObjectAttributes:
    """What S3 keeps besides the bytes: the origin's representation headers and metadata."""

    content_type: str | None = None
    cache_control: str | None = None
    content_disposition: str | None = None
    content_language: str | None = None
    content_encoding: str | None = None
    expires: datetime | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)

    def as_params(self) -> dict[str, Any]:
        """The PutObject / CreateMultipartUpload parameters for these attributes."""
        params: dict[str, Any] = {
            name: value
            for name, value in (
                ("ContentType", self.content_type),
                ("CacheControl", self.cache_control),
                ("ContentDisposition", self.content_disposition),
                ("ContentLanguage", self.content_language),
                ("ContentEncoding", self.content_encoding),
                ("Expires", self.expires),
            )
            if value is not None
        }
        if self.metadata:
            params["Metadata"] = dict(self.metadata)
        return params


@dataclass(frozen=True, slots=True)
class UploadedPart:
    """A part S3 accepted, as CompleteMultipartUpload wants it back."""

    number: int
    etag: str
    crc32: str

    def as_param(self) -> dict[str, Any]:
        return {"PartNumber": self.number, "ETag": self.etag, "ChecksumCRC32": self.crc32}


@dataclass(frozen=True, slots=True)
class ListedPart:
    """A part as ListParts reports it."""

    number: int
    size: int
    etag: str
    crc32: str | None


@dataclass(frozen=True, slots=True)
class StoredLease:
    """A lease object's body and the ETag that guards the next conditional write."""

    body: bytes
    etag: str


@dataclass(frozen=True, slots=True)
class StoredObject:
    """The start of an object read back from the bucket, with its representation headers."""

    body: bytes  # at most the ``max_bytes`` asked for
    size: int
    content_type: str | None = None
    content_encoding: str | None = None

    @property
    def complete(self) -> bool:
        return len(self.body) == self.size


@dataclass(frozen=True, slots=True)
class StoredCopy:
    """What HeadObject says about a copy: the ETag that guards a conditional overwrite or
    delete, its user metadata, the representation headers S3 kept, and what tells its
    bytes (S3's checksums, and whether the ETag is an MD5: not under SSE-KMS or SSE-C)."""

    etag: str
    metadata: Mapping[str, str]
    cache_control: str | None = None
    expires: str | None = None
    size: int = 0
    content_type: str | None = None
    content_disposition: str | None = None
    content_language: str | None = None
    content_encoding: str | None = None
    last_modified: datetime | None = None
    checksum_crc32: str | None = None
    checksum_sha256: str | None = None
    encryption: str | None = None  # ServerSideEncryption: AES256, aws:kms, aws:kms:dsse
    customer_key: bool = False  # SSE-C

    @property
    def version(self) -> str:
        """The S3 version of the copy, for telling whether it was rewritten since: its
        ETag and Last-Modified (a copy onto itself keeps a one-part object's ETag)."""
        modified = "" if self.last_modified is None else self.last_modified.isoformat()
        return f"{self.etag} {modified}".strip()

    def attributes(self) -> ObjectAttributes:
        """What a write must carry to keep this copy's headers and metadata as they are."""
        return ObjectAttributes(
            content_type=self.content_type,
            cache_control=self.cache_control,
            content_disposition=self.content_disposition,
            content_language=self.content_language,
            content_encoding=self.content_encoding,
            metadata=dict(self.metadata),
        )


@dataclass(frozen=True, slots=True)
class ListedKey:
    """One key of a listing page."""

    key: str
    size: int


def crc32_base64(data: bytes | bytearray | memoryview) -> str:
    """The CRC32 additional checksum S3 expects: big-endian, base64."""
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode("ascii")


class ObjectStore:
    """One bucket through a boto3 S3 client (thread-safe; parts upload concurrently)."""

    def __init__(self, s3: Any, bucket: str) -> None:
        self.s3 = s3
        self.bucket = bucket
        # None: visible writes create (IfNoneMatch='*'). An ETag: they replace exactly that
        # version of the object (IfMatch), see ``replacing``.
        self.replaces: str | None = None

    def replacing(self, etag: str) -> ObjectStore:
        """This bucket, but with visible writes (PutObject, CompleteMultipartUpload) that
        overwrite the object only while it still has ``etag`` (``IfMatch``): a refresh
        never clobbers a concurrent writer. ``False`` from ``put_if_absent`` and
        ``complete_if_absent`` then means "changed or removed meanwhile"."""
        store = ObjectStore(self.s3, self.bucket)
        store.replaces = etag
        return store

    def _visible_write(self) -> dict[str, str]:
        return {"IfMatch": self.replaces} if self.replaces else {"IfNoneMatch": "*"}

    def _lost_race(self, error: ClientError) -> bool:
        code = _code(error)
        # Replacing: a removed object (404) lost the race as surely as a changed one.
        return code in _PRECONDITION or (self.replaces is not None and code in _MISSING)

    # -- objects

    def exists(self, key: str) -> bool:
        """True when ``key`` is in the bucket (HeadObject)."""
        return self._head(key) is not None

    def put_if_absent(
        self, key: str, data: bytes | bytearray, attributes: ObjectAttributes
    ) -> bool:
        """Create ``key`` with ``data`` unless it exists; False when it already existed."""
        try:
            self.s3.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=data,
                ChecksumAlgorithm="CRC32",
                ChecksumCRC32=crc32_base64(data),
                **self._visible_write(),
                **attributes.as_params(),
            )
        except ClientError as error:
            if self._lost_race(error):
                return False
            raise StoreError(f"PutObject {key!r}: {_describe(error)}") from error
        except BotoCoreError as error:
            raise StoreError(f"PutObject {key!r}: {error}") from error
        return True

    def content_type(self, key: str) -> str | None:
        """The Content-Type S3 keeps for ``key`` (HeadObject); None when absent or missing."""
        response = self._head(key)
        value = response.get("ContentType") if response is not None else None
        return str(value) if value else None

    def read_object(self, key: str, max_bytes: int) -> StoredObject | None:
        """The first ``max_bytes`` of ``key`` and its headers (GetObject); None when missing.
        Memory bound: ``max_bytes`` plus one read buffer, whatever the object's size."""
        try:
            response = self.s3.get_object(Bucket=self.bucket, Key=key)
            try:
                body = response["Body"].read(max_bytes)
            finally:
                response["Body"].close()
        except ClientError as error:
            if _code(error) in _MISSING:
                return None
            raise StoreError(f"GetObject {key!r}: {_describe(error)}") from error
        except BotoCoreError as error:
            raise StoreError(f"GetObject {key!r}: {error}") from error
        return StoredObject(
            body=body,
            size=int(response.get("ContentLength", len(body))),
            content_type=response.get("ContentType") or None,
            content_encoding=response.get("ContentEncoding") or None,
        )

    # -- multipart

    def start_multipart(self, key: str, attributes: ObjectAttributes) -> str:
        """Begin a multipart upload with CRC32 part checksums; returns its UploadId."""
        try:
            response = self.s3.create_multipart_upload(
                Bucket=self.bucket, Key=key, ChecksumAlgorithm="CRC32", **attributes.as_params()
            )
        except (ClientError, BotoCoreError) as error:
            raise StoreError(f"CreateMultipartUpload {key!r}: {_describe(error)}") from error
        return str(response["UploadId"])

    def upload_part(
        self, key: str, upload_id: str, number: int, data: bytes | bytearray
    ) -> UploadedPart:
        """Upload part ``number`` (1-based) with its CRC32, checked by S3 on arrival."""
        checksum = crc32_base64(data)
        try:
            response = self.s3.upload_part(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                PartNumber=number,
                Body=data,
                ChecksumAlgorithm="CRC32",
                ChecksumCRC32=checksum,
            )
        except (ClientError, BotoCoreError) as error:
            raise StoreError(f"UploadPart {number} of {key!r}: {_describe(error)}") from error
        echoed = response.get("ChecksumCRC32")
        if echoed is not None and echoed != checksum:
            raise StoreError(f"UploadPart {number} of {key!r}: S3 holds CRC32 {echoed}")
        return UploadedPart(number=number, etag=str(response["ETag"]), crc32=checksum)

    def complete_if_absent(self, key: str, upload_id: str, parts: Sequence[UploadedPart]) -> bool:
        """Make the upload visible unless ``key`` exists; False when it already existed
        (the upload is then still open: the caller aborts it)."""
        try:
            self.s3.complete_multipart_upload(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": [part.as_param() for part in parts]},
                **self._visible_write(),
            )
        except ClientError as error:
            if self._lost_race(error):
                return False
            raise StoreError(f"CompleteMultipartUpload {key!r}: {_describe(error)}") from error
        except BotoCoreError as error:
            raise StoreError(f"CompleteMultipartUpload {key!r}: {error}") from error
        return True

    def abort(self, key: str, upload_id: str) -> None:
        """Abort an upload so no part lingers (and none is billed); a gone upload is fine."""
        try:
            self.s3.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except ClientError as error:
            if _code(error) in _MISSING:
                return
            raise StoreError(f"AbortMultipartUpload {key!r}: {_describe(error)}") from error
        except BotoCoreError as error:
            raise StoreError(f"AbortMultipartUpload {key!r}: {error}") from error

    def upload_is_open(self, key: str, upload_id: str) -> bool:
        """True when ``upload_id`` is an open upload of exactly ``key`` (ListMultipartUploads
        under the key as prefix): an id taken from elsewhere never steers a write."""
        params: dict[str, Any] = {"Bucket": self.bucket, "Prefix": key}
        try:
            while True:
                response = self.s3.list_multipart_uploads(**params)
                for upload in response.get("Uploads", []):
                    if upload.get("Key") == key and upload.get("UploadId") == upload_id:
                        return True
                if not response.get("IsTruncated"):
                    return False
                params["KeyMarker"] = response.get("NextKeyMarker", "")
                params["UploadIdMarker"] = response.get("NextUploadIdMarker", "")
        except (ClientError, BotoCoreError) as error:
            raise StoreError(f"ListMultipartUploads {key!r}: {_describe(error)}") from error

    def list_parts(self, key: str, upload_id: str) -> dict[int, ListedPart] | None:
        """The parts S3 holds in an open upload, by number; None when the upload is gone
        (completed, aborted, or expired by the lifecycle rule)."""
        parts: dict[int, ListedPart] = {}
        marker = 0
        try:
            while True:
                response = self.s3.list_parts(
                    Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumberMarker=marker
                )
                for item in response.get("Parts", []):
                    number = int(item["PartNumber"])
                    parts[number] = ListedPart(
                        number=number,
                        size=int(item["Size"]),
                        etag=str(item["ETag"]),
                        crc32=item.get("ChecksumCRC32"),
                    )
                if not response.get("IsTruncated"):
                    return parts
                marker = int(response["NextPartNumberMarker"])
        except ClientError as error:
            if _code(error) in _MISSING:
                return None
            raise StoreError(f"ListParts {key!r}: {_describe(error)}") from error
        except BotoCoreError as error:
            raise StoreError(f"ListParts {key!r}: {error}") from error

    # -- leases

    def create_lease(self, key: str, body: bytes) -> str | None:
        """Create lease object ``key``; its ETag, or None when a lease already exists."""
        try:
            response = self.s3.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=body,
                IfNoneMatch="*",
                ContentType="application/json",
            )
        except ClientError as error:
            if _code(error) in _LEASE_TAKEN:
                return None
            raise StoreError(f"PutObject lease {key!r}: {_describe(error)}") from error
        except BotoCoreError as error:
            raise StoreError(f"PutObject lease {key!r}: {error}") from error
        return str(response["ETag"])

    def read_lease(self, key: str) -> StoredLease | None:
        """The current lease object, or None when there is none."""
        # A lease is a few hundred bytes; with a checkpoint of 10,000 parts, ~700 KB.
        return self._read_small(key, MAX_LEASE_BYTES, "GetObject lease")

    def replace_lease(self, key: str, body: bytes, etag: str) -> str | None:
        """Overwrite the lease only if it still has ``etag``; its new ETag, or None when
        another worker changed or removed it first."""
        try:
            response = self.s3.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=body,
                IfMatch=etag,
                ContentType="application/json",
            )
        except ClientError as error:
            if _code(error) in _LEASE_TAKEN | _MISSING:
                return None
            raise StoreError(f"PutObject lease {key!r}: {_describe(error)}") from error
        except BotoCoreError as error:
            raise StoreError(f"PutObject lease {key!r}: {error}") from error
        return str(response["ETag"])

    def delete_lease(self, key: str, etag: str) -> bool:
        """Delete the lease only if it still has ``etag``; False when it had changed."""
        return self._delete_if_match(key, etag, "DeleteObject lease")

    # -- markers (small JSON objects under the reserved prefix)

    def write_marker(self, key: str, body: bytes) -> None:
        """Create or overwrite marker object ``key``."""
        self._put_json(key, body, "PutObject marker")

    def read_marker(self, key: str) -> bytes | None:
        """The body of marker object ``key`` (at most 64 KiB), or None when absent."""
        lease = self.read_lease(key)
        return None if lease is None else lease.body

    # -- revalidation: copies' state and the due index

    def head(self, key: str) -> StoredCopy | None:
        """The copy's ETag, metadata, representation headers and checksums (HeadObject
        with ``ChecksumMode``); None when it is missing."""
        response = self._head(key, checksums=True)
        if response is None:
            return None
        expires = response.get("ExpiresString")
        if expires is None and response.get("Expires") is not None:
            expires = response["Expires"].strftime("%a, %d %b %Y %H:%M:%S GMT")
        modified = response.get("LastModified")
        return StoredCopy(
            etag=str(response["ETag"]),
            metadata={str(k).lower(): str(v) for k, v in (response.get("Metadata") or {}).items()},
            cache_control=response.get("CacheControl"),
            expires=expires if isinstance(expires, str) else None,
            size=int(response.get("ContentLength") or 0),
            content_type=response.get("ContentType") or None,
            content_disposition=response.get("ContentDisposition") or None,
            content_language=response.get("ContentLanguage") or None,
            content_encoding=response.get("ContentEncoding") or None,
            last_modified=modified if isinstance(modified, datetime) else None,
            checksum_crc32=response.get("ChecksumCRC32") or None,
            checksum_sha256=response.get("ChecksumSHA256") or None,
            encryption=response.get("ServerSideEncryption") or None,
            customer_key=bool(response.get("SSECustomerAlgorithm")),
        )

    def update_attributes(self, key: str, etag: str, attributes: ObjectAttributes) -> bool:
        """Rewrite the headers and metadata of ``key`` while it still has ``etag``
        (CopyObject onto itself, ``MetadataDirective=REPLACE``, ``CopySourceIfMatch``);
        False when it changed or is gone meanwhile. Objects up to 5 GiB (CopyObject's
        limit). moto 5.2.5 ignores ``CopySourceIfMatch``; S3 enforces it."""
        try:
            self.s3.copy_object(
                Bucket=self.bucket,
                Key=key,
                CopySource={"Bucket": self.bucket, "Key": key},
                CopySourceIfMatch=etag,
                MetadataDirective="REPLACE",
                ChecksumAlgorithm="CRC32",
                **attributes.as_params(),
            )
        except ClientError as error:
            if _code(error) in _LEASE_TAKEN | _MISSING:
                return False
            raise StoreError(f"CopyObject {key!r}: {_describe(error)}") from error
        except BotoCoreError as error:
            raise StoreError(f"CopyObject {key!r}: {error}") from error
        return True

    def delete_if_match(self, key: str, etag: str) -> bool:
        """Delete ``key`` only if it still has ``etag``; False when it changed or is gone."""
        return self._delete_if_match(key, etag, "DeleteObject")

    def put_small(self, key: str, body: bytes) -> None:
        """Write one of edgefill's own small JSON objects (an index entry)."""
        self._put_json(key, body, "PutObject")

    def get_small(self, key: str, limit: int = 64 * 1024) -> bytes | None:
        """The first ``limit`` bytes of one of edgefill's own objects; None when missing."""
        stored = self._read_small(key, limit, "GetObject")
        return None if stored is None else bytes(stored.body)

    def delete_keys(self, keys: Sequence[str]) -> list[str]:
        """Delete ``keys`` (DeleteObjects, 1 000 a call); returns the keys that failed."""
        failed: list[str] = []
        for start in range(0, len(keys), MAX_DELETE_KEYS):
            chunk = keys[start : start + MAX_DELETE_KEYS]
            try:
                response = self.s3.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": key} for key in chunk], "Quiet": True},
                )
            except (ClientError, BotoCoreError) as error:
                raise StoreError(f"DeleteObjects: {_describe(error)}") from error
            failed.extend(str(item.get("Key")) for item in response.get("Errors", []))
        return failed

    def list_page(
        self, prefix: str, start_after: str | None = None, max_keys: int = MAX_LIST_KEYS
    ) -> tuple[list[ListedKey], bool]:
        """One ListObjectsV2 page of keys under ``prefix`` after ``start_after``, in key
        order, and whether more follow."""
        params: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix, "MaxKeys": max_keys}
        if start_after:
            params["StartAfter"] = start_after
        try:
            response = self.s3.list_objects_v2(**params)
        except (ClientError, BotoCoreError) as error:
            raise StoreError(f"ListObjectsV2 {prefix!r}: {_describe(error)}") from error
        listed = [
            ListedKey(str(item["Key"]), int(item.get("Size") or 0))
            for item in response.get("Contents", [])
        ]
        return listed, bool(response.get("IsTruncated"))

    # -- the calls behind the methods above

    def _head(self, key: str, checksums: bool = False) -> dict[str, Any] | None:
        """HeadObject's answer for ``key`` (with its checksums when asked); None when it
        is missing, StoreError on any other failure."""
        extra = {"ChecksumMode": "ENABLED"} if checksums else {}
        try:
            response: dict[str, Any] = self.s3.head_object(Bucket=self.bucket, Key=key, **extra)
        except ClientError as error:
            if _code(error) in _MISSING:
                return None
            raise StoreError(f"HeadObject {key!r}: {_describe(error)}") from error
        except BotoCoreError as error:
            raise StoreError(f"HeadObject {key!r}: {error}") from error
        return response

    def _read_small(self, key: str, limit: int, label: str) -> StoredLease | None:
        """The first ``limit`` bytes and the ETag of one of edgefill's own small objects
        (GetObject); None when it is missing. ``label`` starts the error's text."""
        try:
            response = self.s3.get_object(Bucket=self.bucket, Key=key)
            body = response["Body"].read(limit)
        except ClientError as error:
            if _code(error) in _MISSING:
                return None
            raise StoreError(f"{label} {key!r}: {_describe(error)}") from error
        except BotoCoreError as error:
            raise StoreError(f"{label} {key!r}: {error}") from error
        return StoredLease(body=body, etag=str(response["ETag"]))

    def _put_json(self, key: str, body: bytes, label: str) -> None:
        """Create or overwrite one of edgefill's own small JSON objects (PutObject)."""
        try:
            self.s3.put_object(
                Bucket=self.bucket, Key=key, Body=body, ContentType="application/json"
            )
        except (ClientError, BotoCoreError) as error:
            raise StoreError(f"{label} {key!r}: {_describe(error)}") from error

    def _delete_if_match(self, key: str, etag: str, label: str) -> bool:
        """Delete ``key`` only if it still has ``etag`` (``IfMatch``); False when it
        changed, is being changed (409) or is gone."""
        try:
            self.s3.delete_object(Bucket=self.bucket, Key=key, IfMatch=etag)
        except ClientError as error:
            if _code(error) in _LEASE_TAKEN | _MISSING:
                return False
            raise StoreError(f"{label} {key!r}: {_describe(error)}") from error
        except BotoCoreError as error:
            raise StoreError(f"{label} {key!r}: {error}") from error
        return True


def _code(error: ClientError) -> str:
    response = error.response
    code = str(response.get("Error", {}).get("Code", ""))
    status = str(response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
    # HeadObject errors carry no body: only the status tells "missing" apart.
    return code if code and not code.isdigit() else status


def _describe(error: Exception) -> str:
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        return f"{details.get('Code', '?')}: {details.get('Message', '')}".strip()
    return str(error)
