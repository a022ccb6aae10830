"""Fixtures shared by the integration tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from edgefill.lab.origin import LabOrigin


@pytest.fixture
def origin() -> Iterator[LabOrigin]:
    """A fresh lab full origin on a free loopback port, stopped after the test."""
    with LabOrigin() as server:
        yield server
