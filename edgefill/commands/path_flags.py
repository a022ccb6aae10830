"""The path arguments every command that takes paths shares: ``PATH…`` and
``--paths-file FILE`` (``-`` reads standard input; a UTF-8 BOM is ignored), read by
``edgefill.operations.read_paths``; and ``--skip-sent FILE`` for the commands that send
messages (``edgefill.sent_journal``)."""

from __future__ import annotations

from typing import Any

from edgefill.commands import values


def add_paths(parser: Any, example: str = "/img/a.jpg") -> None:
    parser.add_argument("paths", nargs="*", metavar="PATH", help=f"URI path, e.g. {example}")
    parser.add_argument(
        "--paths-file",
        metavar="FILE",
        type=values.paths_file,
        help="one path a line (# comments allowed); - reads standard input",
    )


def add_skip_sent(parser: Any) -> None:
    parser.add_argument(
        "--skip-sent",
        metavar="FILE",
        type=values.writable_file,
        help="skip the paths listed in FILE, and add to it each path SQS accepts: after a "
        "Ctrl-C or a failure, the same command again sends only the rest",
    )
