"""Store only what S3 will serve faithfully, against the lab origin: headers S3 cannot
carry, malformed headers, integrity checks that never raise false alarms, and redirect
targets kept out of the logs."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest

from backfill_worker.flight.outcome import TransientFailure
from edgefill.lab.origin import LabOrigin
from tests.integration.backfill_world import (
    BUCKET,
    MIB,
    FakeLambdaContext,
    keys,
    make_backfiller,
    message,
    stored,
)


def copied_record(caplog: pytest.LogCaptureFixture) -> Any:
    (record,) = [r for r in caplog.records if r.getMessage() == "backfill copied"]
    return record


def skipped_record(caplog: pytest.LogCaptureFixture) -> Any:
    (record,) = [r for r in caplog.records if r.getMessage() == "backfill skipped"]
    return record


# ---------------------------------------------------------------- headers S3 cannot carry


@pytest.mark.parametrize(
    "policy", ["Content-Security-Policy", "Content-Security-Policy-Report-Only"]
)
def test_active_content_with_a_policy_is_not_stored(
    bucket: Any, origin: LabOrigin, policy: str, caplog: pytest.LogCaptureFixture
) -> None:
    origin.put("/app.html", b"<script>1</script>", content_type="text/html; charset=utf-8")
    origin.fault("/app.html", headers={policy: "script-src 'none'"})
    outcome = make_backfiller(bucket, origin).backfill(message("/app.html"))
    assert (outcome.status, outcome.reason) == ("skipped", "unstorable_header")
    assert skipped_record(caplog).directive == policy
    assert keys(bucket) == []


def test_every_header_a_copy_loses_is_named_in_its_log_line(
    bucket: Any, origin: LabOrigin, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a passive object with a policy, a Link, a Vary S3 cannot keep, and an
    # Expires and a Last-Modified it cannot represent
    origin.put("/logo.png", b"png", content_type="image/png")
    origin.fault(
        "/logo.png",
        headers={
            "Content-Security-Policy": "default-src 'none'",
            "Link": "</a.css>; rel=preload",
            "Vary": "Accept-Encoding",
            "Cache-Control": "public, max-age=600, no-transform",
            "Expires": "Sat, 01 Jan 10000 00:00:00 GMT",
            "Last-Modified": "yesterday-ish",
        },
    )
    # When it is copied
    outcome = make_backfiller(bucket, origin).backfill(message("/logo.png"))
    # Then the copy succeeds with what S3 can carry
    assert outcome.status == "copied"
    head = bucket.head_object(Bucket=BUCKET, Key="logo.png")
    assert head["CacheControl"] == "public, max-age=600, no-transform"
    assert "Expires" not in head and "origin-last-modified" not in head["Metadata"]
    # And its log line names each header left behind, and why
    dropped = copied_record(caplog).droppedHeaders
    assert set(dropped) == {
        "Content-Security-Policy",
        "Link",
        "Vary",
        "Expires",
        "Last-Modified",
    }
    # (an Expires beside max-age is ignored, RFC 9111 §5.3: dropped rather than refused)
    assert dropped["Expires"] == "not an IMF-fixdate, and ignored beside max-age (RFC 9111 §5.3)"


# ---------------------------------------------------------------- malformed headers


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(b"\xb2", id="superscript-two"),  # '²'.isdigit() is True; int('²') raises
        pytest.param(b"-5", id="negative"),
        pytest.param(b"12abc", id="garbage"),
        pytest.param(b"9" * 40, id="forty-digits"),
    ],
)
def test_a_malformed_content_length_is_a_named_permanent_outcome(
    bucket: Any, origin: LabOrigin, value: bytes
) -> None:
    origin.put("/odd.bin", b"0123456789")
    origin.fault("/odd.bin", raw_headers=((b"Content-Length", value),))
    outcome = make_backfiller(bucket, origin).backfill(message("/odd.bin"), FakeLambdaContext())
    assert (outcome.status, outcome.reason) == ("skipped", "bad_header")
    assert keys(bucket) == []


def test_a_huge_content_length_is_oversize(bucket: Any, origin: LabOrigin) -> None:
    origin.put("/huge.bin", b"0123456789")
    origin.fault("/huge.bin", raw_headers=((b"Content-Length", b"9" * 25),))
    outcome = make_backfiller(bucket, origin).backfill(message("/huge.bin"))
    assert (outcome.status, outcome.reason) == ("skipped", "oversize")


def test_differing_repeated_lengths_are_a_named_outcome(bucket: Any, origin: LabOrigin) -> None:
    # urllib3 itself refuses such a response: the worker still names what happened
    origin.put("/twice.bin", b"0123456789")
    origin.fault("/twice.bin", raw_headers=((b"Content-Length", b"10"), (b"Content-Length", b"4")))
    outcome = make_backfiller(bucket, origin).backfill(message("/twice.bin"), FakeLambdaContext())
    assert (outcome.status, outcome.reason) == ("skipped", "bad_header")
    assert keys(bucket) == []


@pytest.mark.parametrize("size", [1024, 6 * MIB], ids=["put-object", "multipart"])
def test_headers_past_s3s_8_kb_request_budget_are_a_named_refusal(
    bucket: Any, origin: LabOrigin, size: int, caplog: pytest.LogCaptureFixture
) -> None:
    # Given representation headers that S3 keeps one by one (each under 2 KB) but whose
    # sum passes the 8 KB S3 allows a PutObject / CreateMultipartUpload request
    origin.put("/report.pdf", b"r" * size, content_type="application/pdf")
    padding = "x" * 1990
    origin.fault(
        "/report.pdf",
        headers={
            "Content-Type": f"application/pdf; profile={padding}",
            "Cache-Control": f"max-age=60, ext={padding}",
            "Content-Disposition": f'attachment; filename="{padding}.pdf"',
            "Content-Language": "en, " + "fr, " * 497,
        },
    )
    # When it is backfilled
    outcome = make_backfiller(bucket, origin).backfill(message("/report.pdf"), FakeLambdaContext())
    # Then S3 is never asked (it would refuse, and a retry would be refused again): the
    # record is skipped for good, the reason and the biggest header named
    assert (outcome.status, outcome.reason) == ("skipped", "header_budget")
    record = skipped_record(caplog)
    assert record.directive == "Content-Disposition"
    assert "8192" in record.detail
    assert keys(bucket) == []


def test_garbage_dates_are_dropped_and_the_copy_succeeds(bucket: Any, origin: LabOrigin) -> None:
    # Given an Expires no date, beside a max-age (so it is ignored), and a garbled LM
    origin.put("/d.txt", b"dated")
    origin.fault(
        "/d.txt",
        raw_headers=((b"Expires", b"Fri, 31 Dec 9999 23:59:59 -2359"),),
        headers={"Last-Modified": "\x7f", "Cache-Control": "max-age=60"},
    )
    outcome = make_backfiller(bucket, origin).backfill(message("/d.txt"))
    assert outcome.status == "copied"
    assert stored(bucket, "d.txt") == b"dated"


def test_an_invalid_expires_that_governs_is_already_expired_rfc9111_5_3(
    bucket: Any, origin: LabOrigin
) -> None:
    # Given an Expires that is no date and nothing else saying how long to keep it
    origin.put("/e.txt", b"expired")
    origin.fault("/e.txt", raw_headers=((b"Expires", b"Fri, 31 Dec 9999 23:59:59 -2359"),))
    # Then it is refused, never written back as a valid far-future Expires
    outcome = make_backfiller(bucket, origin).backfill(message("/e.txt"))
    assert (outcome.status, outcome.reason) == ("skipped", "uncacheable")
    assert keys(bucket) == []


# ---------------------------------------------------------------- integrity


def s3_identity(**extra: str) -> dict[str, Any]:
    return {"server": "AmazonS3", "headers": {"x-amz-id-2": "abc", **extra}}


def test_an_s3_etag_that_is_the_md5_checks_out(bucket: Any, origin: LabOrigin) -> None:
    origin.put_generated("/s3.bin", 11 * MIB)
    origin.fault("/s3.bin", **s3_identity())
    outcome = make_backfiller(bucket, origin).backfill(message("/s3.bin"), FakeLambdaContext())
    assert outcome.status == "copied"


@pytest.mark.parametrize(
    "identity",
    [
        pytest.param({"server": "AmazonS3"}, id="server"),
        pytest.param({"headers": {"x-amz-request-id": "4442587FB7D0A2F9"}}, id="request-id"),
    ],
)
@pytest.mark.parametrize("size", [1000, 11 * MIB])
def test_an_s3_etag_mismatch_is_transient(
    bucket: Any, origin: LabOrigin, identity: dict[str, Any], size: int
) -> None:
    origin.put_generated("/bad.bin", size, etag=f'"{hashlib.md5(b"other").hexdigest()}"')
    origin.fault("/bad.bin", **identity)
    with pytest.raises(TransientFailure) as failure:
        make_backfiller(bucket, origin).backfill(message("/bad.bin"), FakeLambdaContext())
    assert failure.value.reason == "md5"
    assert keys(bucket) == []


@pytest.mark.parametrize(
    ("etag", "fault"),
    [
        pytest.param(f'"{"a" * 32}"', {}, id="another-origin"),
        pytest.param(f'"{"a" * 32}"', {"server": "nginx"}, id="nginx"),
        pytest.param(
            f'"{"a" * 32}"',
            s3_identity(**{"x-amz-server-side-encryption": "aws:kms"}),
            id="s3-sse-kms",
        ),
        pytest.param("multipart", s3_identity(), id="s3-multipart"),
        pytest.param(f'W/"{"a" * 32}"', s3_identity(), id="s3-weak"),
    ],
)
def test_an_opaque_etag_never_fails_a_copy(
    bucket: Any, origin: LabOrigin, etag: str, fault: dict[str, Any]
) -> None:
    origin.put_generated("/o.bin", 6 * MIB, etag=etag)
    if fault:
        origin.fault("/o.bin", **fault)
    outcome = make_backfiller(bucket, origin).backfill(message("/o.bin"), FakeLambdaContext())
    assert outcome.status == "copied"
    assert hashlib.md5(stored(bucket, "o.bin")).hexdigest() == origin.md5("/o.bin")


def test_a_right_content_md5_from_any_origin_passes(bucket: Any, origin: LabOrigin) -> None:
    data = b"checked bytes"
    origin.put("/c.txt", data, etag='"opaque-1"')
    digest = base64.b64encode(hashlib.md5(data).digest()).decode()
    origin.fault("/c.txt", headers={"Content-MD5": digest})
    assert make_backfiller(bucket, origin).backfill(message("/c.txt")).status == "copied"


def test_an_unreadable_content_md5_is_a_bad_header(bucket: Any, origin: LabOrigin) -> None:
    origin.put("/u.txt", b"u")
    origin.fault("/u.txt", headers={"Content-MD5": "not-a-digest"})
    outcome = make_backfiller(bucket, origin).backfill(message("/u.txt"))
    assert (outcome.status, outcome.reason) == ("skipped", "bad_header")


# ---------------------------------------------------------------- redirect logs


def test_a_refused_redirect_is_logged_without_query_or_userinfo(
    bucket: Any, origin: LabOrigin, caplog: pytest.LogCaptureFixture
) -> None:
    origin.fault(
        "/signed.jpg",
        redirect="https://viewer:hunter2@media.example.net/a.jpg?Signature=s3cr3t&Expires=9",
    )
    outcome = make_backfiller(bucket, origin).backfill(message("/signed.jpg"))
    assert outcome.reason == "redirect"
    record = skipped_record(caplog)
    assert "https://media.example.net/a.jpg" in record.detail
    text = caplog.text + str(record.__dict__)
    for secret in ("viewer", "hunter2", "s3cr3t", "Signature"):
        assert secret not in text
