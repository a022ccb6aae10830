"""Scheduling for the unit tests under xdist (make test runs --dist loadgroup)."""

from __future__ import annotations

import pytest


# tryfirst: xdist's own hook turns the xdist_group mark into the nodeid's @group suffix; it
# must see the mark this hook adds, or every worker would take part of the group.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The template tests (test_template*.py) share one worker: each of their modules
    parses and translates template.yaml, with cfn-lint and the SAM translator, which take
    1.5 s to import; on one worker they are imported once."""
    for item in items:
        if item.path.name.startswith("test_template") and item.path.parent.name == "unit":
            item.add_marker(pytest.mark.xdist_group("template"))
