# PYTHON_ARGCOMPLETE_OK  (argcomplete's marker: the shell's completion hook looks for it)
"""``edgefill``: the operator's command line, against real AWS or the lab.

This module only assembles the parser from the command modules in ``COMMAND_GROUPS``
(``edgefill/commands/``) and runs the chosen command; each group lives in its own module
and prints through ``edgefill.console``. Queue URLs come from ``--stack NAME``
(CloudFormation outputs) or explicit flags.

Exit status (``edgefill.console``): 0 done, 1 some work failed (messages not sent, warms
failed, a demo expectation unmet), 2 bad input or configuration (named in the error), 130
interrupted by Ctrl-C (``edgefill.interrupts``).

Start-up (issue 23): ``edgefill COMMAND …`` imports and registers the group of COMMAND
alone (``GROUP_OF``); ``edgefill --help``, a completion or an unknown word builds every
group's parser. Building a parser imports the group module and its light flag helpers
only; a command's implementation and its heavy imports load when it runs (see
``edgefill/commands/__init__.py``). ``bench/bench_cli_start.py`` times it against
``python -c pass`` (docs/BENCHMARKS.md).

Shell completion: with ``argcomplete`` installed, ``eval "$(register-python-argcomplete
edgefill)"`` completes commands and flags. It is imported only when the shell asks for a
completion (``_ARGCOMPLETE`` set), so it costs nothing at an ordinary start.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Sequence
from typing import Final

from edgefill.commands.parser import EdgefillParser, VersionAction
from edgefill.console import EXIT_USAGE, run_guarded

# The command groups, in the order ``edgefill --help`` lists them. A new group is a module
# in edgefill/commands/ with ``register(commands)``, plus one entry here and one in
# GROUP_OF for each command it registers.
COMMAND_GROUPS: Final = (
    "edgefill.commands.queue_commands",
    "edgefill.commands.freshness",
    "edgefill.commands.estimate",
    "edgefill.commands.doctor",
    "edgefill.commands.warm",
    "edgefill.commands.lab",
)
# The group that registers each command (tests/unit/test_cli_help.py checks it against
# what the groups register): ``edgefill COMMAND …`` builds that group's parsers only.
GROUP_OF: Final = {
    "prewarm": "edgefill.commands.queue_commands",
    "backfill": "edgefill.commands.queue_commands",
    "status": "edgefill.commands.queue_commands",
    "redrive": "edgefill.commands.queue_commands",
    "refresh": "edgefill.commands.freshness",
    "invalidate": "edgefill.commands.freshness",
    "check": "edgefill.commands.freshness",
    "estimate": "edgefill.commands.estimate",
    "doctor": "edgefill.commands.doctor",
    "edge-logs": "edgefill.commands.doctor",
    "warm": "edgefill.commands.warm",
    "lab": "edgefill.commands.lab",
    "demo": "edgefill.commands.lab",
}


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    completing = "_ARGCOMPLETE" in os.environ  # argcomplete reads the shell's line itself
    parser = build_parser(None if completing or not words else words[0])
    if completing:
        complete(parser)
    try:
        args = parser.parse_args(words)
    except SystemExit as done:  # --help, --version, or a usage error already printed
        return done.code if isinstance(done.code, int) else EXIT_USAGE
    return run_guarded(args.run, args)


def build_parser(command: str | None = None) -> EdgefillParser:
    """The parser of every command; with ``command`` (the first word of a command line), of
    its group's commands alone when it names one (``GROUP_OF``), else of every command."""
    parser = EdgefillParser(
        prog="edgefill",
        description="Keep a CloudFront distribution's regional S3 origin filled and edges warm.",
        epilog="Exit status: 0 done, 1 failed or refused, 2 bad input or configuration, "
        "130 interrupted. Every command takes --json; those that reach AWS take --profile, "
        "--region and --endpoint-url. edgefill COMMAND --help lists a command's flags.",
    )
    parser.add_argument("--version", action=VersionAction)
    # Commands that run other commands (the demo) get this entry point handed to them, so
    # no command module imports this one back.
    parser.set_defaults(operator=main)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    groups = [GROUP_OF[command]] if command in GROUP_OF else COMMAND_GROUPS
    for group in groups:
        importlib.import_module(group).register(commands)
    return parser


def complete(parser: EdgefillParser) -> None:
    """Answer the shell's completion request and exit (argcomplete), if it is installed."""
    try:
        import argcomplete
    except ImportError:
        return
    argcomplete.autocomplete(parser)


if __name__ == "__main__":
    sys.exit(main())
