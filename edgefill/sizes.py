"""Byte sizes as operators type and read them.

Typed (``--max-bytes``): a whole number of bytes, or a number with a unit, decimal or
binary, as the AWS bill (GB = 10⁹ bytes) and ``ls -h`` (GiB = 2³⁰ bytes) say them:
``50GB``, ``1.5TiB``, ``750 MB``, ``20000000``. Units: ``B``, ``kB``/``KB``, ``MB``,
``GB``, ``TB``, ``PB`` (powers of 1000) and ``KiB``, ``MiB``, ``GiB``, ``TiB``, ``PiB``
(powers of 1024), read without regard to case (``gb`` is ``GB``: here a ``b`` is always a
byte). A fraction is allowed with a unit and rounds down to whole bytes.

Read (tables): ``human_size`` in binary units with one decimal (``1.5 GiB``); ``--json``
always carries the exact number of bytes.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Final

UNITS: Final = {
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "pb": 1000**5,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
    "pib": 1024**5,
}
ACCEPTED: Final = "bytes, or a number with a unit: 50GB, 1.5TiB, 750MB (GB = 10^9, GiB = 2^30)"
_SIZE: Final = re.compile(r"(?P<number>[0-9]+(?:\.[0-9]+)?)\s*(?P<unit>[A-Za-z]*)")
_BINARY: Final = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def parse_size(text: str) -> int:
    """Bytes from ``text`` (see the module docstring); ``ValueError`` naming the accepted
    form otherwise."""
    found = _SIZE.fullmatch(text.strip())
    unit = found.group("unit").lower() if found else ""
    if found is None or (unit and unit not in UNITS):
        raise ValueError(f"{text!r} is not a size: {ACCEPTED}")
    number = found.group("number")
    if not unit and "." in number:
        raise ValueError(f"{text!r} is not a whole number of bytes: {ACCEPTED}")
    try:
        return int(Decimal(number) * UNITS[unit or "b"])
    except InvalidOperation:  # pragma: no cover - the pattern admits only decimal digits
        raise ValueError(f"{text!r} is not a size: {ACCEPTED}") from None


def human_size(size: int) -> str:
    """``1.5 GiB``; below 1 KiB the exact ``512 B``."""
    value = float(size)
    for unit in _BINARY:
        if value < 1024 or unit == _BINARY[-1]:
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"  # pragma: no cover - the loop always returns
