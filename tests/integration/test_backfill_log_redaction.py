"""The backfill worker against moto and the lab origin: what it logs about a viewer's
signed URL keeps the query's parameter names and none of its values."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from edgefill.lab.origin import LabOrigin
from tests.integration.backfill_world import (
    make_backfiller,
    message,
)

SIGNED_QUERY = (
    "Expires=1767225600&Signature=SIGsecretVALUE~abc&Key-Pair-Id=K2JCJMDEHXQW5F"
    "&Policy=eyJTdGF0ZW1lbnQiOlt9"
)
SECRETS = ("1767225600", "SIGsecretVALUE", "K2JCJMDEHXQW5F", "eyJTdGF0ZW1lbnQ", "hunter2")


def logged_text(caplog: pytest.LogCaptureFixture) -> str:
    """Every record's message and extra fields, as the handlers receive them."""
    standard = set(vars(logging.LogRecord("", 0, "", 0, "", (), None)))
    return "\n".join(
        record.getMessage() + repr({k: v for k, v in vars(record).items() if k not in standard})
        for record in caplog.records
    )


def test_a_query_skipped_in_forward_mode_is_logged_by_names(
    bucket: Any, origin: LabOrigin, caplog: pytest.LogCaptureFixture
) -> None:
    origin.put("/a.jpg", b"jpeg")
    worker = make_backfiller(bucket, origin, EDGEFILL_QUERY="forward")
    with caplog.at_level(logging.INFO):
        outcome = worker.backfill(message("/a.jpg", query=SIGNED_QUERY))
    assert outcome.reason == "query"
    text = logged_text(caplog)
    assert "Expires" in text and "Key-Pair-Id" in text
    assert not [secret for secret in SECRETS if secret in text]


def test_a_refused_redirect_to_a_signed_url_is_logged_without_its_values(
    bucket: Any, origin: LabOrigin, caplog: pytest.LogCaptureFixture
) -> None:
    # Given an origin redirecting to another host with credentials and a signed query
    origin.put("/a.jpg", b"jpeg")
    origin.fault("/a.jpg", redirect=f"https://admin:hunter2@elsewhere.example/a.jpg?{SIGNED_QUERY}")
    worker = make_backfiller(bucket, origin)
    # When the worker is refused the redirect
    with caplog.at_level(logging.INFO):
        outcome = worker.backfill(message("/a.jpg"))
    # Then the skip is logged with the URL's names only
    assert outcome.status == "skipped"
    text = logged_text(caplog)
    assert "elsewhere.example" in text
    assert not [secret for secret in SECRETS if secret in text]
