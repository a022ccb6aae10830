"""The demo's console redirection leaves the CLI consoles following sys.stdout/stderr."""

from __future__ import annotations

import io
import sys

import pytest

from edgefill.console import err, out, redirected


def test_after_a_redirection_the_consoles_follow_the_current_streams(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a narration redirected once
    with redirected(io.StringIO()):
        out.print("narrated")
    # When sys.stdout and sys.stderr change afterwards (another command, another test)
    later_out, later_err = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stdout", later_out)
    monkeypatch.setattr(sys, "stderr", later_err)
    out.print("to stdout")
    err.print("to stderr")
    # Then the consoles write to the streams of now, not to those of the redirection
    assert "to stdout" in later_out.getvalue() and "to stderr" in later_err.getvalue()
