"""The end-to-end tests share a lab per group: make test runs each group on one xdist
worker (tests/e2e/conftest.py, LAB_GROUPS)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.conftest import LAB_GROUPS


def test_the_e2e_tests_run_on_the_worker_of_their_lab(request: pytest.FixtureRequest) -> None:
    # Given make test's --dist loadgroup (each xdist worker sees it as option.loadgroup)
    grouping = bool(getattr(request.config.option, "loadgroup", False))
    # Then this test carries its lab's group, as every test of tests/e2e does. A pytest or
    # pytest-xdist upgrade that stops the grouping (pytest 9.2 with xdist 3.8 did) would
    # otherwise pass unseen while every worker starts a lab of its own.
    assert request.node.nodeid.endswith("@lab") == grouping, request.node.nodeid


def test_every_e2e_module_is_in_a_lab_group() -> None:
    # Given the e2e modules on disk / Then each is named in LAB_GROUPS (a new module would
    # otherwise join the first group unseen, and its time with it)
    modules = {path.stem for path in Path(__file__).parent.glob("test_*.py")}
    assert modules == set(LAB_GROUPS)
