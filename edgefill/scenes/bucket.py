"""What the demo and its scenes read back from the lab's bucket: whether a key is there,
and the SHA-256 of its bytes (to compare with the lab origin's)."""

from __future__ import annotations

import hashlib
from typing import Any

# Bodies are hashed a chunk at a time: a scene's film is hundreds of MiB.
CHUNK_BYTES = 1024 * 1024


def object_exists(s3: Any, bucket: str, key: str) -> bool:
    """True when HeadObject finds ``key``; any error answer counts as absent."""
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except s3.exceptions.ClientError:
        return False
    return True


def object_sha256(s3: Any, bucket: str, key: str) -> str:
    """The hex SHA-256 of ``key``'s bytes, streamed; "" when it cannot be read (missing),
    which never equals a real digest."""
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    except s3.exceptions.ClientError:
        return ""
    digest = hashlib.sha256()
    for chunk in body.iter_chunks(CHUNK_BYTES):
        digest.update(chunk)
    return digest.hexdigest()
