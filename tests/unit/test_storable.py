"""What the origin says about storing: redirects, do-not-store signals, headers S3 cannot
carry, and the headers a copy keeps or names as dropped."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from requests.structures import CaseInsensitiveDict

from backfill_worker.transfer.storable import DroppedHeader, Refusal, Storable, decide
from shared.cache_control import http_date


def refusal(status: int, headers: dict[str, str]) -> Refusal:
    verdict = decide(status, CaseInsensitiveDict(headers))
    assert isinstance(verdict, Refusal), verdict
    return verdict


def storable(headers: dict[str, str]) -> Storable:
    verdict = decide(200, CaseInsensitiveDict(headers))
    assert isinstance(verdict, Storable), verdict
    return verdict


# ---------------------------------------------------------------- redirects


@pytest.mark.parametrize("status", [300, 301, 302, 303, 304, 307, 308])
def test_a_redirect_is_never_stored(status: int) -> None:
    verdict = refusal(status, {"Location": "/elsewhere.jpg"})
    assert verdict.reason == "redirect"
    assert verdict.directive == f"HTTP {status}"


def test_a_redirect_target_is_logged_without_query_or_userinfo() -> None:
    # Given a redirect to a signed URL carrying credentials
    location = "https://user:secret@cdn.example.com:8443/a.jpg?X-Amz-Signature=abc#frag"
    # Then the detail names the target's scheme, host, port and path only
    detail = refusal(302, {"Location": location}).detail
    assert "https://cdn.example.com:8443/a.jpg" in detail
    for secret in ("user", "secret", "Signature", "abc", "frag"):
        assert secret not in detail


def test_a_garbled_location_is_refused_without_its_query() -> None:
    for location in ("http://[::1/x?token=1", "/relative/path?token=1", "http://h:99999/x?token=1"):
        detail = refusal(301, {"Location": location}).detail
        assert "token" not in detail, detail


# ---------------------------------------------------------------- do-not-store signals


@pytest.mark.parametrize(
    ("headers", "directive"),
    [
        ({"Cache-Control": "private"}, "Cache-Control: private"),
        ({"Cache-Control": 'public, PRIVATE="set-cookie"'}, "Cache-Control: private"),
        ({"Cache-Control": "max-age=60, no-store"}, "Cache-Control: no-store"),
        ({"Cache-Control": "public, max-age=60, no-cache"}, "Cache-Control: no-cache"),
        ({"Cache-Control": 'no-cache="Set-Cookie, X-A", max-age=9'}, "Cache-Control: no-cache"),
        ({"Cache-Control": "s-maxage=0, max-age=600"}, "Cache-Control: s-maxage=0"),
        ({"Cache-Control": "max-age=0"}, "Cache-Control: max-age=0"),
        ({"Cache-Control": "max-age=0, s-maxage=0"}, "Cache-Control: s-maxage=0"),
        ({"Cache-Control": "max-age=-1"}, "Cache-Control: max-age=-1"),  # invalid is stale
        ({"Cache-Control": "max-age=١٢"}, "Cache-Control: max-age=١٢"),  # not ASCII digits
        ({"Cache-Control": "s-maxage=soon"}, "Cache-Control: s-maxage=soon"),
        ({"Pragma": "no-cache"}, "Pragma: no-cache"),
        ({"Vary": "*"}, "Vary: *"),
        ({"Vary": "Accept-Encoding, Cookie"}, "Vary: Cookie"),
        ({"Vary": "authorization"}, "Vary: authorization"),
        ({"Vary": "Accept-Encoding, Origin"}, "Vary: Origin"),
        ({"Set-Cookie": "session=abc; Path=/"}, "Set-Cookie"),
        ({"Set-Cookie2": "session=abc"}, "Set-Cookie2"),
    ],
)
def test_do_not_store_signals_are_refused_naming_the_directive(
    headers: dict[str, str], directive: str
) -> None:
    verdict = refusal(200, headers)
    assert (verdict.reason, verdict.directive) == ("uncacheable", directive)
    assert directive in verdict.detail


@pytest.mark.parametrize(
    "headers",
    [
        {"Cache-Control": "max-age=0, s-maxage=60"},  # shared caches may keep it a minute
        {"Cache-Control": "max-age=" + "9" * 400},  # too large to represent: 2^31 s
        {"Cache-Control": "public, max-age=31536000, immutable, no-transform"},
        {"Cache-Control": "max-age=60", "Pragma": "no-cache"},  # Cache-Control wins
        {"Vary": "Accept-Encoding"},
        {"Vary": "accept-encoding, Accept-Encoding"},
        {"Cache-Control": 'community="no-cache"'},  # an extension whose value says no-cache
        {},
    ],
)
def test_cacheable_responses_are_stored(headers: dict[str, str]) -> None:
    storable(headers)


# ---------------------------------------------------------------- headers S3 cannot carry


@pytest.mark.parametrize(
    "content_type",
    [
        "text/html",
        "text/html; charset=utf-8",
        "Application/XHTML+XML",
        "image/svg+xml",
        "text/xml",
        "application/xml",
    ],
)
@pytest.mark.parametrize(
    "policy", ["Content-Security-Policy", "Content-Security-Policy-Report-Only"]
)
def test_active_content_with_a_policy_is_refused(content_type: str, policy: str) -> None:
    verdict = refusal(200, {"Content-Type": content_type, policy: "default-src 'self'"})
    assert (verdict.reason, verdict.directive) == ("unstorable_header", policy)


def test_passive_content_with_a_policy_is_stored_and_the_policy_named_as_dropped() -> None:
    verdict = storable(
        {"Content-Type": "image/png", "Content-Security-Policy": "default-src 'none'"}
    )
    assert DroppedHeader("Content-Security-Policy", "S3 does not store it") in verdict.dropped


def test_active_content_without_a_policy_is_stored() -> None:
    storable({"Content-Type": "text/html; charset=utf-8", "X-Frame-Options": "DENY"})


# ---------------------------------------------------------------- kept and dropped


def test_representation_headers_and_validators_are_kept() -> None:
    verdict = storable(
        {
            "Content-Type": "text/css; charset=utf-8",
            "Cache-Control": "max-age=60",
            "Content-Disposition": "attachment",
            "Content-Language": "fr",
            "Content-Encoding": "br",
            "Expires": "Thu, 01 Jan 2026 00:00:00 GMT",
            "ETag": '"abc"',
            "Last-Modified": "Tue, 14 Nov 2023 22:13:20 GMT",
            "Server": "nginx",
            "Date": "Tue, 14 Nov 2023 22:13:20 GMT",
            "Content-Length": "10",
            "Accept-Ranges": "bytes",
            "x-amz-request-id": "R1",
        }
    )
    assert verdict.dropped == ()
    assert verdict.attributes.as_params() == {
        "ContentType": "text/css; charset=utf-8",
        "CacheControl": "max-age=60",
        "ContentDisposition": "attachment",
        "ContentLanguage": "fr",
        "ContentEncoding": "br",
        "Expires": datetime(2026, 1, 1, tzinfo=UTC),
        "Metadata": {
            "origin-etag": '"abc"',
            "origin-last-modified": "Tue, 14 Nov 2023 22:13:20 GMT",
            "origin-date": "Tue, 14 Nov 2023 22:13:20 GMT",  # for the current age, later
        },
    }


def test_every_header_the_copy_loses_is_named_with_why() -> None:
    verdict = storable(
        {
            "Cache-Control": "max-age=60",
            "Expires": "0",
            "Content-Disposition": 'inline; filename="café.txt"',
            "Last-Modified": "yesterday",
            "ETag": "unquoted-tag",
            "Link": "</style.css>; rel=preload",
            "X-Content-Type-Options": "nosniff",
            "x-amz-meta-owner": "team-a",
            "Vary": "Accept-Encoding",
        }
    )
    assert dict(verdict.dropped) == {
        "Expires": "not an IMF-fixdate, and ignored beside max-age (RFC 9111 §5.3)",
        "Content-Disposition": "not printable ASCII",
        "Last-Modified": "not an HTTP date",
        "Etag": "not an entity tag",
        "Link": "S3 does not store it",
        "X-Content-Type-Options": "S3 does not store it",
        "X-Amz-Meta-Owner": "S3 does not store it",
        "Vary": "S3 does not store it",
    }
    assert verdict.attributes.as_params() == {"CacheControl": "max-age=60"}


@pytest.mark.parametrize(
    "value",
    [
        "Sat, 01 Jan 10000 00:00:00 GMT",  # past datetime's year 9999
        "Fri, 31 Dec 9999 23:59:59 -2359",  # after 9999 once in UTC
        "Thu, 01 Jan 1970 25:00:00 GMT",
        "Thu, 32 Jan 2026 00:00:00 GMT",
    ],
)
def test_an_expires_that_is_no_date_is_already_expired_rfc9111_5_3(value: str) -> None:
    # Given an Expires outside datetime's range and no max-age / Then it is not stored
    verdict = refusal(200, {"Expires": value, "Content-Type": "image/png"})
    assert (verdict.reason, verdict.directive) == ("uncacheable", "Expires")
    # And beside a max-age it is ignored, dropped and named
    kept = storable({"Expires": value, "Cache-Control": "max-age=60"})
    assert [d.name for d in kept.dropped] == ["Expires"] and kept.attributes.expires is None


def test_http_dates_are_utc_and_strict_rfc9110_5_6_7() -> None:
    assert http_date("Thu, 01 Jan 2026 01:00:00 GMT") == datetime(2026, 1, 1, 1, tzinfo=UTC)
    assert http_date("Thu, 01 Jan 2026 01:00:00 +0100") is None
    assert http_date("not a date") is None


# ---------------------------------------------------------------- malformed lengths


@pytest.mark.parametrize("value", ["١٢٣", "²", "-5", "5, 6", "0x10", "1e3", "", "1" * 31, "12 34"])
def test_a_content_length_that_is_not_a_number_is_refused_as_a_bad_header(value: str) -> None:
    verdict = refusal(200, {"Content-Length": value})
    assert (verdict.reason, verdict.directive) == ("bad_header", "Content-Length")


@pytest.mark.parametrize("value", ["0", "123", " 123 ", "5, 5", "9" * 30])
def test_a_content_length_of_ascii_digits_is_accepted(value: str) -> None:
    storable({"Content-Length": value})


def test_other_statuses_are_not_stored() -> None:
    assert refusal(204, {}).reason == "origin"
