"""Logs keep query parameter names, never their values, nor a URL's userinfo: a viewer's
signed URL must never land in CloudWatch (shared/redact.py, the edge's log lines, the
workers' Powertools loggers)."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_origin_request import app
from edge_origin_request.backfill_queue import SendFailed
from edge_origin_request.failover import FailoverReporter, cloudfront_request, handle_origin_request
from edge_origin_request.recently_queued import RecentlyQueued
from shared.observability import worker_logger
from shared.redact import query_names, redact_query, redact_text, redact_uri, redact_url
from tests.budget import examples
from tests.sample_events import load_event

# A CloudFront signed URL's query (canned policy and custom policy parameters together).
SIGNED_QUERY = (
    "Expires=1767225600&Signature=SIGsecretVALUE~abc-def__&Key-Pair-Id=K2JCJMDEHXQW5F"
    "&Policy=eyJTdGF0ZW1lbnQiOlt7IlJlc291cmNlIjoiUE9MSUNZc2VjcmV0In1dfQ__"
)
SECRETS = ("1767225600", "SIGsecretVALUE", "K2JCJMDEHXQW5F", "eyJTdGF0ZW1lbnQ")
NAMES = ("Expires", "Signature", "Key-Pair-Id", "Policy")


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{secret} leaked into {text[:300]}"


# ---------------------------------------------------------------- shared/redact.py


def test_query_names_and_redacted_query_keep_names_only() -> None:
    assert query_names(SIGNED_QUERY) == list(NAMES)
    assert redact_query(SIGNED_QUERY) == "Expires=*&Signature=*&Key-Pair-Id=*&Policy=*"
    assert redact_query("a=1&flag&b=") == "a=*&flag&b=*"
    assert redact_query("") == ""


def test_a_uri_keeps_its_path_and_loses_query_values_and_fragment() -> None:
    assert redact_uri("/img/a%20b.jpg") == "/img/a%20b.jpg"
    assert redact_uri("/a.jpg?" + SIGNED_QUERY + "#frag") == (
        "/a.jpg?Expires=*&Signature=*&Key-Pair-Id=*&Policy=*"
    )


@pytest.mark.parametrize(
    ("url", "names_kept", "no_query"),
    [
        (
            "https://user:pw@origin.example.com:8443/a.jpg?" + SIGNED_QUERY + "#f",
            "https://origin.example.com:8443/a.jpg?Expires=*&Signature=*&Key-Pair-Id=*&Policy=*",
            "https://origin.example.com:8443/a.jpg?",
        ),
        ("https://origin.example.com/a", "https://origin.example.com/a", None),
        ("//evil.example/x?token=abc", "//evil.example/x?token=*", "//evil.example/x?"),
        ("/relative?sig=abc", "/relative?sig=*", "/relative?"),
        ("http://u:p@[broken/a?sig=abc", "http://[broken/a?sig=*", "http://[broken/a?"),
    ],
)
def test_a_url_for_a_log_line_has_no_userinfo_and_no_query_values(
    url: str, names_kept: str, no_query: str | None
) -> None:
    assert redact_url(url) == names_kept
    assert redact_url(url, keep_query_names=False) == (no_query or names_kept)


def test_free_text_loses_query_values_and_userinfo_wherever_they_are() -> None:
    # Given an exception message the way requests writes it, and a refused redirect
    text = (
        "GET failed: ConnectionError: HTTPSConnectionPool(host='o', port=443): Max retries "
        f"exceeded with url: /a.jpg?{SIGNED_QUERY} (Caused by NewConnectionError(...)); "
        "redirect to https://admin:hunter2@evil.example/x?token=t0k3n refused"
    )
    redacted = redact_text(text)
    assert_no_secret(redacted)
    assert "hunter2" not in redacted and "t0k3n" not in redacted
    assert "url: /a.jpg?Expires=*&Signature=*&Key-Pair-Id=*&Policy=* (Caused by" in redacted
    assert "https://evil.example/x?token=*" in redacted
    # Text without a query is left alone
    assert redact_text("EDGEFILL_MAX_ATTEMPTS=3; why? because") == (
        "EDGEFILL_MAX_ATTEMPTS=3; why? because"
    )


_NAME = st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_.", min_size=1, max_size=12)
_VALUE = st.text("0123456789%+/~!$'()*,;:@", min_size=1, max_size=20).map(lambda v: "Z9" + v)


@settings(max_examples=examples(500), deadline=None)
@given(st.lists(st.tuples(_NAME, _VALUE), min_size=1, max_size=30), st.booleans())
def test_no_value_ever_survives_redaction(pairs: list[tuple[str, str]], with_url: bool) -> None:
    # Given a query whose every value carries a marker no name has ("Z9")
    query = "&".join(f"{name}={value}" for name, value in pairs)
    text = f"https://u:Z9pw@o.example/p?{query}" if with_url else f"/p?{query}"
    # Then no redaction leaves a value behind, and the names (up to MAX_NAMES) stay
    for redacted in (redact_query(query), redact_uri(text), redact_url(text), redact_text(text)):
        assert "Z9" not in redacted
    assert redact_query(query).startswith(pairs[0][0])


# ---------------------------------------------------------------- the edge's log lines


def lines(capsys: pytest.CaptureFixture[str]) -> tuple[str, list[dict[str, Any]]]:
    out = capsys.readouterr().out
    return out, [json.loads(line) for line in out.splitlines() if line]


class Sender:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail

    def send(self, queue_url: str, body: str) -> str:
        if self.fail:
            raise SendFailed("sqs", f"InvalidParameterValue: body {body}")
        return "id-1"


def failover(query: str, uri: str = "/img/a.jpg", fail: bool = False) -> None:
    event = load_event("edge_failover_get")
    request = event["Records"][0]["cf"]["request"]
    request["querystring"], request["uri"] = query, uri
    handle_origin_request(event, request, FailoverReporter(Sender(fail), RecentlyQueued()))


def test_a_queued_signed_url_is_logged_with_its_names_only(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given a failover whose viewer used a CloudFront signed URL
    failover(SIGNED_QUERY)
    # Then the queued line names the parameters and holds none of their values
    out, [line] = lines(capsys)
    assert_no_secret(out)
    assert line["event"] == "backfill-queued"
    assert line["query"] == "Expires=*&Signature=*&Key-Pair-Id=*&Policy=*"


def test_a_failed_send_quoting_the_body_leaks_no_value(capsys: pytest.CaptureFixture[str]) -> None:
    failover(SIGNED_QUERY, fail=True)
    out, [line] = lines(capsys)
    assert line["level"] == "ERROR"
    assert_no_secret(out)


def test_a_skipped_uri_with_a_signed_query_leaks_no_value(
    capsys: pytest.CaptureFixture[str],
) -> None:
    failover(SIGNED_QUERY, uri="/img/a+b.jpg")
    out, [line] = lines(capsys)
    assert line["event"] == "backfill-skipped"
    assert_no_secret(out)


def test_an_unexpected_error_quoting_a_url_leaks_no_value(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(*args: Any) -> None:
        raise RuntimeError(f"bug while reading https://cdn.example.com/a.jpg?{SIGNED_QUERY}")

    monkeypatch.setattr(app, "handle_origin_request", explode)
    event = load_event("edge_failover_get")
    assert app.handler(event, None) == cloudfront_request(load_event("edge_failover_get"))
    out, [line] = lines(capsys)
    assert line["problem"] == "unexpected"
    assert_no_secret(out)
    assert "Signature=*" in line["reason"]


# ---------------------------------------------------------------- the workers' loggers


@pytest.mark.parametrize("service", ["backfill", "prewarm"])
def test_worker_log_records_lose_query_values_in_message_and_fields(
    service: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a worker logger and a record carrying a signed URL in every kind of field
    logger = worker_logger(service)
    worker_logger(service)  # built twice (app.py and the factory): one filter, not two
    assert len(logging.getLogger(logger.name).filters) == 1
    url = f"https://user:pw@cdn.example.com/a.jpg?{SIGNED_QUERY}"
    with caplog.at_level(logging.INFO, logger=logger.name):
        logger.warning(
            f"refused {url}",
            extra={"detail": url, "failures": [f"/a.jpg?{SIGNED_QUERY} at us-east-1"],
                   "nested": {"paths": [url]}, "bytes": 12},
        )  # fmt: skip
    # Then what reaches the handlers holds names and no value, and other fields are intact
    [record] = caplog.records
    rendered = record.getMessage() + json.dumps(
        {k: v for k, v in vars(record).items() if k in ("detail", "failures", "nested")}
    )
    assert_no_secret(rendered)
    assert "pw@" not in rendered
    assert "Signature=*" in rendered
    assert record.bytes == 12  # type: ignore[attr-defined]
