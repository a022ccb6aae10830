"""The demo's "premiere" scene through the lab: one prewarm --expand brings a whole title."""

from __future__ import annotations

import io

from rich.console import Console

from edgefill.cli import main as edgefill
from edgefill.demo import Demo
from edgefill.lab import vod
from edgefill.lab.lab import Lab
from edgefill.scenes.premiere import premiere


def test_one_prewarm_expand_of_the_master_makes_the_whole_playback_hits(lab: Lab) -> None:
    # Given the VOD title on the full origin only
    vod.seed(lab.origin)
    narration = io.StringIO()
    demo = Demo(Console(file=narration, width=120), edgefill)
    demo.lab = lab  # the scene runs in the package's lab, as in make demo
    # When the premiere scene runs (prewarm --expand, then a viewer's playback)
    premiere(demo)
    # Then every expectation held: bucket, POPs, no key, all Hits
    failed = [f"{c.expectation}: {c.detail}" for c in demo.checks.failed]
    assert failed == [], narration.getvalue()
    assert len(demo.checks.items) >= 5
