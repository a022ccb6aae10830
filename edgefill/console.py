"""The CLI's one console pair, its exit codes, its error printer and its live displays.

Every command module prints through ``out`` (results, on stdout) and ``err`` (progress,
notes and errors, on stderr), so a caller that narrates (the demo) can send both into its
own story with ``redirected``. This module imports nothing from edgefill but
``operations`` (for ``OperatorError``), so any module may import it without a cycle.

Live displays (progress bars, spinners) come only from ``progress_bar`` and ``spinner``:
rich's own defaults replace ``sys.stdout``/``sys.stderr`` while a display runs when the
console is a terminal, which would pull every other thread's prints (the lab's handlers
logging JSON and EMF lines to a log file) onto the screen. These never do.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Callable, Iterator
from typing import IO, Any, Final

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, ProfileNotFound
from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.progress import Progress, ProgressColumn
from rich.spinner import Spinner

from edgefill.operations import OperatorError

EXIT_OK: Final = 0  # everything asked for was done
EXIT_FAILED: Final = 1  # some work failed: messages not sent, warms failed, a check failed
EXIT_USAGE: Final = 2  # bad input or configuration, named in the error
EXIT_INTERRUPTED: Final = 130  # Ctrl-C, as a shell reports SIGINT

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


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
    except NoCredentialsError:
        print_error("no AWS credentials found (set AWS_PROFILE or keys)")
        return EXIT_USAGE
    except ProfileNotFound as error:
        print_error(f"{error} (profiles live in ~/.aws/config; --profile or AWS_PROFILE)")
        return EXIT_USAGE
    except (ClientError, BotoCoreError) as error:
        print_error(f"AWS call failed: {error}")
        return EXIT_FAILED
    except KeyboardInterrupt:
        err.print("interrupted by the operator")
        return EXIT_INTERRUPTED


def count(number: int) -> str:
    """``6 400``: thousands apart by a space, as the reports print counts."""
    return f"{number:,}".replace(",", " ")


def plural(number: int, noun: str) -> str:
    """``1 path``, ``6 400 paths``."""
    return f"{count(number)} {noun}{'' if number == 1 else 's'}"


def progress_bar(*columns: str | ProgressColumn, transient: bool = True) -> Progress:
    """A progress display on ``err`` that leaves sys.stdout and sys.stderr alone."""
    return Progress(
        *columns,
        console=err,
        transient=transient,
        redirect_stdout=False,
        redirect_stderr=False,
    )


class _Spinning:
    def __init__(self, spinner: Spinner) -> None:
        self._spinner = spinner

    def update(self, text: str) -> None:
        self._spinner.update(text=text)


@contextlib.contextmanager
def spinner(text: str) -> Iterator[Any]:
    """A spinner with ``text`` on ``err`` while the block runs (``.update(text)``);
    like ``progress_bar``, it leaves sys.stdout and sys.stderr alone."""
    spinning = Spinner("dots", text=text)
    with Live(
        spinning,
        console=err,
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
