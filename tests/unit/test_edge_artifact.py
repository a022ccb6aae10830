"""The edge artifact (Makefile: edge_origin_request/*.py + EDGE_SHARED) works on its own
and pulls in nothing heavy: no requests, Powertools, pydantic, boto3, shared.aws/config."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = ("requests", "aws_lambda_powertools", "pydantic", "boto3", "shared.aws",
             "shared.config", "shared.observability", "dns")  # fmt: skip

PROBE = """
import json, sys
sys.path.insert(0, sys.argv[1])
from edge_origin_request import app
event = json.load(open(sys.argv[2]))
request = app.handler(event, None)
print(json.dumps({
    "modules": sorted(sys.modules),
    "files": {m: getattr(sys.modules[m], "__file__", None) or ""
              for m in sys.modules if m.split(".")[0] in ("shared", "edge_origin_request")},
    "returned": request,
}))
"""


def build_edge_artifact(target: Path) -> None:
    """Copy what the Makefile's build-EdgeOriginRequestFunction copies."""
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    shared_files = re.search(r"^EDGE_SHARED := (.+)$", makefile, re.MULTILINE)
    assert shared_files, "Makefile lost EDGE_SHARED"
    (target / "edge_origin_request").mkdir(parents=True)
    (target / "shared").mkdir()
    for source in (ROOT / "edge_origin_request").glob("*.py"):
        shutil.copy(source, target / "edge_origin_request")
    for name in shared_files.group(1).split():
        shutil.copy(ROOT / "shared" / name, target / "shared")


def test_edge_artifact_runs_alone_and_imports_nothing_heavy(tmp_path: Path) -> None:
    # Given the artifact as `sam build` lays it out
    artifact = tmp_path / "artifact"
    build_edge_artifact(artifact)
    # When a fresh interpreter imports it and handles an S3-origin event
    event_file = ROOT / "tests/events/edge_s3_origin.json"
    output = subprocess.run(
        [sys.executable, "-c", PROBE, str(artifact), str(event_file)],
        capture_output=True, text=True, check=True, cwd=tmp_path,
    )  # fmt: skip
    probe = json.loads(output.stdout)
    # Then every edgefill module came from the artifact, and no heavy module was loaded
    assert probe["files"] and all(f.startswith(str(artifact)) for f in probe["files"].values())
    loaded = set(probe["modules"])
    assert [m for m in FORBIDDEN if m in loaded or any(x.startswith(m + ".") for x in loaded)] == []
    assert probe["returned"]["uri"] == "/img/a%20b.jpg"
