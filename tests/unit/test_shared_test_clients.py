"""The suite's s3 and sqs fixtures lend one client per worker (tests/conftest.py); a test
that leaves an event handler on it would change every later test of the worker, so the
fixture fails that test instead."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import _lent, event_handlers

CLOSED = "http://127.0.0.1:9"  # never contacted: building a client sends nothing


def test_a_handler_left_on_a_lent_client_fails_the_test_that_left_it() -> None:
    # Given a lent client and a handler registered on it
    lending = _lent("s3", CLOSED)
    client = next(lending)

    def inspect(**_: Any) -> None:
        return None

    client.meta.events.register("before-send.s3.PutObject", inspect)
    try:
        # When the test ends with the handler still there, Then the fixture names it
        with pytest.raises(AssertionError, match=r"left event handlers on the shared s3"):
            next(lending)
    finally:
        client.meta.events.unregister("before-send.s3.PutObject", inspect)


def test_a_test_that_unregisters_its_handler_passes_and_gets_the_same_client() -> None:
    lending = _lent("sqs", CLOSED)
    client = next(lending)
    before = event_handlers(client)

    def inspect(**_: Any) -> None:
        return None

    client.meta.events.register("before-send.sqs.SendMessage", inspect)
    assert len(event_handlers(client)) == len(before) + 1
    client.meta.events.unregister("before-send.sqs.SendMessage", inspect)
    with pytest.raises(StopIteration):
        next(lending)
    assert next(_lent("sqs", CLOSED)) is client
