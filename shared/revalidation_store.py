"""The bucket as revalidation sees it: a copy's state, conditional deletes, the due index.

A copy is read with HeadObject (its ETag guards what follows), deleted only if it still
has that ETag (``IfMatch``: a copy replaced meanwhile is never removed), and the due
index is a set of small JSON objects under ``_edgefill/due/`` listed in key order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from botocore.exceptions import BotoCoreError, ClientError

from shared.object_store import (
    StoreError,
    _describe,
    delete_if_match,
    head_object,
    put_json,
    read_small,
)

# DeleteObjects takes at most 1 000 keys a call.
MAX_DELETE_KEYS: Final = 1000
# ListObjectsV2 returns at most 1 000 keys a page.
MAX_LIST_KEYS: Final = 1000


@dataclass(frozen=True, slots=True)
class StoredCopy:
    """What HeadObject says about a copy: the ETag that guards a conditional overwrite or
    delete, its user metadata and the freshness headers S3 kept."""

    etag: str
    metadata: Mapping[str, str]
    cache_control: str | None = None
    expires: str | None = None
    size: int = 0


@dataclass(frozen=True, slots=True)
class ListedKey:
    """One key of a listing page."""

    key: str
    size: int


class RevalidationStore:
    """One bucket through a boto3 S3 client (thread-safe)."""

    def __init__(self, s3: Any, bucket: str) -> None:
        self.s3 = s3
        self.bucket = bucket

    def head(self, key: str) -> StoredCopy | None:
        """The copy's ETag, metadata and freshness headers; None when it is missing."""
        response = head_object(self.s3, self.bucket, key)
        if response is None:
            return None
        expires = response.get("ExpiresString")
        if expires is None and response.get("Expires") is not None:
            expires = response["Expires"].strftime("%a, %d %b %Y %H:%M:%S GMT")
        return StoredCopy(
            etag=str(response["ETag"]),
            metadata={str(k).lower(): str(v) for k, v in (response.get("Metadata") or {}).items()},
            cache_control=response.get("CacheControl"),
            expires=expires if isinstance(expires, str) else None,
            size=int(response.get("ContentLength") or 0),
        )

    def delete_if_match(self, key: str, etag: str) -> bool:
        """Delete ``key`` only if it still has ``etag``; False when it changed or is gone."""
        return delete_if_match(self.s3, self.bucket, key, etag)

    def put_small(self, key: str, body: bytes) -> None:
        """Write one of edgefill's own small JSON objects (an index entry)."""
        put_json(self.s3, self.bucket, key, body)

    def get_small(self, key: str, limit: int = 64 * 1024) -> bytes | None:
        """The first ``limit`` bytes of one of edgefill's own objects; None when missing."""
        stored = read_small(self.s3, self.bucket, key, limit)
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
