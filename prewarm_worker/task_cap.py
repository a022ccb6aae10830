"""How much work one prewarm message may ask for.

A message means paths × targets × encodings requests. The message limits alone (1,000
paths, 200 targets, any number of encodings within SQS's 1 MiB) would allow hundreds of
thousands of tasks, more than one invocation can warm and more task objects than its
memory should hold. So a message may ask for at most ``MAX_TASKS_PER_MESSAGE`` tasks; a
larger one is refused as a whole, from the lengths of its lists alone (constant time
and memory), before any task exists or any DNS query is sent. The count uses the lists
as sent, duplicates included: it is what the sender asked for. ``edgefill prewarm``
sizes its messages with the same rule.
"""

from __future__ import annotations

from typing import Final

from shared.messages import MessageError

# 20,000 tasks of a typical 100 KB object are 2 GB at the edges: minutes of work at the
# worker's 30 threads, well within the 300 s timeout for small objects, and what the
# re-enqueue of "not started" tasks covers for large ones.
MAX_TASKS_PER_MESSAGE: Final = 20_000


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
