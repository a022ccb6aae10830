"""``--skip-sent FILE``: which paths a sending command (``prewarm``, ``backfill``,
``refresh``) already got onto the queue, so that a rerun sends only the rest.

The file is a paths file (one URI a line, ``#`` comments), so it can also be read with
``--paths-file``. A path is appended, and the file flushed and synced, as soon as SQS
accepted the message holding it: after a Ctrl-C, a crash or a failed batch it names
exactly the paths that are on the queue. A path is compared as sent (percent-encoded, as
``operations.as_uri`` makes it), so ``/a b.jpg`` typed again matches ``/a%20b.jpg``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from typing import Final

from edgefill.operations import OperatorError, as_uri

HEADER: Final = "# paths SQS accepted (edgefill --skip-sent); one a line\n"


class SentJournal:
    def __init__(self, path: str) -> None:
        self.path = path

    def already_sent(self) -> set[str]:
        """The paths the file lists (none when it does not exist yet)."""
        try:
            with open(self.path, encoding="utf-8-sig") as handle:
                lines = handle.read().splitlines()
        except FileNotFoundError:
            return set()
        except (OSError, UnicodeDecodeError) as error:
            raise OperatorError(f"--skip-sent {self.path}: cannot read it: {error}") from None
        return {line.strip() for line in lines if line.strip() and not line.startswith("#")}

    def skip(self, paths: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
        """``paths`` (as ``read_paths`` gives them) less those already sent."""
        sent = self.already_sent()
        return [(where, path) for where, path in paths if as_uri(where, path) not in sent]

    def record(self, sent: Iterable[str]) -> None:
        """Append ``sent`` paths, durably, before the command goes on."""
        lines = "".join(f"{path}\n" for path in sent)
        if not lines:
            return
        new = not os.path.exists(self.path)
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write((HEADER if new else "") + lines)
            handle.flush()
            os.fsync(handle.fileno())


def message_paths(body: str) -> list[str]:
    """The paths a message body carries, as a journal or a paths file lists them: a
    prewarm's ``paths``, a backfill's ``uri`` with its ``query``."""
    document = json.loads(body)
    if document.get("type") == "prewarm":
        return [str(path) for path in document["paths"]]
    query = document.get("query") or ""
    return [str(document["uri"]) + (f"?{query}" if query else "")]
