"""The demo's "the origin changes" scene through the lab: refresh, replace, invalidate,
warm after the invalidation, check, serve; the unchanged page is left alone."""

from __future__ import annotations

import io

from rich.console import Console

from edgefill.cli import main as edgefill
from edgefill.demo import Demo
from edgefill.lab.lab import Lab
from edgefill.scenes.origin_changes import origin_changes


def test_the_copy_the_edges_and_a_check_follow_the_origin(lab: Lab) -> None:
    narration = io.StringIO()
    demo = Demo(Console(file=narration, width=120), edgefill)
    demo.lab = lab  # the scene runs in the package's lab, as in make demo
    # When the scene runs (the origin changes one page, the operator refreshes both)
    origin_changes(demo)
    # Then every expectation held: bucket, invalidation, warm after, check, Hits, control
    failed = [f"{c.expectation}: {c.detail}" for c in demo.checks.failed]
    assert failed == [], narration.getvalue()
    assert len(demo.checks.items) >= 8
