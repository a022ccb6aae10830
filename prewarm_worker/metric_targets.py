"""Which target names may become a CloudWatch metric dimension.

Each distinct dimension value is a new custom metric (billed, and kept for 15 months).
A target name comes from a message, and a sender may make one up in a valid shape
(``zz-fake-9``, ``ABC123-Z9``): it must not become a dimension. Only targets the worker's
configuration names (``EDGEFILL_TARGETS``) or knows a client subnet for (the built-in
regions and ``EDGEFILL_REGION_SUBNETS``) keep their name; every other is ``other``.
"""

from __future__ import annotations

from typing import Final

from shared.config import PrewarmConfig
from shared.edns import REGION_SUBNETS

OTHER_TARGET: Final = "other"


def metric_target(target: str, config: PrewarmConfig) -> str:
    """``target`` when the configuration knows it, else ``OTHER_TARGET``."""
    if target in config.targets or target in REGION_SUBNETS:
        return target
    if any(region == target for region, _ in config.region_subnets):
        return target
    return OTHER_TARGET
