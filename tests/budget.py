"""How many examples a Hypothesis property runs.

Each property declares its deep count (`@settings(max_examples=examples(1500))`). `make test`
runs a quarter of it, never fewer than Hypothesis's own default of 100: Hypothesis tries
small and boundary values early (empty, one character, the limits of each strategy), and the
shapes worth keeping are pinned with `@example`, which runs whatever the count. The suite
has to stay within three minutes on two cores, and at their deep counts these properties
took about a third of its in-process CPU (docs/BENCHMARKS.md, "The test suite's time").
`make fuzz` (EDGEFILL_FUZZ=1) runs four times the deep count, for the search that finds new
shapes; run it after changing a parser, a key mapping or a header rule.
"""

from __future__ import annotations

import os

_FUZZ = os.environ.get("EDGEFILL_FUZZ", "") not in ("", "0")
_FLOOR = 100


def examples(deep: int) -> int:
    """The max_examples for a property whose deep count is `deep`."""
    if _FUZZ:
        return deep * 4
    return max(_FLOOR, deep // 4)
