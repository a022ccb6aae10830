"""``edgefill``: the operator's command line, against real AWS or the lab.

This module only assembles the parser from the command modules in ``COMMAND_GROUPS``
(``edgefill/commands/``) and runs the chosen command; each group lives in its own module
and prints through ``edgefill.console``. Queue URLs come from ``--stack NAME``
(CloudFormation outputs) or explicit flags.

Exit status (``edgefill.console``): 0 done, 1 some work failed (messages not sent, warms
failed, a demo expectation unmet), 2 bad input or configuration (named in the error).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Final

from edgefill.commands import doctor, estimate, freshness, lab, queue_commands, warm
from edgefill.console import run_guarded

# The command groups, in the order ``edgefill --help`` lists them. A new group is a module
# in edgefill/commands/ with ``register(commands)``, plus one entry here.
COMMAND_GROUPS: Final = (queue_commands, freshness, estimate, doctor, warm, lab)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_guarded(args.run, args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edgefill",
        description="Keep a CloudFront distribution's regional S3 origin filled and edges warm.",
    )
    # Commands that run other commands (the demo) get this entry point handed to them, so
    # no command module imports this one back.
    parser.set_defaults(operator=main)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in COMMAND_GROUPS:
        group.register(commands)
    return parser


if __name__ == "__main__":
    sys.exit(main())
