# PYTHON_ARGCOMPLETE_OK  (argcomplete's marker: the shell's completion hook looks for it)
"""``edgefill``: the operator's command line, against real AWS or the lab.

This module only assembles the parser from the command modules in ``COMMAND_GROUPS``
(``edgefill/commands/``) and runs the chosen command; each group lives in its own module
and prints through ``edgefill.console``. Queue URLs come from ``--stack NAME``
(CloudFormation outputs) or explicit flags.

Exit status (``edgefill.console``): 0 done, 1 some work failed (messages not sent, warms
failed, a demo expectation unmet), 2 bad input or configuration (named in the error), 130
interrupted by Ctrl-C (``edgefill.interrupts``).

Start-up: building the parser imports the command modules and their light flag helpers
only; a command's implementation and its heavy imports load when it runs (see
``edgefill/commands/__init__.py``), so ``edgefill --help`` takes about three times
``python -c pass`` (docs/BENCHMARKS.md).

Shell completion: with ``argcomplete`` installed, ``eval "$(register-python-argcomplete
edgefill)"`` completes commands and flags. It is imported only when the shell asks for a
completion (``_ARGCOMPLETE`` set), so it costs nothing at an ordinary start.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Final

from edgefill.commands import doctor, estimate, freshness, lab, queue_commands, warm
from edgefill.commands.parser import EdgefillParser, VersionAction
from edgefill.console import EXIT_USAGE, run_guarded

# The command groups, in the order ``edgefill --help`` lists them. A new group is a module
# in edgefill/commands/ with ``register(commands)``, plus one entry here.
COMMAND_GROUPS: Final = (queue_commands, freshness, estimate, doctor, warm, lab)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    if "_ARGCOMPLETE" in os.environ:
        complete(parser)
    try:
        args = parser.parse_args(argv)
    except SystemExit as done:  # --help, --version, or a usage error already printed
        return done.code if isinstance(done.code, int) else EXIT_USAGE
    return run_guarded(args.run, args)


def build_parser() -> EdgefillParser:
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
    for group in COMMAND_GROUPS:
        group.register(commands)
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
