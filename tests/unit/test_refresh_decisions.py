"""Refresh decisions without servers: a 200 with the stored ETag, hostile validators,
whose copies are edgefill's, and how invalidations are batched and encoded."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from requests.structures import CaseInsensitiveDict

from backfill_worker.freshness.invalidation import PendingInvalidations, invalidation_path
from backfill_worker.freshness.revalidation import (
    Revalidation,
    bytes_of,
    conditions_of,
    is_edgefills,
)
from backfill_worker.transfer.plan import CopyPlan
from shared.object_store import StoredCopy

NOW = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)


class OneResponse:
    def __init__(self, etag: str) -> None:
        self.status = 200
        self.headers = CaseInsensitiveDict({"ETag": etag, "Content-Length": "5"})
        self.closed = False
        self.read_any = False

    def read(self, amount: int) -> bytes:
        self.read_any = True
        return b"hello"

    def close(self) -> None:
        self.closed = True


class IgnoringOrigin:
    """An origin that ignores conditional headers: always 200 with the same version."""

    def __init__(self, etag: str) -> None:
        self.response = OneResponse(etag)
        self.conditions: Any = None

    def get(self, url: str, budget: Any = None, *, conditional: Any = None) -> OneResponse:
        self.conditions = conditional
        return self.response


class NoStore:
    def replacing(self, etag: str) -> NoStore:
        return self

    def put_if_absent(self, *args: Any) -> bool:
        raise AssertionError("an unchanged copy must not be rewritten")


def test_a_200_with_the_stored_etag_is_unchanged_and_reads_no_body() -> None:
    origin = IgnoringOrigin('"v1"')
    refresh = Revalidation(NoStore(), None, origin, lambda: NOW)  # type: ignore[arg-type]
    copy = StoredCopy(
        etag='"s3etag"',
        metadata={"origin-etag": '"v1"', "fetched-at": "2026-11-29T06:00:00Z"},
    )
    result = refresh.revalidate("k", "http://o/k", CopyPlan(1 << 30, 8 << 20, 2), copy)
    assert result.status == "unchanged"
    assert origin.conditions == {"If-None-Match": '"v1"'}
    assert origin.response.closed and not origin.response.read_any
    # And the next due time is the answer's: checked now, with the 200's fields
    assert result.checked_at == NOW and result.fields is not None
    assert result.fields["etag"] == '"v1"'


def test_hostile_validators_are_not_sent_back_as_headers() -> None:
    copy = StoredCopy(
        etag='"x"',
        metadata={"origin-etag": '"a"\r\nX-Evil: 1', "origin-last-modified": "x" * 600},
    )
    assert conditions_of(copy) == {}
    good = StoredCopy(
        etag='"x"',
        metadata={"origin-etag": 'W/"a"', "origin-last-modified": "Tue, 14 Nov 2023 22:13:20 GMT"},
    )
    assert conditions_of(good) == {
        "If-None-Match": 'W/"a"',
        "If-Modified-Since": "Tue, 14 Nov 2023 22:13:20 GMT",
    }


def test_only_copies_with_edgefill_metadata_are_edgefills() -> None:
    assert not is_edgefills(StoredCopy(etag='"x"', metadata={}))
    assert not is_edgefills(StoredCopy(etag='"x"', metadata={"owner": "me"}))
    assert is_edgefills(StoredCopy(etag='"x"', metadata={"fetched-at": "2026-11-30T06:00:00Z"}))
    assert is_edgefills(StoredCopy(etag='"x"', metadata={"origin-etag": '"1"'}))  # older copies


class FakeCloudFront:
    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    def create_invalidation(self, DistributionId: str, InvalidationBatch: Any) -> Any:  # noqa: N803
        self.batches.append(InvalidationBatch["Paths"]["Items"])
        assert InvalidationBatch["Paths"]["Quantity"] == len(InvalidationBatch["Paths"]["Items"])
        return {"Invalidation": {"Id": f"I{len(self.batches)}"}}


class Log:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, msg: str, **_: Any) -> None:
        self.lines.append(msg)

    warning = error = info


def test_one_invalidation_per_flush_with_stars_never_encoded() -> None:
    pending = PendingInvalidations()
    for uri in ("/a%20b.jpg", "/star*.png", "/a%20b.jpg"):
        pending.replaced(uri)
    pending.deleted("/gone.css")
    cloudfront = FakeCloudFront()
    report = pending.flush(cloudfront, "E2EXAMPLE", None, None, Log())
    # A "*" is never percent-encoded (AWS: encode only non-ASCII and RFC 1738 unsafe
    # characters); CloudFront reads it only as a final wildcard, so a URI holding one is
    # invalidated up to its first "*", which covers it
    assert cloudfront.batches == [["/a%20b.jpg", "/star*", "/gone.css"]]
    assert report.invalidation_ids == ["I1"]
    assert invalidation_path("/x*") == "/x*"
    # With the query in the cache key (EDGEFILL_QUERY=forward), every query of a path
    assert invalidation_path("/a%20b.jpg", every_query=True) == "/a%20b.jpg*"
    # And the collection is empty afterwards: a second flush sends nothing
    assert pending.flush(cloudfront, "E2EXAMPLE", None, None, Log()).paths == 0
    assert len(cloudfront.batches) == 1


def test_more_paths_than_cloudfront_takes_at_once_are_split() -> None:
    pending = PendingInvalidations()
    for n in range(3500):
        pending.deleted(f"/p/{n}")
    cloudfront = FakeCloudFront()
    pending.flush(cloudfront, "E2EXAMPLE", None, None, Log())
    assert [len(batch) for batch in cloudfront.batches] == [3000, 500]


class NoValidatorsResponse(OneResponse):
    def __init__(self, body: bytes) -> None:
        super().__init__('"unused"')
        self.headers = CaseInsensitiveDict({"Content-Length": str(len(body))})
        self.body = body

    def read(self, amount: int) -> bytes:
        self.read_any = True
        return self.body[:amount]


HELLO_MD5 = '"5d41402abc4b2a76b9719d911017c592"'  # MD5 of "hello"
HELLO_CRC32 = "NhCmhg=="  # S3's CRC32 checksum of "hello"


@pytest.mark.parametrize(
    "copy",
    [
        # A one-part SSE-S3 copy: its ETag is the MD5
        StoredCopy(etag=HELLO_MD5, metadata={"fetched-at": "2026-11-29T06:00:00Z"}),
        # An SSE-KMS copy: its ETag is not the MD5, S3's stored CRC32 tells
        StoredCopy(
            etag='"0f343b0931126a20f133d67c2b018a3b"',
            metadata={"fetched-at": "2026-11-29T06:00:00Z"},
            checksum_crc32=HELLO_CRC32,
            encryption="aws:kms",
        ),
    ],
    ids=["md5-etag", "sse-kms-crc32"],
)
def test_an_origin_without_validators_sending_the_same_bytes_is_unchanged(
    copy: StoredCopy,
) -> None:
    # Given an origin that sends neither ETag nor Last-Modified, and a copy of "hello"
    origin = IgnoringOrigin('"x"')
    origin.response = NoValidatorsResponse(b"hello")
    refresh = Revalidation(NoStore(), None, origin, lambda: NOW)  # type: ignore[arg-type]
    # When it is refreshed / Then the same bytes are not written again (NoStore would fail)
    result = refresh.revalidate("k", "http://o/k", CopyPlan(1 << 30, 8 << 20, 2), copy)
    assert result.status == "unchanged"
    assert origin.conditions is None  # nothing to be conditional on
    assert result.checked_at == NOW


@pytest.mark.parametrize(
    ("copy", "expected"),
    [
        (StoredCopy(etag=HELLO_MD5, metadata={}), ("md5", HELLO_MD5.strip('"'))),
        (StoredCopy(etag=HELLO_MD5, metadata={}, encryption="aws:kms"), None),
        (StoredCopy(etag=HELLO_MD5, metadata={}, encryption="aws:kms:dsse"), None),
        (StoredCopy(etag=HELLO_MD5, metadata={}, customer_key=True), None),
        (StoredCopy(etag='"abc-2"', metadata={}, checksum_crc32=HELLO_CRC32), None),
        (
            StoredCopy(etag=HELLO_MD5, metadata={}, checksum_crc32=HELLO_CRC32),
            ("crc32", HELLO_CRC32),
        ),
        (
            StoredCopy(etag=HELLO_MD5, metadata={}, checksum_crc32="x", checksum_sha256="s"),
            ("sha256", "s"),
        ),
    ],
    ids=["sse-s3", "sse-kms", "dsse-kms", "sse-c", "multipart", "crc32", "sha256-first"],
)
def test_same_bytes_are_told_by_s3s_checksum_or_an_etag_that_is_an_md5(
    copy: StoredCopy, expected: tuple[str, str] | None
) -> None:
    """Issue 19: an SSE-KMS ETag is not the MD5, so it never vouches for the bytes."""
    assert bytes_of(copy) == expected


class DeletingCopies:
    def __init__(self) -> None:
        self.deleted: list[tuple[str, str]] = []

    def delete_if_match(self, key: str, etag: str) -> bool:
        self.deleted.append((key, etag))
        return True


def test_a_200_with_the_stored_etag_but_now_private_withdraws_the_copy() -> None:
    """Issue 18: a 200 of the same version that is no longer storable is not kept."""
    origin = IgnoringOrigin('"v1"')
    origin.response.headers["Cache-Control"] = "private"
    copies = DeletingCopies()
    refresh = Revalidation(NoStore(), copies, origin, lambda: NOW)  # type: ignore[arg-type]
    copy = StoredCopy(etag='"s3etag"', metadata={"origin-etag": '"v1"'})
    result = refresh.revalidate("k", "http://o/k", CopyPlan(1 << 30, 8 << 20, 2), copy)
    assert result.status == "withdrawn" and copies.deleted == [("k", '"s3etag"')]
    assert result.withdrawal is not None
    assert result.withdrawal.directive == "Cache-Control: private"
    assert not origin.response.read_any
