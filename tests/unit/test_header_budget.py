"""S3's request-header budget (8 KB, user metadata 2 KB): what fits, what is refused,
and which header the refusal names."""

from __future__ import annotations

from datetime import UTC, datetime

from backfill_worker.transfer.header_budget import (
    MAX_REQUEST_HEADER_BYTES,
    REQUEST_OVERHEAD_BYTES,
    header_refusal,
)
from backfill_worker.transfer.storable import MAX_METADATA_VALUE, MAX_VALUE, Storable, decide
from shared.object_store import ObjectAttributes


def test_a_copy_with_ordinary_headers_fits() -> None:
    attributes = ObjectAttributes(
        content_type="video/mp4",
        cache_control="public, max-age=86400",
        content_disposition='inline; filename="clip.mp4"',
        expires=datetime(2030, 1, 1, tzinfo=UTC),
        metadata={
            "origin-etag": '"' + "a" * 32 + '"',
            "origin-last-modified": "Tue, 14 Nov 2023 22:13:20 GMT",
            "fetched-at": "2026-12-02T10:00:00Z",
        },
    )
    assert header_refusal(attributes) is None


def test_every_kept_header_at_its_own_bound_is_refused_naming_the_biggest() -> None:
    # Given what storable.py keeps at most: four representation headers of 2 048
    # characters and validators of 512
    verdict = decide(
        200,
        {
            "Content-Type": "a/b; x=" + "t" * (MAX_VALUE - 7),
            "Cache-Control": "max-age=1, x=" + "c" * (MAX_VALUE - 13),
            "Content-Language": "en" + ", en" * 511,
            "Content-Disposition": "attachment; filename=" + "d" * (MAX_VALUE - 21),
            "ETag": '"' + "e" * (MAX_METADATA_VALUE - 2) + '"',
        },
    )
    assert isinstance(verdict, Storable)
    # Then the request could not be sent: refused, the header to shorten named
    refusal = header_refusal(verdict.attributes)
    assert refusal is not None and refusal.reason == "header_budget"
    assert refusal.directive in {"Content-Type", "Cache-Control", "Content-Disposition"}
    assert str(MAX_REQUEST_HEADER_BYTES) in refusal.detail


def test_the_budget_is_a_boundary_not_a_guess_per_header() -> None:
    # One header filling what the reserve leaves fits; one byte more does not
    name = "Content-Disposition"
    room = MAX_REQUEST_HEADER_BYTES - REQUEST_OVERHEAD_BYTES - (2 * len(name) + 5)
    assert header_refusal(ObjectAttributes(content_disposition="d" * room)) is None
    refused = header_refusal(ObjectAttributes(content_disposition="d" * (room + 1)))
    assert refused is not None and refused.directive == name


def test_user_metadata_past_2_kb_is_refused_naming_the_key() -> None:
    attributes = ObjectAttributes(metadata={"origin-etag": "e" * 100, "note": "n" * 2000})
    refusal = header_refusal(attributes)
    assert refusal is not None and refusal.reason == "header_budget"
    assert refusal.directive == "x-amz-meta-note"
