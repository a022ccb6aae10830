"""How a copy is planned: how big it may be, how it is cut into parts, until when it may
start them, and the fixed inputs of one copy (``CopyJob``).

The part size is the plan's ``part_bytes``, grown past ``MAX_PARTS`` parts (S3 allows at
most 10,000) to a whole number of 64-byte MD5 blocks, so a resumable MD5 can still save
its state between parts. A body of unknown length (no Content-Length) is cut for the
largest body the plan accepts (``max_object_bytes``): its size is known only at its end,
after its parts are in S3, so they must be big enough from the first one. Every module
that cuts, checks or resumes parts asks ``part_bytes_for`` and ``part_size`` here: a
checkpoint is trusted only when it was cut exactly as this worker would cut it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

from shared.object_store import ObjectStore
from shared.origin import OriginClient
from shared.read_deadline import ReadBudget

# S3 allows at most 10,000 parts; bigger objects get bigger parts (and a bigger bound).
MAX_PARTS: Final = 10_000
# MD5 works on 64-byte blocks: its state can be saved only at a block boundary.
MD5_BLOCK: Final = 64


@dataclass(frozen=True, slots=True)
class CopyPlan:
    """How big a copy may be, how it is cut, and until when it may start new parts."""

    max_object_bytes: int
    part_bytes: int
    parts_in_flight: int
    # ``time.monotonic()`` after which no new part starts: the copy is abandoned (upload
    # aborted, transient failure) while the invocation still has time to clean up,
    # rather than be killed by the Lambda timeout with an upload left open.
    deadline: float | None = None
    # ``time.monotonic()`` after which a resumable copy starts no part and hands over to
    # a continuation (see ``admission.py``); None: the copy never hands over.
    handover_at: float | None = None


def part_bytes_for(length: int | None, plan: CopyPlan) -> int:
    """The part size a copy of ``length`` bytes (None: unknown) uses under ``plan``: at
    most ``MAX_PARTS`` parts, whatever the length up to ``plan.max_object_bytes``."""
    # Unknown: any length up to the limit must fit (the streamed copy stops at the limit).
    fitted = plan.max_object_bytes if length is None else length
    # A grown part stays a whole number of 64-byte MD5 blocks (a resumable MD5 saves its
    # state only between blocks).
    grown = -(-math.ceil(fitted / MAX_PARTS) // MD5_BLOCK) * MD5_BLOCK
    return max(plan.part_bytes, grown)


def part_count(length: int, part_bytes: int) -> int:
    """How many parts of ``part_bytes`` an object of ``length`` bytes has."""
    return math.ceil(length / part_bytes)


def part_size(number: int, part_bytes: int, length: int) -> int:
    """The size of part ``number`` (1-based): ``part_bytes``, the last one what is left."""
    return min(part_bytes, length - (number - 1) * part_bytes)


@dataclass(frozen=True, slots=True)
class CopyJob:
    """One copy's fixed inputs: the origin URL it reads, the key it writes (``store``
    may be one that replaces a version, ``ObjectStore.replacing``), its plan, and the
    read budget every origin read ends by."""

    origin: OriginClient
    store: ObjectStore
    key: str
    url: str
    plan: CopyPlan
    budget: ReadBudget | None
