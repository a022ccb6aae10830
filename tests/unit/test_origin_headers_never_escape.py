"""Every exception is classified: whatever an origin puts in its status and headers, the
copy's planning ends in a stored plan or a named refusal, never an escaped exception."""

from __future__ import annotations

import string
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from requests.structures import CaseInsensitiveDict

from backfill_worker.transfer.copy import AcceptedResponse, accept_response
from backfill_worker.transfer.errors import CopyRefused
from backfill_worker.transfer.integrity import expected_md5s
from backfill_worker.transfer.plan import CopyPlan
from backfill_worker.transfer.storable import Refusal, Storable, decide
from shared.cache_control import (
    age_value,
    current_age,
    delta_seconds,
    freshness_lifetime,
    http_date,
    parse_cache_control,
)
from shared.header_numbers import header_number
from shared.origin import declared_length
from shared.redact import redact_url
from tests.budget import examples

RECEIVED = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)
PLAN = CopyPlan(max_object_bytes=10**9, part_bytes=8 * 1024**2, parts_in_flight=2)
NAMES = [
    "Content-Length",
    "Content-Type",
    "Content-MD5",
    "Content-Encoding",
    "Content-Disposition",
    "Content-Language",
    "Content-Security-Policy",
    "Cache-Control",
    "Pragma",
    "Vary",
    "Expires",
    "Last-Modified",
    "Date",
    "Age",
    "ETag",
    "Set-Cookie2",
    "Server",
    "Location",
    "x-amz-request-id",
    "x-amz-server-side-encryption",
]
# What a header value can hold once http.client has decoded it (latin-1), plus any text:
# digits of every script, signs, dates, quotes, commas.
VALUES = st.one_of(
    st.text(),
    st.text(alphabet=st.characters(codec="latin-1")),
    st.text(alphabet=string.digits + "٠١٢٣٤٥٦٧٨٩²³¹-+, =\"'"),
    st.from_regex(r"(max-age|s-maxage|no-cache|private)(=-?[0-9٠-٩]{0,40})?", fullmatch=True),
    st.from_regex(
        r"[A-Za-z]{3}, [0-9]{1,2} [A-Za-z]{3} -?[0-9]{1,6} [0-9:]{0,9}( [+-][0-9]{4}| GMT)?",
        fullmatch=True,
    ),
    st.integers(min_value=-(10**40), max_value=10**40).map(str),
    st.text(alphabet=string.digits, min_size=4000, max_size=6000),  # int() refuses > 4300
)
HEADERS = st.dictionaries(
    st.sampled_from(NAMES) | st.text(min_size=1, max_size=20), VALUES, max_size=8
)


@settings(max_examples=examples(400), deadline=None)
@given(status=st.integers(min_value=100, max_value=599), headers=HEADERS)
def test_planning_a_copy_raises_nothing_but_a_named_refusal(
    status: int, headers: dict[str, str]
) -> None:
    try:
        accepted = accept_response(status, CaseInsensitiveDict(headers), PLAN)
    except CopyRefused as refused:
        assert refused.reason in {
            "redirect",
            "uncacheable",
            "unstorable_header",
            "bad_header",
            "origin",
            "oversize",
        }
        assert refused.detail
        return
    assert isinstance(accepted, AcceptedResponse)
    accepted.attributes.as_params()  # what S3 is handed builds too


@settings(max_examples=examples(400), deadline=None)
@given(headers=HEADERS)
def test_each_decision_returns_a_verdict(headers: dict[str, str]) -> None:
    fields = CaseInsensitiveDict(headers)
    assert isinstance(decide(200, fields), Storable | Refusal)
    assert isinstance(decide(200, fields, RECEIVED), Storable | Refusal)
    lowered = {name.lower(): value for name, value in headers.items()}
    assert freshness_lifetime(lowered, RECEIVED, 86_400).seconds >= 0
    assert current_age(lowered, RECEIVED) >= 0
    assert isinstance(decide(302, fields), Refusal)
    assert isinstance(expected_md5s(fields), tuple | Refusal)


@given(VALUES)
def test_value_parsers_never_raise_anything_unnamed(value: str) -> None:
    http_date(value)
    delta_seconds(value)
    age_value(value)
    control = parse_cache_control(value)
    for name in ("max-age", "s-maxage", "stale-if-error"):
        control.seconds(name)
        control.problem(name)
    redact_url(value, keep_query_names=False)
    try:
        declared_length(value)
    except ValueError as error:
        assert "Content-Length" in str(error)


@pytest.mark.parametrize(
    "value", ["²", "¹²³", "١٢٣", "1_000", "+5", "-5", " ", "", "0x10", "1" * 31, "5\n"]
)
def test_a_header_number_is_ascii_digits_or_none(value: str) -> None:
    # int() takes '١٢٣', '1_000' and '+5'; '²'.isdigit() is true and int('²') raises
    assert header_number(value) is None


def test_a_header_number_may_have_field_whitespace() -> None:
    assert header_number(" 1234\t") == 1234
    assert header_number("0") == 0
    assert header_number(None) is None
