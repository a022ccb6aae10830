"""Where the lab's handlers log: a file, so that a terminal shows only the story.

The real handlers run in the lab's process and log as in Lambda: JSON lines and CloudWatch
EMF lines on stdout, Python ``logging`` records, a server's complaint on stderr. In a
terminal they would bury ``edgefill demo``'s narration and ``edgefill lab up``'s table.
``handler_logs`` sends sys.stdout, sys.stderr and the root logger to a log file it names,
and pins the CLI's consoles (``edgefill.console.out``/``err``) to the terminal streams
of before, so the story stays on screen and nothing else does. Every live display of the
CLI leaves sys.stdout alone (``console.progress_bar``), so none takes the redirect back.

It must be entered before the lab starts: Powertools binds its log stream to the
sys.stdout of the moment it is created (when the lab imports the handlers).
``verbose`` leaves everything on the terminal, as in a Lambda console.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from edgefill.console import redirected


@contextlib.contextmanager
def handler_logs(name: str, verbose: bool = False) -> Iterator[Path | None]:
    """While the block runs, the handlers' output goes to ``/tmp/<name>-<time>-<pid>.log``
    (its path is yielded); with ``verbose`` it stays where it was (None is yielded)."""
    if verbose:
        yield None
        return
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = Path(tempfile.gettempdir()) / f"{name}-{stamp}-{os.getpid()}.log"
    terminal_out, terminal_err = sys.stdout, sys.stderr
    root = logging.getLogger()
    with (
        path.open("w", encoding="utf-8") as log,
        redirected(terminal_out, terminal_err),
        contextlib.redirect_stdout(log),
        contextlib.redirect_stderr(log),
    ):
        handler = logging.StreamHandler(log)
        root.addHandler(handler)
        try:
            yield path
        finally:
            root.removeHandler(handler)
