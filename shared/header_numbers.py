"""Numbers in HTTP header values (Content-Length, Age): ASCII digits, or no number.

``int()`` is the wrong parser for a header: it accepts ``'١٢٣'`` (any Unicode decimal),
``'1_000'``, ``'+5'`` and surrounding spaces, while ``'²'.isdigit()`` is true and
``int('²')`` raises. RFC 9110 writes these fields as ``1*DIGIT``, and DIGIT is ASCII.
"""

from __future__ import annotations

import re
from typing import Final

# At most 30 digits: more than any length or age, and int() of them stays cheap.
MAX_DIGITS: Final = 30
_DIGITS: Final = re.compile(rf"[0-9]{{1,{MAX_DIGITS}}}")


def header_number(value: str | None) -> int | None:
    """``value`` (optional whitespace around it, as a field value may have) as a
    non-negative integer when it is ASCII digits only; None otherwise, never raises."""
    if not isinstance(value, str):
        return None
    stripped = value.strip(" \t")
    if not _DIGITS.fullmatch(stripped):
        return None
    return int(stripped)
