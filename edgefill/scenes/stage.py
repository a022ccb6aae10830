"""What a scene needs from whatever runs it: the ``Stage`` protocol.

A scene takes a ``Stage``, not ``edgefill.demo.Demo``, so the scenes import nothing from
the demo and the demo imports them one way: no cycle, not even one for type checking.
``Demo`` is the stage ``edgefill demo`` runs them on; the end-to-end tests use it too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from edgefill.lab.lab import Lab


class Expectations(Protocol):
    """Where a scene records what it checked (``Demo.checks``)."""

    def expect(self, step: str, expectation: str, ok: bool, detail: str = "") -> bool: ...


class Stage(Protocol):
    """The running lab, the narration, the operator's CLI and the checks of a demo."""

    # Read-only properties, so a stage may hold a subtype (``Checks`` for ``checks``).
    @property
    def lab(self) -> Lab: ...

    @property
    def checks(self) -> Expectations: ...

    def say(self, text: str) -> None:
        """One line of narration."""
        ...

    def step(self, title: str) -> None:
        """The title of a scene or of one of its steps."""
        ...

    def operator(self, argv: list[str]) -> int:
        """Run an ``edgefill`` command as an operator would; its exit code."""
        ...

    def wait_until(
        self, description: str, total: int, done: Callable[[], int], timeout: float
    ) -> bool:
        """Follow ``done()`` up to ``total``; False when ``timeout`` seconds pass first."""
        ...
