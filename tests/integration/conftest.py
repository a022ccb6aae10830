"""Fixtures shared by the integration tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from edgefill.lab.origin import LabOrigin
from tests.integration.backfill_world import BUCKET, assert_nothing_left_behind


@pytest.fixture
def origin() -> Iterator[LabOrigin]:
    """A fresh lab full origin on a free loopback port, stopped after the test."""
    with LabOrigin() as server:
        yield server


@pytest.fixture
def bucket(s3: Any) -> Iterator[Any]:
    """The backfill bucket on moto (its S3 client); checked for leftovers after the test."""
    s3.create_bucket(Bucket=BUCKET)
    yield s3
    assert_nothing_left_behind(s3)
