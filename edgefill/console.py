"""The CLI's one console pair, its exit codes and its error printer.

Every command module prints through ``out`` (results, on stdout) and ``err`` (progress,
notes and errors, on stderr), so a caller that narrates (the demo) can send both into its
own story with ``redirected``. This module imports nothing from edgefill but
``operations`` (for ``OperatorError``), so any module may import it without a cycle.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Callable, Iterator
from typing import IO, Final

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
from rich.console import Console
from rich.markup import escape

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
    except (ClientError, BotoCoreError) as error:
        print_error(f"AWS call failed: {error}")
        return EXIT_FAILED
    except KeyboardInterrupt:
        err.print("interrupted")
        return EXIT_INTERRUPTED


@contextlib.contextmanager
def redirected(file: IO[str]) -> Iterator[None]:
    """Send both consoles to ``file`` for the duration (the demo's narration)."""
    # ``_file`` is None for a console that follows the current sys.stdout/sys.stderr;
    # restoring ``.file`` instead would pin it to whatever stream was current here.
    previous = out._file, err._file
    out.file = err.file = file
    try:
        yield
    finally:
        out._file, err._file = previous
