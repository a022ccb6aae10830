"""A lab for the end-to-end tests: moto, the full origin, four POPs, DNS, the pollers and
the real handlers, started once for the package on each xdist worker that runs them (one
per group of LAB_GROUPS) and stopped after it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgefill.lab.lab import Lab, LabSettings


@pytest.fixture(scope="package")
def lab() -> Iterator[Lab]:
    # The lab runs the real backfill worker; a checkout without it has nothing to drive.
    pytest.importorskip("backfill_worker.app", reason="backfill_worker.app is not in this checkout")
    before = _environment()
    running = Lab(LabSettings()).start()
    yield running
    running.stop()
    assert running.leftovers() == []
    assert _environment() == before, "the lab did not restore the environment"


def _environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}


@pytest.fixture(autouse=True)
def lab_environment(lab: Lab, fake_aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """The root conftest clears AWS endpoints for every test; inside the lab the handlers
    must keep seeing the lab's (as a Lambda container keeps its configuration)."""
    for name, value in lab.env.items():
        monkeypatch.setenv(name, value)


# The e2e modules in two groups, each with a lab of its own on its worker: one lab for all
# of them put about 125 s of the suite on one worker, longer than any other worker's whole
# share, and a second lab costs about 8 s. Balanced by their time (docs/BENCHMARKS.md, "The
# test suite's time"). test_regions.py runs in a regions lab of its own and needs neither.
LAB_GROUPS: dict[str, str] = {
    "test_readme_operate": "lab",
    "test_pipeline": "lab",
    "test_takedown": "lab",
    "test_doctor_canary": "lab",
    "test_refusals": "lab",
    "test_one_lab": "lab",
    "test_premiere": "lab-b",
    "test_cli_against_lab": "lab-b",
    "test_origin_changes": "lab-b",
    "test_cli_interrupts": "lab-b",
    "test_cli_expand": "lab-b",
    "test_regions": "regions-lab",
}


# tryfirst: xdist's own hook turns the xdist_group mark into the nodeid's @group suffix; it
# must see the mark this hook adds, or every worker would take part of the group.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test here is slow (it goes through the whole lab), and the tests of a group
    all run on one xdist worker (make test runs --dist loadgroup): one lab for the group,
    not one per worker. A module missing from LAB_GROUPS joins the first group."""
    here = Path(__file__).parent
    for item in items:
        if item.path.is_relative_to(here):
            item.add_marker(pytest.mark.slow)
            item.add_marker(pytest.mark.xdist_group(LAB_GROUPS.get(item.path.stem, "lab")))
