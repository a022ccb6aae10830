"""Integrity without false alarms: which digests a copied body must match.

- ``Content-MD5`` (base64, or hex as some servers send it) is always checked; one that is
  neither is a ``bad_header`` refusal: the origin claims a digest nobody can verify.
- A strong ETag counts as the body's MD5 only when the response comes from S3
  (``Server: AmazonS3`` or an ``x-amz-request-id``), is a plain 32-hex tag (no ``-N``
  multipart suffix), and the object is not encrypted with SSE-KMS or SSE-C (S3 documents
  that those ETags are not an MD5 of the data). Any other origin's 32-hex ETag is opaque:
  Apache, nginx and CDNs compute ETags their own way, and a copy must never fail on one.
- The length is checked by the copy itself (every path reads exactly the declared bytes).

A mismatch is ``CopyFailed("md5")``: transient, as damage on the way is.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from typing import Final, NamedTuple

from backfill_worker.transfer.errors import CopyFailed
from backfill_worker.transfer.storable import Refusal

_S3_ETAG = re.compile(r'"([0-9a-fA-F]{32})"')
_HEX_MD5 = re.compile(r"[0-9a-fA-F]{32}")
_S3_SERVER: Final = "amazons3"


class ExpectedMD5(NamedTuple):
    """A digest the body must have, and which header promised it."""

    source: str  # "Content-MD5" or "ETag"
    hex: str  # lower-case


def expected_md5s(headers: Mapping[str, str]) -> tuple[ExpectedMD5, ...] | Refusal:
    """The MD5s ``headers`` promise for the body (none, one or two), or a refusal when
    Content-MD5 is unreadable. Never raises."""
    fields = {name.lower(): value for name, value in headers.items()}
    expected: list[ExpectedMD5] = []
    content_md5 = fields.get("content-md5")
    if content_md5 is not None:
        digest = _content_md5(content_md5)
        if digest is None:
            return Refusal(
                "bad_header",
                f"Content-MD5 is not an MD5 digest: {content_md5[:60]!r}",
                "Content-MD5",
            )
        expected.append(ExpectedMD5("Content-MD5", digest))
    etag = s3_etag_md5(fields)
    if etag is not None:
        expected.append(ExpectedMD5("ETag", etag))
    return tuple(expected)


def check_md5(expected: tuple[ExpectedMD5, ...], actual: str) -> None:
    """Raise ``CopyFailed("md5")`` unless ``actual`` (hex) is every promised digest."""
    for promise in expected:
        if actual != promise.hex:
            raise CopyFailed("md5", f"{promise.source} says {promise.hex}, received {actual}")


def from_s3(fields: Mapping[str, str]) -> bool:
    """True when lower-cased ``fields`` say the response comes from S3."""
    return fields.get("server", "").strip().lower() == _S3_SERVER or "x-amz-request-id" in fields


def s3_etag_md5(fields: Mapping[str, str]) -> str | None:
    """The body's MD5 from an S3 ETag, or None when the ETag is not one."""
    if not from_s3(fields):
        return None
    encryption = fields.get("x-amz-server-side-encryption", "").strip().lower()
    if encryption.startswith("aws:kms") or "x-amz-server-side-encryption-customer-algorithm" in (
        fields
    ):
        return None
    match = _S3_ETAG.fullmatch(fields.get("etag", "").strip())
    return match.group(1).lower() if match else None


def _content_md5(value: str) -> str | None:
    text = value.strip()
    if _HEX_MD5.fullmatch(text):
        return text.lower()
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw.hex() if len(raw) == 16 else None
