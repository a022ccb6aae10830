"""The end-to-end tests share one lab: make test runs them on one xdist worker."""

from __future__ import annotations

import pytest


def test_the_e2e_tests_run_on_the_worker_of_the_one_lab(request: pytest.FixtureRequest) -> None:
    # Given make test's --dist loadgroup (each xdist worker sees it as option.loadgroup)
    grouping = bool(getattr(request.config.option, "loadgroup", False))
    # Then this test carries the lab's group, as every test of tests/e2e does. A pytest or
    # pytest-xdist upgrade that stops the grouping (pytest 9.2 with xdist 3.8 did) would
    # otherwise pass unseen while every worker starts a lab of its own.
    assert request.node.nodeid.endswith("@lab") == grouping, request.node.nodeid
