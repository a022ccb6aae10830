"""The edgefill CLI against the lab: status, prewarm, backfill and warm, bad input too."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest

from edgefill.cli import main as edgefill
from edgefill.lab.lab import Lab
from edgefill.lab.origin import LabOrigin
from tests.json_keys import snake_case_keys


def queue_flags(lab: Lab) -> list[str]:
    assert lab.aws is not None
    q = lab.aws.queue
    return [
        "--endpoint-url",
        lab.aws.endpoint_url,
        "--backfill-queue-url",
        q("BackfillQueue").url,
        "--prewarm-queue-url",
        q("PrewarmQueue").url,
        "--backfill-dlq-url",
        q("BackfillDLQ").url,
        "--prewarm-dlq-url",
        q("PrewarmDLQ").url,
    ]


def printed_json(out: str) -> Any:
    """The indented JSON document the command printed last (the handlers running in the
    lab log their own one-line JSON on stdout too, as in Lambda)."""
    lines = out.splitlines()
    start = max(index for index, line in enumerate(lines) if line in ("{", "["))
    return json.loads("\n".join(lines[start:]))


def warm_flags(lab: Lab) -> list[str]:
    assert lab.dns is not None
    return [
        "--distribution-domain",
        lab.settings.distribution_domain,
        "--viewer-host",
        lab.settings.viewer_host,
        "--resolver",
        lab.dns.resolver,
        "--edge-port",
        str(lab.edge_port),
        "--region-subnets",
        json.dumps(dict(lab.settings.subnets)),
        "--allow-private-edges",
    ]


def test_status_lists_every_queue(lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    assert edgefill(["status", "--json", *queue_flags(lab)]) == 0
    roles = {row["role"] for row in printed_json(capsys.readouterr().out)}
    assert roles == {"backfill", "backfill-dlq", "prewarm", "prewarm-dlq"}


def test_manual_prewarm_warms_the_named_pop(lab: Lab) -> None:
    # Given a page in the bucket's absence, at the full origin only
    path = f"/cli/{uuid.uuid4().hex[:8]}/launch.html"
    lab.origin.put(path, b"<h1>launch</h1>" * 100, content_type="text/html")
    # When the operator prewarms it at one POP for gzip
    code = edgefill(
        [
            "prewarm",
            LabOrigin.uri(path),
            "--targets",
            "GRU3-P1",
            "--encodings",
            "gzip",
            *queue_flags(lab),
        ]
    )
    # Then that POP holds it
    assert code == 0
    deadline = time.monotonic() + 30
    pop = lab.pop("GRU3-P1")
    while not pop.cached(lab.settings.viewer_host, LabOrigin.uri(path), "gzip"):
        assert time.monotonic() < deadline, "prewarm did not reach the POP"
        time.sleep(0.1)
    lab.wait_idle()


def test_manual_backfill_copies_into_the_bucket(lab: Lab) -> None:
    path = f"/cli/{uuid.uuid4().hex[:8]}/menu café.pdf"
    lab.origin.put(path, b"%PDF" * 1000, content_type="application/pdf")
    assert edgefill(["backfill", path, *queue_flags(lab)]) == 0  # typed as a person reads it
    lab.wait_idle()
    assert lab.aws is not None
    body = lab.aws.client("s3").get_object(Bucket=lab.settings.bucket, Key=path[1:])["Body"].read()
    assert body == lab.origin.read(path)


@pytest.mark.parametrize("http", ["h2", "http/1.1"])
def test_warm_reports_per_target_and_json(
    lab: Lab, capsys: pytest.CaptureFixture[str], http: str
) -> None:
    # Given an object at the full origin (warmed over HTTP/2, or with HTTP/1.1 forced)
    forced = ["--http1.1"] if http == "http/1.1" else []
    path = f"/cli/{uuid.uuid4().hex[:8]}/warm.js"
    lab.origin.put(path, b"let x = 1;\n" * 500, content_type="text/javascript")
    # When the operator warms it from this machine at a region and a POP
    code = edgefill(
        [
            "warm",
            LabOrigin.uri(path),
            "--targets",
            "eu-central-1,NRT20-P2",
            "--encodings",
            "br,identity",
            "--json",
            *warm_flags(lab),
            *forced,
        ]
    )
    report: dict[str, Any] = printed_json(capsys.readouterr().out)
    # Then every task succeeded, each target resolved to its POP's address, over ``http``
    assert code == 0
    assert snake_case_keys(report) == [] and report["interrupted"] is False
    assert report["protocols"] == {http: 4}
    assert report["targets"]["NRT20-P2"]["protocols"] == {http: 2}
    assert report["targets"]["NRT20-P2"]["pop"] == "NRT20-P2"
    assert report["tasks"] == 4 and report["ok"] == 4 and report["failed"] == 0
    assert report["targets"]["eu-central-1"]["edge"] == lab.pop("FRA56-P1").site.address
    assert report["targets"]["NRT20-P2"]["edge"] == lab.pop("NRT20-P2").site.address
    # (the POP stores its copy just after the last byte: wait for it rather than race it)
    deadline = time.monotonic() + 10
    while not lab.pop("FRA56-P1").cached(lab.settings.viewer_host, LabOrigin.uri(path), "br"):
        assert time.monotonic() < deadline, "FRA56-P1 never cached the warmed br variant"
        time.sleep(0.02)
    lab.wait_idle()
    # And the table form names each target and its POP, and ends with the grid
    assert (
        edgefill(
            ["warm", LabOrigin.uri(path), "--targets", "eu-central-1", *warm_flags(lab), *forced]
        )
        == 0
    )
    table = capsys.readouterr().out
    assert "eu-central-1" in table and "FRA56-P1" in table
    # (hits or misses: the prewarm worker may have warmed the other encodings meanwhile)
    assert "warm: 1 path" in table and "br+gzip" in table and "hit" in table


def test_warm_exits_non_zero_when_a_task_fails(
    lab: Lab, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a path the origin answers 404 for
    code = edgefill(
        [
            "warm",
            "/cli/missing-everywhere.bin",
            "--targets",
            "sa-east-1",
            "--encodings",
            "identity",
            "--json",
            *warm_flags(lab),
        ]
    )
    report = printed_json(capsys.readouterr().out)
    assert code == 1 and report["failed"] == 1
    assert report["failures"][0]["status"] == 404
    lab.wait_idle()


def test_warm_bad_input_is_named(lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    assert edgefill(["warm", "/a", "--targets", "not a target", *warm_flags(lab)]) == 2
    assert "targets" in capsys.readouterr().err
    assert (
        edgefill(["warm", "/a", "--targets", "us-east-1", *warm_flags(lab), "--edge-port", "70000"])
        == 2
    )
    assert "--edge-port" in capsys.readouterr().err
    assert edgefill(["warm", "no-slash", "--targets", "us-east-1", *warm_flags(lab)]) == 2
    assert "must start with '/'" in capsys.readouterr().err
