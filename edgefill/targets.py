"""Targets checked where they are typed (``--targets`` of ``prewarm``, ``estimate``,
``warm``, ``check``), before anything is sent or asked.

A target is a POP code (``NRT20-P2``) or a region the warmer can resolve: one with a
client subnet in its table, the built-in ``shared.edns.REGION_SUBNETS`` plus
``EDGEFILL_REGION_SUBNETS`` (and ``--region-subnets`` for ``warm``/``check``). A
region-shaped code without one (``ap-northeast-9``) would be queued and then given up by
the worker for want of a subnet; the CLI refuses it (exit 2), with a "did you mean" when
a known region is close (``difflib``), and the worker keeps its own check. A POP code
that does not parse gets its likely spelling (``nrt20p2`` → ``NRT20-P2``) when there is one.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from typing import Final

from edgefill.did_you_mean import closest
from edgefill.operations import OperatorError
from shared.messages import is_pop_code, is_region_code

_POP_LIKE: Final = re.compile(r"([A-Za-z]{3})(\d{1,3})[-_ ]?([A-Za-z])(\d{1,3})")


def check_targets(
    targets: Iterable[str],
    regions: Collection[str],
    flag: str = "--targets",
    adding: str = "EDGEFILL_REGION_SUBNETS adds one",
) -> None:
    """``OperatorError`` naming ``flag`` for the first target that is neither a POP code
    nor one of ``regions`` (those with a client subnet); ``adding`` says how to add one."""
    for target in targets:
        if is_pop_code(target) or target in regions:
            continue
        raise OperatorError(f"{flag}: {_problem(target, regions, adding)}")


def _problem(target: str, regions: Collection[str], adding: str) -> str:
    close = closest(target, regions)
    pop = _POP_LIKE.fullmatch(target.strip())
    if pop is not None:
        spelled = f"{pop[1].upper()}{pop[2]}-{pop[3].upper()}{pop[4]}"
        return f"{target!r} is not a POP code; did you mean {spelled}? (a POP code: NRT20-P2)"
    hint = f"did you mean {close}? " if close else ""
    if is_region_code(target):
        return (
            f"{target!r}: no client subnet is known for this region, so its edge cannot be "
            f"found ({hint}{adding})"
        )
    return (
        f"{target!r} is neither a region with a known client subnet (us-east-1) nor a "
        f"POP code (NRT20-P2){'; ' + hint.strip() if hint else ''}"
    )


def worker_regions(extra: str | None = None) -> set[str]:
    """The regions the prewarm worker's table resolves: the built-in one, plus those of
    ``EDGEFILL_REGION_SUBNETS`` (``extra``, the raw JSON) when it parses."""
    import json

    from shared.edns import REGION_SUBNETS

    regions = set(REGION_SUBNETS)
    if extra:
        try:
            table = json.loads(extra)
        except ValueError:
            table = {}
        if isinstance(table, dict):
            regions |= {str(region) for region in table}
    return regions
