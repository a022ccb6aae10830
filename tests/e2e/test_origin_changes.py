"""The demo's "the origin changes" scene through the lab: refresh, replace, invalidate,
warm after the invalidation, check, serve; the unchanged page is left alone."""

from __future__ import annotations

import io
import json
import uuid

import pytest
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


def test_check_names_stale_edges_until_an_invalidation_clears_them(
    lab: Lab, capsys: pytest.CaptureFixture[str]
) -> None:
    assert lab.aws is not None and lab.invalidations is not None
    path = f"/e2e/{uuid.uuid4().hex[:8]}/page.html"
    s3 = lab.aws.client("s3")
    # Given a page copied into the bucket and warm at every POP
    lab.origin.put(path, b"<p>v1</p>" * 50, content_type="text/html")
    lab.viewer_get("NRT20-P2", path)
    lab.wait_idle(timeout=30)
    # And a newer copy in the bucket that no invalidation announced
    s3.put_object(
        Bucket=lab.settings.bucket,
        Key=path[1:],
        Body=b"<p>v2</p>" * 50,
        ContentType="text/html",
        Metadata={"origin-etag": '"v2"', "fetched-at": "2026-11-30T06:00:00Z"},
    )
    regions = sorted({pop.site.region for pop in lab.pops.values()})
    check = ["check", path, "--targets", ",".join(regions), "--encodings", "gzip,identity"]
    check += ["--bucket", lab.settings.bucket, "--endpoint-url", lab.aws.endpoint_url, "--json"]
    capsys.readouterr()
    # When the operator checks / Then every edge is named stale, on the old version
    assert edgefill(check) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["consistent"] is False
    (entry,) = report["paths"]
    assert entry["verdict"] == "stale" and entry["reference"] == '"v2"'
    assert len(entry["edges"]) == len(regions) * 2 == len(entry["differing"])
    assert {edge["pop"] for edge in entry["edges"]} == set(lab.pops)
    # When the path is invalidated and the operator waits for it
    invalidate = ["invalidate", path, "--distribution-id", lab.distribution_id, "--wait"]
    assert edgefill([*invalidate, "--endpoint-url", lab.invalidations.url]) == 0
    assert "Completed" in capsys.readouterr().out
    # Then the edges fetch the bucket's copy: consistent
    assert edgefill(check) == 0
    assert json.loads(capsys.readouterr().out)["consistent"] is True
