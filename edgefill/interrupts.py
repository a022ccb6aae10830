"""Ctrl-C for the commands that launch work: ``warm``, ``prewarm``, ``backfill``,
``refresh`` and ``invalidate``.

The protocol, the same for each of them:

1. The command's work runs in a thread of its own (``run_stoppable``) and reads a
   ``threading.Event``, ``stop``, before it starts anything: a warm task, a
   ``SendMessageBatch``, a ``CreateInvalidation``, a look at an invalidation's status.
2. The first SIGINT only sets ``stop`` (the signal handler raises nothing, so no
   ``KeyboardInterrupt`` lands in the middle of a request). The main thread then waits at
   most ``GRACE_SECONDS`` for the requests in flight to end.
3. The command prints what was done, from what the work returned, or, when it did not
   return in time, from what the command itself tallied as results came in. It exits
   ``EXIT_INTERRUPTED`` (130). If requests are still in flight then, the process ends
   with ``abandon``: it cannot wait for them (an edge may take its whole read timeout),
   and the interpreter would otherwise join the engine's threads at exit.
4. A second SIGINT ends the process at once: one line, no traceback.

Signal handlers can only be installed from the main thread: anywhere else (the demo's
operator commands run in the main thread; a test may not) the work runs in the calling
thread and is never stopped, as before this module.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import Final, Generic, TypeVar

from edgefill.console import EXIT_INTERRUPTED, count, err, out

# Seconds the requests in flight get to end after the first Ctrl-C (issue 22).
GRACE_SECONDS: Final = 2.0
# How often the main thread looks at the work while it waits (a signal handler runs
# between two looks, so this bounds the reaction to Ctrl-C, not the work's speed).
_POLL_SECONDS: Final = 0.05
_SHOW_CURSOR: Final = b"\x1b[?25h"  # a progress display hides it; os._exit would leave it so

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Stopped(Generic[T]):
    """How a stoppable work ended: ``value`` is what it returned (None when it did not
    return within the grace), ``interrupted`` whether the operator pressed Ctrl-C."""

    value: T | None
    interrupted: bool
    finished: bool


def run_stoppable(
    work: Callable[[], T], stop: threading.Event, grace: float = GRACE_SECONDS
) -> Stopped[T]:
    """Run ``work()`` until it returns, or until ``grace`` seconds after the first SIGINT
    set ``stop`` (which ``work`` must read). An exception of ``work`` is raised here."""
    if threading.current_thread() is not threading.main_thread():
        return Stopped(work(), interrupted=False, finished=True)
    presses = 0

    def on_sigint(number: int, frame: FrameType | None) -> None:
        nonlocal presses
        presses += 1
        stop.set()
        if presses > 1:
            _exit_now()

    returned: list[T] = []
    raised: list[BaseException] = []

    def run() -> None:
        try:
            returned.append(work())
        except BaseException as error:  # noqa: BLE001 - handed to the main thread
            raised.append(error)

    thread = threading.Thread(target=run, name="edgefill-work", daemon=True)
    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        thread.start()
        told = False
        while thread.is_alive():
            thread.join(_POLL_SECONDS)
            if stop.is_set() and not told:
                told = True
                err.print(
                    f"stopping: no new work starts; waiting up to {GRACE_SECONDS:.0f} s for "
                    "requests in flight (Ctrl-C again quits at once)",
                    markup=False,
                )
                thread.join(grace)
                break
    finally:
        signal.signal(signal.SIGINT, previous)
    if raised and not stop.is_set():
        raise raised[0]
    if returned:
        return Stopped(returned[0], interrupted=stop.is_set(), finished=True)
    return Stopped(None, interrupted=True, finished=not thread.is_alive())


def report_stopped(
    done: int, total: int, what: str, failed: int | None = None, detail: str = ""
) -> None:
    """The closing line of an interrupted command, on stderr: ``583 of 6 400 warmed; 0
    failed; stopped by the operator`` (``detail`` follows ``what``; ``failed`` None: no
    count of failures)."""
    failures = "" if failed is None else f"; {count(failed)} failed"
    err.print(
        f"{count(done)} of {count(total)} {what}{detail}{failures}; stopped by the operator",
        markup=False,
    )


def abandon(code: int = EXIT_INTERRUPTED) -> None:
    """End the process now with ``code``, leaving requests still in flight (after the
    report was printed): the interpreter would otherwise wait for their threads."""
    out.file.flush()
    err.file.flush()
    sys.stdout.flush()
    sys.stderr.flush()
    _show_cursor()
    os._exit(code)


def _exit_now() -> None:
    """The second Ctrl-C: one line, then the process ends (no report, no traceback)."""
    _show_cursor()
    os.write(2, b"\nedgefill: stopped at once (second Ctrl-C)\n")
    os._exit(EXIT_INTERRUPTED)


def _show_cursor() -> None:
    if os.isatty(2):
        os.write(2, _SHOW_CURSOR)
