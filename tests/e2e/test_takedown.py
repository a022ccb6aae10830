"""The demo's takedown scene through the lab: the origin withdraws two pages (a 403, a
page now private); with the sweep running, within their lifetime plus one sweep interval
they are gone from the bucket, invalidated, every POP fails over to the origin, and
``edgefill check`` finds no edge serving the old version (issue 18)."""

from __future__ import annotations

import io

from rich.console import Console

from edgefill.cli import main as edgefill
from edgefill.demo import Demo
from edgefill.lab.lab import Lab
from edgefill.scenes.takedown import takedown


def test_a_takedown_at_the_origin_reaches_every_edge(lab: Lab) -> None:
    narration = io.StringIO()
    demo = Demo(Console(file=narration, width=120), edgefill)
    demo.lab = lab  # the scene runs in the package's lab, as in make demo
    # When the scene runs
    takedown(demo)
    # Then every expectation held, and the sweep it started is stopped
    failed = [f"{c.expectation}: {c.detail}" for c in demo.checks.failed]
    assert failed == [], narration.getvalue()
    assert len(demo.checks.items) >= 6
    assert lab.sweep is None
