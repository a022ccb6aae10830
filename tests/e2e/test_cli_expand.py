"""edgefill prewarm --expand and edgefill warm --expand against the lab."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from edgefill.cli import main as edgefill
from edgefill.lab import vod
from edgefill.lab.lab import Lab
from tests.e2e.test_cli_against_lab import printed_json, warm_flags


def test_prewarm_expand_puts_expand_in_every_message(capsys: pytest.CaptureFixture[str]) -> None:
    code = edgefill(["prewarm", "/v/master.m3u8", "/v/b.mpd", "--expand", "--dry-run"])
    assert code == 0
    bodies = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "{" in line]
    assert bodies and all(body["expand"] is True for body in bodies)


def test_prewarm_without_expand_sends_none(capsys: pytest.CaptureFixture[str]) -> None:
    assert edgefill(["prewarm", "/v/master.m3u8", "--dry-run"]) == 0
    assert '"expand"' not in capsys.readouterr().out


def test_warm_expand_warms_the_tree_here_and_reports_it(
    lab: Lab, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a copy of the title under a fresh prefix, on the full origin only
    prefix = f"/cli-{uuid.uuid4().hex[:8]}"
    title = vod.seed(lab.origin)
    for obj in title.objects:  # relative URIs: the copied tree references itself
        lab.origin.put(prefix + obj.path, lab.origin.read(obj.path), content_type=obj.content_type)
    master = prefix + title.master
    # When the operator warms the master with --expand from this machine
    code = edgefill(
        [
            "warm",
            master,
            "--targets",
            "sa-east-1",
            "--encodings",
            "gzip",
            "--expand",
            "--json",
            *warm_flags(lab),
        ]
    )
    report: dict[str, Any] = printed_json(capsys.readouterr().out)
    # Then the whole tree was warmed at that target
    assert code == 0, report
    assert report["tasks"] == len(title.hls_tree()) and report["failed"] == 0
    manifests = report["expansion"]["manifests"]
    assert manifests[master]["playlists"] == 3
    assert manifests[f"{prefix}/premiere/360p/index.m3u8"]["segments"] == vod.SEGMENTS
    lab.wait_idle()
