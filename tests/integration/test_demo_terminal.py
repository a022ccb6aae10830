"""``make demo`` in a real terminal shows only the story (issue 22): the handlers' JSON log
lines and EMF metric lines go to the log file, also while a progress bar is on screen.

Here the first three scenes run (the edge, the backfill and the prewarm handlers have all
logged and sent metrics by then); CI runs the whole demo the same way
(``python -m tests.demo_terminal`` in .ci/run), and every scene has its own e2e test.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tests.demo_terminal import _is_json_log, run_in_terminal, screen_problems


def test_the_demo_in_an_80_column_terminal_shows_only_the_story(tmp_path: Path) -> None:
    # When `edgefill demo` runs in a terminal of 80 columns, through scene 3 (its handler
    # log in this test's directory)
    argv = [sys.executable, "-m", "edgefill.cli", "demo", "--through", "3"]
    code, screen = run_in_terminal(argv, timeout=300, temp_dir=str(tmp_path))
    # Then it tells the story, every expectation holds, and no handler log line or EMF
    # metric line reached the screen: they are in the log file instead
    assert screen_problems(code, screen) == []
    assert [log.name.startswith("edgefill-demo-") for log in tmp_path.iterdir()] == [True]


def test_the_screen_check_sees_a_log_line_and_a_metric_line() -> None:
    # The check itself can fail: a Powertools line and an EMF line are each caught
    assert _is_json_log('{"level":"INFO","message":"backfill copied"}')
    assert _is_json_log('  {"_aws":{"Timestamp":1},"service":"prewarm"}')
    assert not _is_json_log("  new bytes in the bucket ━━━━ 1/1")
    screen = 'every expectation met\n{"level":"INFO","message":"x"}\n'
    assert any("on screen" in problem for problem in screen_problems(0, screen))
