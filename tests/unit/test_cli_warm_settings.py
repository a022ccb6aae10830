"""``edgefill warm`` pushes as hard as the worker's settings say (issue 22)."""

from __future__ import annotations

from typing import Any

import pytest

from edgefill.cli import main
from prewarm_worker import engine
from prewarm_worker.engine import WarmReport, WarmSettings


def test_warm_uses_the_concurrency_and_attempts_of_the_environment_and_flags(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given the worker's variables for threads and attempts, and a warm that records its context
    monkeypatch.setenv("EDGEFILL_DISTRIBUTION_DOMAIN", "d111111abcdef8.cloudfront.net")
    monkeypatch.setenv("EDGEFILL_CONCURRENCY", "3")
    monkeypatch.setenv("EDGEFILL_REQUEST_ATTEMPTS", "2")
    seen: list[Any] = []

    def recording_warm(plan: Any, context: Any, **_: Any) -> WarmReport:
        seen.append(context.settings)
        return WarmReport(tasks=0)

    monkeypatch.setattr(engine, "warm", recording_warm)
    # When the operator warms, once with the environment alone and once with --concurrency
    assert main(["warm", "/a.js", "--targets", "us-east-1", "--json"]) == 0
    assert main(["warm", "/a.js", "--targets", "us-east-1", "--concurrency", "5", "--json"]) == 0
    # Then the engine got those settings, not its defaults
    assert seen[0] == WarmSettings(concurrency=3, request_attempts=2)
    assert seen[1] == WarmSettings(concurrency=5, request_attempts=2)
