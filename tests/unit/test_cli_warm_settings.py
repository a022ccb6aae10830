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
    assert seen[0] == WarmSettings(concurrency=3, request_attempts=2, http2=True)
    assert seen[1] == WarmSettings(concurrency=5, request_attempts=2, http2=True)


def test_warm_takes_http2_streams_and_forced_http1_from_the_environment_and_flags(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given stream settings in the environment, and a warm that records its context
    monkeypatch.setenv("EDGEFILL_DISTRIBUTION_DOMAIN", "d111111abcdef8.cloudfront.net")
    monkeypatch.setenv("EDGEFILL_WARM_STREAMS", "40")
    monkeypatch.setenv("EDGEFILL_WARM_STREAMS_PER_EDGE", "7")
    seen: list[Any] = []

    def recording_warm(plan: Any, context: Any, **_: Any) -> WarmReport:
        seen.append((context.settings, type(context.client).__name__))
        return WarmReport(tasks=0)

    monkeypatch.setattr(engine, "warm", recording_warm)
    # When the operator warms with the environment, then with flags, then with --http1.1
    base = ["warm", "/a.js", "--targets", "us-east-1", "--json"]
    assert main(base) == 0
    assert main([*base, "--streams", "9", "--streams-per-edge", "3"]) == 0
    assert main([*base, "--http1.1"]) == 0
    # Then HTTP/2 runs one worker per stream, at most that many per edge
    settings, client = seen[0]
    assert settings.http2 and (settings.workers, settings.per_edge) == (40, 7)
    assert client == "Http2EdgeClient"
    settings, _ = seen[1]
    assert (settings.streams, settings.streams_per_edge) == (9, 3)
    # And --http1.1 goes back to one keep-alive connection per worker
    settings, client = seen[2]
    assert not settings.http2 and settings.workers == settings.concurrency
    assert client == "EdgeClient"


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--streams", "0"], "--streams"),
        (["--streams", "5000"], "--streams"),
        (["--streams-per-edge", "many"], "--streams-per-edge"),
    ],
)
def test_warm_refuses_bad_stream_counts_naming_the_flag(
    flags: list[str], named: str, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.setenv("EDGEFILL_DISTRIBUTION_DOMAIN", "d111111abcdef8.cloudfront.net")
    assert main(["warm", "/a.js", "--targets", "us-east-1", *flags]) == 2
    assert named in capsys.readouterr().err
