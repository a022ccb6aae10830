"""The CLI's one console pair, its exit codes, its error printer and its live displays.

Every command module prints through ``out`` (results, on stdout) and ``err`` (progress,
notes and errors, on stderr), so a caller that narrates (the demo) can send both into its
own story with ``redirected``. This module imports nothing from edgefill but
``operations`` (for ``OperatorError``), so any module may import it without a cycle.

Live displays (progress bars, spinners) come only from ``progress_bar`` and ``spinner``:
rich's own defaults replace ``sys.stdout``/``sys.stderr`` while a display runs when the
console is a terminal, which would pull every other thread's prints (the lab's handlers
logging JSON and EMF lines to a log file) onto the screen. These never do.

Start-up (issue 23): rich costs about a third of the CLI's imports, and ``--help`` or a
usage error prints nothing through it. So ``out`` and ``err`` make their rich ``Console``
at their first use, ``escape`` imports rich's when first called, and ``run_guarded`` names
botocore's errors only when botocore was loaded (an error of a module never imported
cannot have been raised).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import threading
from collections.abc import Callable, Iterator
from typing import IO, TYPE_CHECKING, Any, Final, cast

from edgefill.operations import OperatorError

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, ProgressColumn

EXIT_OK: Final = 0  # everything asked for was done
EXIT_FAILED: Final = 1  # some work failed: messages not sent, warms failed, a check failed
EXIT_USAGE: Final = 2  # bad input or configuration, named in the error
EXIT_INTERRUPTED: Final = 130  # Ctrl-C, as a shell reports SIGINT


class _DeferredConsole:
    """A rich ``Console`` made at the first read or write of any of its attributes, then
    that console for good: every attribute is the made console's (``print``, ``file``,
    ``_file``…), so callers use it as the Console it stands for."""

    __slots__ = ("_edgefill_lock", "_edgefill_made", "_edgefill_options")

    def __init__(self, **options: Any) -> None:
        object.__setattr__(self, "_edgefill_options", options)
        object.__setattr__(self, "_edgefill_made", None)
        object.__setattr__(self, "_edgefill_lock", threading.Lock())

    def made(self) -> Console:
        """The console (made now if this is its first use; two threads make one)."""
        with self._edgefill_lock:
            if self._edgefill_made is None:
                from rich.console import Console

                object.__setattr__(self, "_edgefill_made", Console(**self._edgefill_options))
            return cast("Console", self._edgefill_made)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.made(), name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self.made(), name, value)


out = cast("Console", _DeferredConsole(highlight=False, soft_wrap=True))
err = cast("Console", _DeferredConsole(stderr=True, highlight=False, soft_wrap=True))


def rich_console(console: Any) -> Console:
    """The rich ``Console`` behind ``console`` (``out``, ``err``, or a Console), for rich's
    own constructors (``Progress(console=…)``)."""
    return console.made() if isinstance(console, _DeferredConsole) else cast("Console", console)


def escape(text: str) -> str:
    """``text`` with rich markup escaped (``rich.markup.escape``, imported when first
    needed): remote text (paths, DNS answers, AWS messages) prints as it is."""
    from rich.markup import escape as rich_escape

    return rich_escape(text)


def print_error(message: str) -> None:
    """``edgefill: error: <message>`` on stderr; the message is printed literally."""
    err.print(f"[red]edgefill: error:[/red] {escape(message)}")


def print_note(message: str) -> None:
    err.print(f"[yellow]note:[/yellow] {escape(message)}")


def run_guarded(run: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run one command, turning the errors an operator can meet into an exit code."""
    try:
        return int(run(args))
    except OperatorError as error:
        print_error(str(error))
        return EXIT_USAGE
    except KeyboardInterrupt:
        err.print("interrupted by the operator")
        return EXIT_INTERRUPTED
    except Exception as error:
        code = aws_error_code(error)
        if code is None:
            raise
        return code


def aws_error_code(error: Exception) -> int | None:
    """The exit code of an error botocore raised (its line printed), None for any other.
    botocore's errors are looked up only when botocore was imported."""
    if "botocore.exceptions" not in sys.modules:
        return None
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, ProfileNotFound

    if isinstance(error, NoCredentialsError):
        print_error("no AWS credentials found (set AWS_PROFILE or keys)")
        return EXIT_USAGE
    if isinstance(error, ProfileNotFound):
        print_error(f"{error} (profiles live in ~/.aws/config; --profile or AWS_PROFILE)")
        return EXIT_USAGE
    if isinstance(error, ClientError | BotoCoreError):
        print_error(f"AWS call failed: {error}")
        return EXIT_FAILED
    return None


def count(number: int) -> str:
    """``6 400``: thousands apart by a space, as the reports print counts."""
    return f"{number:,}".replace(",", " ")


def plural(number: int, noun: str) -> str:
    """``1 path``, ``6 400 paths``."""
    return f"{count(number)} {noun}{'' if number == 1 else 's'}"


def progress_bar(*columns: str | ProgressColumn, transient: bool = True) -> Progress:
    """A progress display on ``err`` that leaves sys.stdout and sys.stderr alone."""
    from rich.progress import Progress

    return Progress(
        *columns,
        console=rich_console(err),
        transient=transient,
        redirect_stdout=False,
        redirect_stderr=False,
    )


def shows_live() -> bool:
    """Whether ``err`` is a terminal, where live displays show; elsewhere (a pipe, a file,
    CI) a progress bar would draw nothing, so a command may skip building one."""
    return bool(rich_console(err).is_terminal)


class SilentProgress:
    """What a command uses instead of ``progress_bar`` where nothing live shows: the same
    calls (``add_task``, ``update``), none of rich.progress's import or refresh thread."""

    def __enter__(self) -> SilentProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def add_task(self, description: str, **fields: Any) -> int:
        return 0

    def update(self, task: int, **fields: Any) -> None:
        return None


class _Spinning:
    def __init__(self, spinner: Any) -> None:
        self._spinner = spinner

    def update(self, text: str) -> None:
        self._spinner.update(text=text)


@contextlib.contextmanager
def spinner(text: str) -> Iterator[Any]:
    """A spinner with ``text`` on ``err`` while the block runs (``.update(text)``);
    like ``progress_bar``, it leaves sys.stdout and sys.stderr alone."""
    from rich.live import Live
    from rich.spinner import Spinner

    spinning = Spinner("dots", text=text)
    with Live(
        spinning,
        console=rich_console(err),
        transient=True,
        refresh_per_second=12.5,
        redirect_stdout=False,
        redirect_stderr=False,
    ):
        yield _Spinning(spinning)


@contextlib.contextmanager
def redirected(file: IO[str], errors: IO[str] | None = None) -> Iterator[None]:
    """Send ``out`` to ``file`` and ``err`` to ``errors`` (else ``file`` too) for the
    duration: the demo's narration, or the terminal while sys.stdout is a log file."""
    # rich's ``file`` reads sys.stdout/sys.stderr at each use until set; restoring the
    # private ``_file`` (None then) keeps that, where restoring ``file`` would pin the
    # consoles to whatever stream sys.stdout was at the time (a test's capture).
    previous = out._file, err._file
    out.file = file
    err.file = errors if errors is not None else file
    try:
        yield
    finally:
        out._file, err._file = previous
