"""Whether a launch stays under the operator's caps (``--max-bytes``, ``--max-usd``).

An estimate with paths of unknown size is not a proven upper bound, so under a cap it is
refused too: the caps only let through what they can vouch for."""

from __future__ import annotations

from edgefill.cost_estimate import Estimate


def cap_problems(estimate: Estimate, max_bytes: int | None, max_usd: float | None) -> list[str]:
    """Why ``estimate`` may not be sent under the caps; empty when it may."""
    if max_bytes is None and max_usd is None:
        return []
    problems = []
    if max_bytes is not None and estimate.bytes > max_bytes:
        problems.append(f"{estimate.bytes} bytes is over --max-bytes {max_bytes}")
    if max_usd is not None and estimate.usd > max_usd:
        problems.append(f"${estimate.usd:.4f} is over --max-usd {max_usd:g}")
    if estimate.unknown_sizes:
        problems.append(
            f"{estimate.unknown_sizes} of {estimate.paths} paths have no known size, so the "
            "cap cannot be checked (is each path in the bucket? try --origin-url)"
        )
    return problems
