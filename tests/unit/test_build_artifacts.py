"""The artifact check `make build` runs after `sam build` (.ci/check_artifacts.py)."""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / ".ci" / "check_artifacts.py"


@pytest.fixture(scope="module")
def check() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_artifacts", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def touch(path: Path, data: bytes = b"# code\n") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


@pytest.fixture
def build(tmp_path: Path) -> Path:
    """A build directory shaped like a good `sam build` output."""
    edge = tmp_path / "EdgeOriginRequestFunction"
    touch(edge / "edge_origin_request" / "app.py")
    for name in ("__init__.py", "messages.py", "keys.py", "queues.py", "redact.py"):
        touch(edge / "shared" / name)
    for function, package, requires in (
        (
            "BackfillWorkerFunction",
            "backfill_worker",
            ("boto3", "requests", "aws_lambda_powertools"),
        ),
        (
            "PrewarmWorkerFunction",
            "prewarm_worker",
            ("boto3", "requests", "dns", "aws_lambda_powertools"),
        ),
    ):
        root = tmp_path / function
        touch(root / package / "app.py")
        touch(root / "shared" / "config.py")
        for requirement in requires:
            touch(root / requirement / "__init__.py")
        touch(root / "charset_normalizer" / "md.cpython-313-x86_64-linux-gnu.so", b"\x7fELF")
    return tmp_path


def test_a_good_build_passes_and_reports_sizes(
    check: ModuleType, build: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert check.main(str(build), str(build)) == 0
    report = capsys.readouterr().out
    assert "EdgeOriginRequestFunction: 0.00 MB zipped, 6 files" in report
    assert "BackfillWorkerFunction:" in report and "PrewarmWorkerFunction:" in report


def test_a_third_party_package_in_the_edge_artifact_fails(
    check: ModuleType, build: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    touch(build / "EdgeOriginRequestFunction" / "requests" / "__init__.py")
    assert check.main(str(build), str(build)) == 1
    assert "unexpected file requests/__init__.py" in capsys.readouterr().err


def test_a_heavy_shared_module_in_the_edge_artifact_fails(
    check: ModuleType, build: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    touch(build / "EdgeOriginRequestFunction" / "shared" / "observability.py")
    assert check.main(str(build), str(build)) == 1
    assert "shared/observability.py" in capsys.readouterr().err


def test_an_edge_artifact_of_1_mb_fails(
    check: ModuleType, build: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Incompressible bytes, so the zip is as large as the file
    touch(
        build / "EdgeOriginRequestFunction" / "edge_origin_request" / "blob.py",
        os.urandom(1_100_000),
    )
    assert check.main(str(build), str(build)) == 1
    assert "under 1 MB" in capsys.readouterr().err


def test_a_worker_extension_built_for_another_python_fails(
    check: ModuleType, build: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    touch(
        build
        / "PrewarmWorkerFunction"
        / "charset_normalizer"
        / "cd.cpython-311-x86_64-linux-gnu.so"
    )
    assert check.main(str(build), str(build)) == 1
    assert "not built for cp313-x86_64-linux-gnu" in capsys.readouterr().err


def test_a_missing_artifact_or_requirement_fails(
    check: ModuleType, build: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.rmtree(build / "PrewarmWorkerFunction" / "dns")
    shutil.rmtree(build / "BackfillWorkerFunction")
    assert check.main(str(build), str(build)) == 1
    errors = capsys.readouterr().err
    assert "PrewarmWorkerFunction: dns/ is missing" in errors
    assert "BackfillWorkerFunction: no artifact" in errors


def test_each_stack_is_checked_in_its_own_build_directory(
    check: ModuleType, build: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the workers built only into the edge stack's directory (a wrong --build-dir)
    empty = tmp_path / "regional-build"
    empty.mkdir()
    # When the check reads the regional stack's directory / Then both workers are missing
    assert check.main(str(build), str(empty)) == 1
    errors = capsys.readouterr().err
    assert "BackfillWorkerFunction: no artifact in" in errors
    assert "PrewarmWorkerFunction: no artifact in" in errors
