"""One lab for the end-to-end tests: moto, the full origin, four POPs, DNS, the pollers
and the real handlers, started once for the package and stopped after it."""

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


# tryfirst: xdist's own hook turns the xdist_group mark into the nodeid's @group suffix; it
# must see the mark this hook adds, or every worker would take part of the group.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test here is slow (it goes through the whole lab), and they all run on one
    xdist worker (make test runs --dist loadgroup): one lab for the package, not one per
    worker."""
    here = Path(__file__).parent
    for item in items:
        if item.path.is_relative_to(here):
            item.add_marker(pytest.mark.slow)
            item.add_marker(pytest.mark.xdist_group("lab"))
