"""RFC 9111 as edgefill reads it, pinned rule by rule: one table per question (may the
bucket keep it, for how long, how old is it), each row named after its section. The
rows hold the response shapes of issue 18 and the hostile forms of each header:
duplicates, quoting, case, whitespace, invalid values, huge values.

Storability and lifetime read headers through one parser (``shared/cache_control.py``),
so each hostile form is also checked to mean the same in both."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from backfill_worker.freshness.lifetime import Freshness, freshness_of, next_interval
from backfill_worker.transfer.storable import Refusal, Storable, decide
from shared.cache_control import (
    MAX_DELTA_SECONDS,
    age_value,
    current_age,
    delta_seconds,
    freshness_lifetime,
    http_date,
    is_imf_fixdate,
    parse_cache_control,
    split_list,
)

RECEIVED = datetime(2026, 11, 30, 6, 0, 0, tzinfo=UTC)
DATE = "Mon, 30 Nov 2026 06:00:00 GMT"  # = RECEIVED
DEFAULT = 86_400
FLOOR = 900


def verdict(headers: dict[str, str]) -> Storable | Refusal:
    return decide(200, headers, RECEIVED)


# ---------------------------------------------------------------- the parser


@pytest.mark.parametrize(
    ("value", "elements"),
    [
        pytest.param("a, b,c", ["a", "b", "c"], id="rfc9110-5.6.1-list"),
        pytest.param(" , ,a,, ", ["a"], id="rfc9110-5.6.1-empty-elements"),
        pytest.param('a="x, y", b', ['a="x, y"', "b"], id="rfc9110-5.6.4-comma-in-quotes"),
        pytest.param(r'a="x\", y", b', [r'a="x\", y"', "b"], id="rfc9110-5.6.4-escaped-quote"),
        pytest.param('a="unterminated, b', ['a="unterminated, b'], id="unterminated-quote"),
        pytest.param("\ta\t,\tb", ["a", "b"], id="rfc9110-5.6.3-tabs-are-ows"),
        pytest.param("", [], id="empty"),
        pytest.param(None, [], id="absent"),
    ],
)
def test_lists_split_outside_quoted_strings(value: str | None, elements: list[str]) -> None:
    assert split_list(value) == elements


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        pytest.param("60", 60, id="rfc9111-1.2.2-digits"),
        pytest.param(" 60 ", 60, id="rfc9111-1.2.2-ows"),
        pytest.param("007", 7, id="rfc9111-1.2.2-leading-zeros"),
        pytest.param("9" * 400, MAX_DELTA_SECONDS, id="rfc9111-1.2.2-huge-is-2^31"),
        pytest.param("0" * 50 + "5", 5, id="rfc9111-1.2.2-long-but-small"),
        pytest.param("0" * 50, 0, id="rfc9111-1.2.2-long-zero"),
        pytest.param("١٢", None, id="ascii-only-arabic-digits"),
        pytest.param("²", None, id="ascii-only-superscript"),
        pytest.param("-1", None, id="negative"),
        pytest.param("1e3", None, id="exponent"),
        pytest.param("1.5", None, id="fraction"),
        pytest.param("", None, id="empty"),
        pytest.param(None, None, id="absent"),
    ],
)
def test_delta_seconds_are_ascii_digits_rfc9111_1_2_2(
    value: str | None, seconds: int | None
) -> None:
    assert delta_seconds(value) == seconds


@pytest.mark.parametrize(
    ("value", "age"),
    [
        pytest.param("120", 120, id="rfc9111-5.1-age"),
        pytest.param("120, 30", 120, id="rfc9111-5.1-list-takes-the-first"),
        pytest.param("abc", None, id="rfc9111-5.1-invalid-is-ignored"),
        pytest.param("١٢٠", None, id="rfc9111-5.1-ascii-only"),
        pytest.param("-5", None, id="rfc9111-5.1-negative-is-ignored"),
        pytest.param("9" * 40, MAX_DELTA_SECONDS, id="rfc9111-1.2.2-huge-age"),
    ],
)
def test_age_rfc9111_5_1(value: str, age: int | None) -> None:
    assert age_value(value) == age


@pytest.mark.parametrize(
    ("value", "moment"),
    [
        pytest.param(
            "Sun, 06 Nov 1994 08:49:37 GMT", datetime(1994, 11, 6, 8, 49, 37), id="imf-fixdate"
        ),
        pytest.param(
            "Sunday, 06-Nov-94 08:49:37 GMT", datetime(1994, 11, 6, 8, 49, 37), id="rfc850"
        ),
        pytest.param("Sun Nov  6 08:49:37 1994", datetime(1994, 11, 6, 8, 49, 37), id="asctime"),
        pytest.param("Sun, 06 Nov 1994 08:49:37 +0000", None, id="numeric-zone"),
        pytest.param("06 Nov 1994 08:49:37 GMT", None, id="no-weekday"),
        pytest.param("Thu, 31 Feb 2026 00:00:00 GMT", None, id="no-such-day"),
        pytest.param("Thu, 01 Jan 2026 25:00:00 GMT", None, id="no-such-hour"),
        pytest.param("Thu, ٠١ Jan 2026 00:00:00 GMT", None, id="ascii-only"),
        pytest.param("0", None, id="zero"),
        pytest.param("x" * 10_000, None, id="huge"),
    ],
)
def test_http_dates_rfc9110_5_6_7(value: str, moment: datetime | None) -> None:
    expected = None if moment is None else moment.replace(tzinfo=UTC)
    assert http_date(value) == expected


def test_only_an_exact_imf_fixdate_is_kept_byte_for_byte() -> None:
    assert is_imf_fixdate("Sun, 06 Nov 1994 08:49:37 GMT")
    assert not is_imf_fixdate("Mon, 06 Nov 1994 08:49:37 GMT")  # the wrong weekday
    assert not is_imf_fixdate("Sunday, 06-Nov-94 08:49:37 GMT")  # S3 would rewrite it


@pytest.mark.parametrize(
    ("value", "directives"),
    [
        pytest.param("MAX-AGE=60, Public", [("max-age", "60"), ("public", None)], id="5.2-case"),
        pytest.param('max-age="60"', [("max-age", "60")], id="5.2-quoted-argument"),
        pytest.param(" max-age = 60 ", [("max-age", "60")], id="whitespace-around-equals"),
        pytest.param(
            'foo="a, no-store", max-age=5',
            [("foo", "a, no-store"), ("max-age", "5")],
            id="5.2-no-directive-inside-quotes",
        ),
        pytest.param('no-cache="Set-Cookie, X"', [("no-cache", "Set-Cookie, X")], id="5.2.2.4"),
        pytest.param("max age=5, =5, ,", [], id="not-a-token-is-ignored"),
    ],
)
def test_cache_control_directives_rfc9111_5_2(
    value: str, directives: list[tuple[str, str | None]]
) -> None:
    assert list(parse_cache_control(value).directives) == directives


@pytest.mark.parametrize(
    ("value", "seconds", "problem"),
    [
        pytest.param("max-age=60, max-age=60", 60, None, id="4.2.1-same-duplicate-is-one"),
        pytest.param("max-age=60, max-age=120", None, "differing", id="4.2.1-differing-is-stale"),
        pytest.param("max-age", None, "not delta-seconds", id="4.2.1-no-argument-is-stale"),
        pytest.param("max-age=soon", None, "not delta-seconds", id="4.2.1-invalid-is-stale"),
        pytest.param("max-age=١٢", None, "not delta-seconds", id="4.2.1-non-ascii-is-stale"),
    ],
)
def test_duplicates_and_invalid_values_rfc9111_4_2_1(
    value: str, seconds: int | None, problem: str | None
) -> None:
    control = parse_cache_control(value)
    assert control.seconds("max-age") == seconds
    assert (control.problem("max-age") or "").find(problem or "") >= 0
    assert (control.problem("max-age") is None) is (problem is None)


# ---------------------------------------------------------------- may the bucket keep it


REFUSED = [
    # (id, headers, reason, directive)
    ("5.2.2.7-private", {"Cache-Control": "private"}, "uncacheable", "Cache-Control: private"),
    (
        "5.2.2.7-private-qualified",
        {"Cache-Control": 'public, PRIVATE="x"'},
        "uncacheable",
        "Cache-Control: private",
    ),
    ("5.2.2.5-no-store", {"Cache-Control": "no-store"}, "uncacheable", "Cache-Control: no-store"),
    (
        "5.2.2.5-no-store-beside-must-understand",
        {"Cache-Control": "must-understand, no-store"},
        "uncacheable",
        "Cache-Control: no-store",
    ),
    ("5.2.2.4-no-cache", {"Cache-Control": "No-Cache"}, "uncacheable", "Cache-Control: no-cache"),
    (
        "5.2.2.4-no-cache-qualified-with-a-comma",
        {"Cache-Control": 'no-cache="Set-Cookie, X", max-age=9'},
        "uncacheable",
        "Cache-Control: no-cache",
    ),
    ("5.4-pragma", {"Pragma": "no-cache"}, "uncacheable", "Pragma: no-cache"),
    ("set-cookie", {"Set-Cookie": "a=1"}, "uncacheable", "Set-Cookie"),
    ("4.2-max-age-0", {"Cache-Control": "max-age=0"}, "uncacheable", "Cache-Control: max-age=0"),
    (
        "4.2-max-age-0-whitespace",
        {"Cache-Control": " max-age = 0 "},
        "uncacheable",
        "Cache-Control: max-age=0",
    ),
    (
        "4.2.1-s-maxage-0-wins-for-a-shared-cache",
        {"Cache-Control": "s-maxage=0, max-age=600"},
        "uncacheable",
        "Cache-Control: s-maxage=0",
    ),
    (
        "4.2.1-differing-duplicates",
        {"Cache-Control": "max-age=60, max-age=3600"},
        "uncacheable",
        "Cache-Control: max-age=60",
    ),
    (
        "4.2.1-invalid-max-age",
        {"Cache-Control": "max-age=1e3"},
        "uncacheable",
        "Cache-Control: max-age=1e3",
    ),
    (
        "4.2.1-invalid-s-maxage-beside-a-good-max-age",
        {"Cache-Control": "s-maxage=x, max-age=60"},
        "uncacheable",
        "Cache-Control: s-maxage=x",
    ),
    ("5.3-expires-0", {"Expires": "0"}, "uncacheable", "Expires"),
    ("5.3-expires-garbage", {"Expires": "next week"}, "uncacheable", "Expires"),
    (
        "5.3-two-expires",
        {"Expires": "Tue, 01 Dec 2026 06:00:00 GMT, Wed, 02 Dec 2026 06:00:00 GMT"},
        "uncacheable",
        "Expires",
    ),
    (
        "4.2.1-expires-not-after-date",
        {"Expires": DATE, "Date": DATE},
        "uncacheable",
        "Expires",
    ),
    (
        "4.2.3-age-uses-up-max-age",
        {"Cache-Control": "max-age=60", "Age": "60"},
        "uncacheable",
        "Age",
    ),
    (
        "4.2.3-huge-age",
        {"Cache-Control": "max-age=3600", "Age": "9" * 40},
        "uncacheable",
        "Age",
    ),
    (
        "4.2.3-apparent-age-from-date",
        {"Cache-Control": "max-age=60", "Date": "Mon, 30 Nov 2026 05:58:00 GMT"},
        "uncacheable",
        "Date",
    ),
    ("4.1-vary-star", {"Vary": "*"}, "uncacheable", "Vary: *"),
    ("4.1-vary-origin", {"Vary": "Origin"}, "uncacheable", "Vary: Origin"),
    (
        "4.1-vary-accept-language",
        {"Vary": "accept-encoding, Accept-Language"},
        "uncacheable",
        "Vary: Accept-Language",
    ),
    ("4.1-vary-user-agent", {"Vary": "User-Agent"}, "uncacheable", "Vary: User-Agent"),
    ("4.1-vary-accept", {"Vary": "Accept"}, "uncacheable", "Vary: Accept"),
    ("4.1-vary-cookie", {"Vary": "Cookie"}, "uncacheable", "Vary: Cookie"),
    (
        "keep-cache-control-tab",
        {"Cache-Control": "max-age=60,\tpublic"},
        "unstorable_header",
        "Cache-Control",
    ),
    (
        "keep-cache-control-non-ascii",
        {"Cache-Control": "max-age=60, x=é"},
        "unstorable_header",
        "Cache-Control",
    ),
    (
        "keep-cache-control-over-2kb",
        {"Cache-Control": "max-age=60, " + "x" * 2100},
        "unstorable_header",
        "Cache-Control",
    ),
    (
        "keep-expires-rfc850-would-be-rewritten",
        {"Expires": "Tuesday, 01-Dec-26 06:00:00 GMT"},
        "unstorable_header",
        "Expires",
    ),
]


@pytest.mark.parametrize(
    ("headers", "reason", "directive"),
    [pytest.param(h, r, d, id=f"rfc9111-{i}") for i, h, r, d in REFUSED],
)
def test_what_a_shared_cache_may_not_keep_is_refused_naming_rule_and_field(
    headers: dict[str, str], reason: str, directive: str
) -> None:
    refused = verdict(headers)
    assert isinstance(refused, Refusal), refused
    assert (refused.reason, refused.directive) == (reason, directive)
    assert refused.rule, "every refusal names its rule"


STORED = [
    ("4.2.1-max-age", {"Cache-Control": "max-age=60"}),
    ("4.2.1-s-maxage-beside-max-age-0", {"Cache-Control": "max-age=0, s-maxage=60"}),
    ("4.2.1-same-duplicates", {"Cache-Control": "max-age=60, MAX-AGE=60"}),
    ("5.2-quoted-max-age", {"Cache-Control": 'max-age="60"'}),
    ("5.2-no-store-inside-an-extension", {"Cache-Control": 'ext="no-store", max-age=5'}),
    ("1.2.2-huge-max-age", {"Cache-Control": "max-age=" + "9" * 400}),
    ("4.2.3-age-below-lifetime", {"Cache-Control": "max-age=60", "Age": "59"}),
    ("5.1-invalid-age-is-ignored", {"Cache-Control": "max-age=60", "Age": "soon"}),
    (
        "4.2.3-date-ahead-is-no-age",
        {"Cache-Control": "max-age=60", "Date": "Tue, 01 Dec 2026 00:00:00 GMT"},
    ),
    ("5.3-expires-beside-max-age-ignored", {"Cache-Control": "max-age=60", "Expires": "0"}),
    ("4.2.1-expires-after-date", {"Expires": "Tue, 01 Dec 2026 06:00:00 GMT", "Date": DATE}),
    ("4.2.2-heuristic", {"Last-Modified": "Sun, 01 Nov 2026 06:00:00 GMT"}),
    ("4.2.2-no-lifetime-at-all", {}),
    ("4.1-vary-accept-encoding", {"Vary": "Accept-Encoding"}),
    ("4.1-vary-accept-encoding-twice", {"Vary": "accept-encoding, ACCEPT-ENCODING"}),
    ("5.4-pragma-beside-cache-control", {"Pragma": "no-cache", "Cache-Control": "max-age=5"}),
    ("5.2.2.6-no-transform", {"Cache-Control": "no-transform, max-age=5"}),
    ("5.2.2.2-must-revalidate", {"Cache-Control": "must-revalidate, max-age=5"}),
]


@pytest.mark.parametrize("headers", [pytest.param(h, id=f"rfc9111-{i}") for i, h in STORED])
def test_what_a_shared_cache_may_keep_is_stored(headers: dict[str, str]) -> None:
    assert isinstance(verdict(headers), Storable), verdict(headers)


def test_the_cache_control_and_expires_stored_are_the_origins_byte_for_byte() -> None:
    # Given an origin's Cache-Control (odd spacing, case) and an IMF-fixdate Expires
    headers = {"Cache-Control": "Public,  MAX-AGE=60", "Expires": "Tue, 01 Dec 2026 06:00:00 GMT"}
    kept = verdict(headers)
    assert isinstance(kept, Storable)
    # Then S3 is given exactly those values (botocore writes the date back as it was)
    assert kept.attributes.cache_control == "Public,  MAX-AGE=60"
    assert kept.attributes.expires is not None
    assert kept.attributes.expires.strftime("%a, %d %b %Y %H:%M:%S GMT") == headers["Expires"]


def test_an_expires_ignored_beside_max_age_is_dropped_not_rewritten_rfc9111_5_3() -> None:
    kept = verdict({"Cache-Control": "max-age=60", "Expires": "Tuesday, 01-Dec-26 06:00:00 GMT"})
    assert isinstance(kept, Storable) and kept.attributes.expires is None
    assert [d.name for d in kept.dropped] == ["Expires"]


# ---------------------------------------------------------------- how long, how old

LIFETIMES = [
    # (id, headers, lifetime, rule)
    ("4.2.1-s-maxage-first", {"Cache-Control": "max-age=60, s-maxage=600"}, 600, "s-maxage"),
    ("4.2.1-max-age", {"Cache-Control": "max-age=60"}, 60, "max-age"),
    (
        "4.2.1-max-age-beats-expires",
        {"Cache-Control": "max-age=60", "Expires": "Tue, 01 Dec 2026 06:00:00 GMT"},
        60,
        "max-age",
    ),
    (
        "4.2.1-expires-minus-date",
        {"Expires": "Mon, 30 Nov 2026 07:00:00 GMT", "Date": "Mon, 30 Nov 2026 05:00:00 GMT"},
        7200,
        "expires",
    ),
    (
        "4.2.1-expires-minus-receipt-without-date",
        {"Expires": "Mon, 30 Nov 2026 07:00:00 GMT"},
        3600,
        "expires",
    ),
    ("5.3-invalid-expires-is-expired", {"Expires": "0"}, 0, "invalid"),
    (
        "4.2.2-heuristic-is-10-percent-of-last-modified-age",
        {"Last-Modified": "Fri, 20 Nov 2026 06:00:00 GMT", "Date": DATE},
        86_400,
        "heuristic",
    ),
    (
        "4.2.2-heuristic-small",
        {"Last-Modified": "Mon, 30 Nov 2026 05:00:00 GMT", "Date": DATE},
        360,
        "heuristic",
    ),
    (
        "4.2.2-heuristic-capped-by-revalidate-after",
        {"Last-Modified": "Sat, 01 Nov 2025 06:00:00 GMT", "Date": DATE},
        DEFAULT,
        "heuristic",
    ),
    (
        "4.2.2-last-modified-in-the-future",
        {"Last-Modified": "Tue, 01 Dec 2026 06:00:00 GMT", "Date": DATE},
        0,
        "heuristic",
    ),
    ("4.2.2-no-last-modified-default", {}, DEFAULT, "default"),
    ("4.2.2-invalid-last-modified-default", {"Last-Modified": "yesterday"}, DEFAULT, "default"),
    ("1.2.2-huge", {"Cache-Control": "max-age=" + "9" * 40}, MAX_DELTA_SECONDS, "max-age"),
]


@pytest.mark.parametrize(
    ("headers", "seconds", "rule"),
    [pytest.param(h, s, r, id=f"rfc9111-{i}") for i, h, s, r in LIFETIMES],
)
def test_freshness_lifetime_rfc9111_4_2(headers: dict[str, str], seconds: int, rule: str) -> None:
    fields = {name.lower(): value for name, value in headers.items()}
    lifetime = freshness_lifetime(fields, RECEIVED, DEFAULT)
    assert (lifetime.seconds, lifetime.rule) == (seconds, rule)


@pytest.mark.parametrize(
    ("headers", "age"),
    [
        pytest.param({}, 0, id="rfc9111-4.2.3-nothing"),
        pytest.param({"Age": "100"}, 100, id="rfc9111-4.2.3-age"),
        pytest.param({"Date": "Mon, 30 Nov 2026 05:55:00 GMT"}, 300, id="rfc9111-4.2.3-apparent"),
        pytest.param(
            {"Date": "Mon, 30 Nov 2026 05:55:00 GMT", "Age": "100"},
            300,
            id="rfc9111-4.2.3-the-larger",
        ),
        pytest.param(
            {"Date": "Mon, 30 Nov 2026 07:00:00 GMT"}, 0, id="rfc9111-4.2.3-clock-ahead-is-zero"
        ),
        pytest.param({"Age": "abc"}, 0, id="rfc9111-5.1-invalid-age-ignored"),
    ],
)
def test_current_age_rfc9111_4_2_3(headers: dict[str, str], age: int) -> None:
    fields = {name.lower(): value for name, value in headers.items()}
    assert current_age(fields, RECEIVED) == age


def test_the_response_delay_counts_toward_the_age_rfc9111_4_2_3() -> None:
    requested = RECEIVED - timedelta(seconds=4)
    assert current_age({"age": "10"}, RECEIVED, requested) == 14


@pytest.mark.parametrize(
    ("headers", "interval", "rule"),
    [
        pytest.param({"Cache-Control": "max-age=3600", "Age": "600"}, 3000, "max-age", id="age"),
        pytest.param({"Cache-Control": "max-age=1"}, FLOOR, "minimum", id="floor-max-age-1"),
        pytest.param({"Cache-Control": "s-maxage=86400"}, 86_400, "s-maxage", id="s-maxage"),
        pytest.param({}, DEFAULT, "default", id="default"),
    ],
)
def test_edgefill_revalidates_at_the_remaining_freshness_but_not_sooner_than_the_floor(
    headers: dict[str, str], interval: int, rule: str
) -> None:
    """RFC 9111 §4.2: remaining freshness = lifetime − current age; edgefill's own
    minimum interval (EDGEFILL_MIN_REVALIDATE) governs only when it revalidates."""
    fields = {name.lower(): value for name, value in headers.items()}
    freshness = freshness_of(fields, RECEIVED, DEFAULT)
    assert isinstance(freshness, Freshness)
    assert next_interval(freshness, FLOOR) == (interval, rule)


@pytest.mark.parametrize(
    "cache_control",
    [
        "max-age=60, max-age=120",
        'foo="a, max-age=0", max-age=60',
        "MAX-AGE = 60",
        "max-age=" + "9" * 400,
        "max-age=١٢",
        "max-age",
        "s-maxage=0, max-age=60",
    ],
)
def test_storability_and_lifetime_read_every_hostile_form_the_same_way(cache_control: str) -> None:
    """The one parser: a header storability keeps is one lifetime gives a positive
    lifetime to, and one it refuses as stale is one whose lifetime is 0."""
    stored = isinstance(verdict({"Cache-Control": cache_control}), Storable)
    lifetime = freshness_lifetime({"cache-control": cache_control}, RECEIVED, DEFAULT)
    assert stored is (lifetime.seconds > 0)
