"""The demo's regions scene through the regions lab (issue 20, point 7): viewers in two
regions; each bucket ends with exactly its region's objects, the object asked in both is
copied into both (each copy fetched from the full origin once, by its region's worker) and
warmed at its own region's edges only."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from rich.console import Console

from edgefill.cli import main as edgefill
from edgefill.demo import Demo
from edgefill.lab.lab import LabError
from edgefill.lab.regions import RegionsLab
from edgefill.scenes.regions import regions


@pytest.fixture(scope="module")
def regions_lab() -> Iterator[RegionsLab]:
    pytest.importorskip("backfill_worker.app", reason="backfill_worker.app is not in this checkout")
    lab = RegionsLab().start()
    yield lab
    lab.stop()
    assert lab.leftovers() == []


@pytest.fixture(autouse=True)
def lab_environment(
    regions_lab: RegionsLab, fake_aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """This module runs in the regions lab, not the package's single-region one: the
    origin-request function in this process keeps seeing the regions lab's moto."""
    for name, value in regions_lab.env.items():
        monkeypatch.setenv(name, value)


def test_each_bucket_ends_with_exactly_its_own_regions_objects(regions_lab: RegionsLab) -> None:
    narration = io.StringIO()
    demo = Demo(Console(file=narration, width=120), edgefill)
    # When the scene runs
    regions(demo, regions_lab)
    # Then every expectation held
    failed = [f"{c.expectation}: {c.detail}" for c in demo.checks.failed]
    assert failed == [], narration.getvalue()
    assert len(demo.checks.items) >= 14
    # and, read back here too: one worker fetch per region for the shared object
    shared = "/regions/poster 東京.jpg"
    assert {r: regions_lab.region(r).copies(shared) for r in regions_lab.regions} == {
        "ap-southeast-1": 1,
        "eu-central-1": 1,
    }
    assert regions_lab.bucket_keys("ap-southeast-1") == {
        "regions/poster 東京.jpg",
        "regions/sg-launch.js",
    }
    assert regions_lab.bucket_keys("eu-central-1") == {
        "regions/poster 東京.jpg",
        "regions/de-launch.css",
    }


def test_a_regions_dead_worker_process_is_named_not_waited_for(regions_lab: RegionsLab) -> None:
    # (runs last in this module: it kills eu-central-1's workers)
    workers = regions_lab.region("eu-central-1").workers
    assert workers is not None and workers.running
    assert workers._child is not None
    workers._child.kill()
    workers._child.wait()
    with pytest.raises(LabError, match="eu-central-1 workers"):
        regions_lab.wait_idle(timeout=10)
