"""S3's request-header budget: will the request that creates the copy fit?

S3 refuses a PutObject (or CreateMultipartUpload) whose request headers pass 8 KB, and
user metadata past 2 KB (the UTF-8 bytes of every key and value). Each representation
header the copy keeps is bounded alone (``storable.py``: 2 048 characters, validators
512), but five of them at their bound are 10 KB: such a copy would be refused by S3 on
every retry, after its body had been fetched. ``header_refusal(attributes)`` decides
before any byte is written, with no I/O, and never raises:

- ``Refusal("header_budget", detail, directive)``: permanent (the origin would send the
  same headers again); ``directive`` names the biggest header, the one to shorten;
- None: the request fits.

The request carries more than the copy's attributes: the SigV4 signature (whose
``SignedHeaders`` repeats every header name), the role's session token, the SDK's
headers, the checksum and the conditional header. ``REQUEST_OVERHEAD_BYTES`` reserves
room for them, so the estimate errs on the side of refusing.
"""

from __future__ import annotations

import re
from typing import Final

from backfill_worker.transfer.storable import Refusal
from shared.object_store import ObjectAttributes

# S3: "The PUT request header is limited to 8 KB in size. Within the PUT request header,
# the user-defined metadata is limited to 2 KB in size."
MAX_REQUEST_HEADER_BYTES: Final = 8 * 1024
MAX_METADATA_BYTES: Final = 2 * 1024
# Everything else a request to S3 carries: Host, User-Agent (~300 bytes), X-Amz-Date,
# X-Amz-Content-SHA256, X-Amz-Security-Token (a Lambda role's is 1–1.5 KB), Authorization
# (~250 bytes and the signature), the SDK's invocation headers, Content-Length, the
# CRC32 checksum headers and If-None-Match / If-Match.
REQUEST_OVERHEAD_BYTES: Final = 3 * 1024
# An HTTP date (Expires) as botocore writes it: "Thu, 01 Jan 2026 00:00:00 GMT".
_HTTP_DATE_CHARS: Final = 29
_METADATA_PREFIX: Final = "x-amz-meta-"
_WORD_START = re.compile(r"(?<=[a-z])(?=[A-Z])")  # ContentType → Content-Type


def header_refusal(attributes: ObjectAttributes) -> Refusal | None:
    """Why S3 would refuse the request writing ``attributes``, or None when it fits."""
    headers = _headers(attributes)
    metadata = sum(_utf8(name) + _utf8(value) for name, value in attributes.metadata.items())
    if metadata > MAX_METADATA_BYTES:
        biggest = max(attributes.metadata.items(), key=lambda item: _utf8(item[0] + item[1]))
        return Refusal(
            "header_budget",
            f"user metadata of {metadata} bytes; S3 takes at most {MAX_METADATA_BYTES}",
            _METADATA_PREFIX + biggest[0][:60],
        )
    # Each header costs its line ("Name: value\r\n") and its name in SignedHeaders.
    total = REQUEST_OVERHEAD_BYTES + sum(2 * _utf8(n) + _utf8(v) + 5 for n, v in headers)
    if total <= MAX_REQUEST_HEADER_BYTES:
        return None
    name, value = max(headers, key=lambda header: _utf8(header[1]))
    return Refusal(
        "header_budget",
        f"request headers of about {total} bytes ({name}: {_utf8(value)}); S3 takes at "
        f"most {MAX_REQUEST_HEADER_BYTES}",
        name,
    )


def _headers(attributes: ObjectAttributes) -> list[tuple[str, str]]:
    """The headers ``attributes`` become on the request (``ObjectAttributes.as_params``:
    ``ContentType`` is ``Content-Type``, each metadata entry an ``x-amz-meta-`` header)."""
    headers: list[tuple[str, str]] = []
    for param, value in attributes.as_params().items():
        if param == "Metadata":
            headers.extend((_METADATA_PREFIX + key, text) for key, text in value.items())
        elif param == "Expires":
            headers.append(("Expires", "x" * _HTTP_DATE_CHARS))
        else:
            headers.append((_WORD_START.sub("-", param), str(value)))
    return headers


def _utf8(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))
