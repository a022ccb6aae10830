"""The CLI's argument parser class: no abbreviations, one-line errors, ``--version``.

- ``allow_abbrev=False`` on every parser: argparse would otherwise read
  ``invalidate --paths /a`` (the AWS CLI habit) as ``--paths-file /a``.
- A usage error is one line, ``edgefill: error: <what> (see edgefill COMMAND --help)``,
  the form of every other error (``console.print_error``), where argparse would print the
  whole usage first; exit 2 (``EXIT_USAGE``).
- An unknown flag is named with the closest flags of its command (``difflib``), or, for
  ``--paths``, with the reminder that paths are arguments.

``edgefill.cli`` builds the top-level parser with this class, and every sub-parser inherits
it (``add_subparsers`` makes its parsers of the parent's class).
"""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from edgefill.console import EXIT_USAGE


class EdgefillParser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["allow_abbrev"] = False
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"edgefill: error: {message} (see {self.prog} --help)\n")

    def parse_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> argparse.Namespace:
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            chosen = chosen_parser(self, parsed)
            chosen.error(unrecognized(chosen, extras))
        return parsed


def chosen_parser(parser: argparse.ArgumentParser, parsed: argparse.Namespace) -> Any:
    """The (sub-)parser of the command that ``parsed`` chose (``lab up`` → its parser)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            name = getattr(parsed, action.dest, None)
            if name in action.choices:
                return chosen_parser(action.choices[name], parsed)
    return parser


def option_strings(parser: argparse.ArgumentParser) -> list[str]:
    return [flag for action in parser._actions for flag in action.option_strings]


def unrecognized(parser: argparse.ArgumentParser, extras: list[str]) -> str:
    flags = [extra.partition("=")[0] for extra in extras if extra.startswith("-")]
    if not flags:
        return f"unexpected arguments: {' '.join(extras)}"
    flag = flags[0]
    takes_paths = any(action.dest == "paths" for action in parser._actions)
    if flag == "--paths" and takes_paths:
        return f"no flag --paths: paths are arguments ({parser.prog} /a /b, or --paths-file F)"
    known = option_strings(parser)
    longer = [option for option in known if option.startswith(flag) and flag.startswith("--")]
    close = longer or difflib.get_close_matches(flag, known, n=2, cutoff=0.6)
    hint = f" (did you mean {' or '.join(close)}? flags are never abbreviated)" if close else ""
    return f"unrecognized arguments: {' '.join(extras)}{hint}"


class VersionAction(argparse.Action):
    """``--version``: ``edgefill 0.2.0`` from the installed package's metadata, read only
    when asked (``importlib.metadata`` costs milliseconds at every start otherwise)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        kwargs.setdefault("help", "print the version and exit")
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> NoReturn:
        from importlib.metadata import PackageNotFoundError, version

        try:
            number = version("edgefill")
        except PackageNotFoundError:  # a checkout on sys.path, not installed
            number = "unknown (not installed)"
        sys.stdout.write(f"edgefill {number}\n")
        parser.exit(0)
