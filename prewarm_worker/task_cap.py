"""How much work one prewarm message may ask for.

A message means paths × targets × encodings requests. The message limits alone (1,000
paths, 200 targets, any number of encodings within SQS's 1 MiB) would allow hundreds of
thousands of tasks, more than one invocation can warm and more task objects than its
memory should hold. So a message may ask for at most ``MAX_TASKS_PER_MESSAGE`` tasks; a
larger one is refused as a whole, from the lengths of its lists alone (constant time
and memory), before any task exists or any DNS query is sent. The count uses the lists
as sent, duplicates included: it is what the sender asked for. ``edgefill prewarm``
sizes its messages with the same rule.

The messages a message leads to — re-enqueued retries and expansion follow-ups — are
sized by bytes as well as by paths (``shared.messages.prewarm_messages``): one path with
the message's targets, encodings and host must always fit SQS's 1 MiB, which
``check_message_room`` proves before any work, so a message is never warmed only for its
follow-ups to fail to send.
"""

from __future__ import annotations

from typing import Final

from shared.messages import (
    MAX_ATTEMPT,
    MAX_BODY_BYTES,
    MAX_DEPTH,
    MAX_URI_BYTES,
    MAX_VARIABLES_BYTES,
    MessageError,
    PrewarmMessage,
    to_json,
)

# 20,000 tasks of a typical 100 KB object are 2 GB at the edges: minutes of work at the
# worker's 30 threads, well within the 300 s timeout for small objects, and what the
# re-enqueue of "not started" tasks covers for large ones.
MAX_TASKS_PER_MESSAGE: Final = 20_000
# What an expansion follow-up may add to its message: a manifest's variables, each
# character at most 6 bytes of JSON (a \uXXXX escape).
FOLLOW_UP_VARIABLES_RESERVE: Final = 6 * MAX_VARIABLES_BYTES


def task_count(paths: int, targets: int, encodings: int) -> int:
    """The tasks a message asks for: the product of its list lengths."""
    return paths * targets * encodings


def check_task_cap(paths: int, targets: int, encodings: int) -> None:
    """Raise ``MessageError`` naming the field to shrink when the product is over the cap.

    The field named is the one a sender splits first: ``paths`` when the message holds
    more than one, else ``targets``, else ``encodings``.
    """
    tasks = task_count(paths, targets, encodings)
    if tasks <= MAX_TASKS_PER_MESSAGE:
        return
    field = "paths" if paths > 1 else "targets" if targets > 1 else "encodings"
    raise MessageError(
        field,
        f"{paths} paths × {targets} targets × {encodings} encodings = {tasks} tasks; "
        f"a message may ask for at most {MAX_TASKS_PER_MESSAGE}: split it over several",
    )


def paths_per_message(targets: int, encodings: int) -> int:
    """The most paths one message may carry with ``targets`` and ``encodings`` (0 when
    even one path would be too many)."""
    return MAX_TASKS_PER_MESSAGE // max(1, targets * encodings)


def check_message_room(
    message: PrewarmMessage, targets: tuple[str, ...], encodings: tuple[str, ...], host: str
) -> None:
    """Raise ``MessageError`` (field ``body``) when a message carrying on one path of this
    one — a retry (``attempt + 1``) or an expansion follow-up, with the longest path a
    message may hold and room for a manifest's variables — would not fit SQS's 1 MiB."""
    envelope = PrewarmMessage(
        paths=("/",),
        targets=targets,
        encodings=encodings,
        host=host,
        source=message.source or "expand",
        attempt=MAX_ATTEMPT,
        expand=True,
        depth=MAX_DEPTH,
    )
    worst = len(to_json(envelope)) + MAX_URI_BYTES + FOLLOW_UP_VARIABLES_RESERVE
    if worst > MAX_BODY_BYTES:
        raise MessageError(
            "body",
            f"its targets, encodings and host take {len(to_json(envelope))} bytes: a retry or "
            f"follow-up of one path could exceed SQS's {MAX_BODY_BYTES} bytes",
        )
