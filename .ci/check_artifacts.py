"""Check and report the Lambda artifacts ``sam build`` left for the two stacks: the edge
function in the edge stack's build directory (.aws-sam/build-edge), the two workers in the
regional stack's (.aws-sam/build-regional).

Run by ``make build``. For each function it prints the zipped size (what Lambda stores and
what a cold start downloads), the file count and the top-level entries, and it fails when:
- an artifact is missing or lacks its own package;
- the edge artifact is 1 MB or more zipped, or holds anything besides
  ``edge_origin_request/`` and the light modules of ``shared/`` (no third-party package:
  boto3 ships with the runtime);
- a worker misses one of its requirements, or holds a compiled extension that was not
  built for CPython 3.13 on x86_64 Linux (what Lambda's python3.13 runtime loads).

Standard library only: it runs with the system Python before any virtualenv exists.
"""

from __future__ import annotations

import io
import re
import sys
import zipfile
from pathlib import Path

EDGE = "EdgeOriginRequestFunction"
EDGE_SHARED = {"__init__.py", "messages.py", "keys.py", "queues.py", "redact.py"}
EDGE_MAX_ZIPPED = 1_000_000
WORKERS = {
    "BackfillWorkerFunction": ("backfill_worker", ("boto3", "requests", "aws_lambda_powertools")),
    "PrewarmWorkerFunction": (
        "prewarm_worker",
        ("boto3", "requests", "dns", "aws_lambda_powertools"),
    ),
}
# Extension modules name their ABI: foo.cpython-313-x86_64-linux-gnu.so.
_EXTENSION = re.compile(r"\.cpython-(?P<abi>[^.]+)\.so$")
_LAMBDA_ABI = "313-x86_64-linux-gnu"


def zipped_size(root: Path) -> tuple[int, int]:
    """(bytes of a deflated zip of ``root``, number of files in it)."""
    buffer = io.BytesIO()
    count = 0
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(root).as_posix())
                count += 1
    return buffer.tell(), count


def edge_problems(root: Path) -> list[str]:
    problems = []
    for path in root.rglob("*"):
        if not path.is_file():
            continue
        relative = path.relative_to(root)
        top = relative.parts[0]
        if top == "edge_origin_request":
            continue
        if top == "shared" and len(relative.parts) == 2 and relative.name in EDGE_SHARED:
            continue
        problems.append(f"{EDGE}: unexpected file {relative.as_posix()}")
    if not (root / "edge_origin_request").is_dir():
        problems.append(f"{EDGE}: edge_origin_request/ is missing")
    return problems


def worker_problems(name: str, root: Path, package: str, requires: tuple[str, ...]) -> list[str]:
    problems = [
        f"{name}: {entry}/ is missing"
        for entry in (package, "shared", *requires)
        if not (root / entry).is_dir()
    ]
    for path in root.rglob("*.so"):
        match = _EXTENSION.search(path.name)
        if match and match.group("abi") != _LAMBDA_ABI:
            problems.append(f"{name}: {path.relative_to(root)} is not built for cp{_LAMBDA_ABI}")
    return problems


def main(edge_build: str, regional_build: str) -> int:
    problems: list[str] = []
    for name in (EDGE, *WORKERS):
        build = Path(edge_build if name == EDGE else regional_build)
        root = build / name
        if not root.is_dir():
            problems.append(f"{name}: no artifact in {build}")
            continue
        size, files = zipped_size(root)
        entries = ", ".join(sorted(p.name for p in root.iterdir() if not p.name.endswith("-info")))
        print(f"{name}: {size / 1_000_000:.2f} MB zipped, {files} files: {entries}")
        if name == EDGE:
            problems += edge_problems(root)
            if size >= EDGE_MAX_ZIPPED:
                problems.append(f"{EDGE}: {size} bytes zipped; the edge must stay under 1 MB")
        else:
            package, requires = WORKERS[name]
            problems += worker_problems(name, root, package, requires)
    for problem in problems:
        print(f"ERROR {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    arguments = sys.argv[1:] or [".aws-sam/build-edge", ".aws-sam/build-regional"]
    if len(arguments) != 2:
        print("usage: check_artifacts.py EDGE_BUILD_DIR REGIONAL_BUILD_DIR", file=sys.stderr)
        sys.exit(2)
    sys.exit(main(*arguments))
