"""The "did you mean" of a mistyped code (a region, a target): the closest known one."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(text: str, known: Iterable[str]) -> str | None:
    """The known code closest to ``text``: one with the same letters first (a swap,
    ``us-esat-1``), else difflib's closest (``ap-northeast-9`` → ``ap-northeast-1``)."""
    text = text.lower()
    ordered = sorted(known)
    swapped = [code for code in ordered if sorted(code) == sorted(text)]
    if swapped:
        return swapped[0]
    ratios = {code: difflib.SequenceMatcher(None, text, code).ratio() for code in ordered}
    best = max(ratios.values(), default=0.0)
    # Equally close codes (ap-northeast-1, -2, -3 for ap-northeast-9): the first in order.
    return next((code for code in ordered if ratios[code] == best), None) if best >= 0.75 else None
