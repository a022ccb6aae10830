"""Which viewer host ``edgefill prewarm --host`` may name: the worker's rule, checked here.

The prewarm worker refuses a message whose ``host`` is not its viewer host, its
distribution domain or one of ``EDGEFILL_ALLOWED_HOSTS`` (``prewarm_worker.allowed_hosts``).
With ``--stack`` the CLI knows those hosts (the ``PrewarmAllowedHosts`` output; for a stack
deployed before that output, and for an edge stack, the ``DistributionDomain`` and
``ViewerHost`` outputs and the ``ViewerHost`` and ``Aliases`` parameters) and refuses
such a ``--host`` before anything is sent, rather than sending messages the worker would
only move to the DLQ.
"""

from __future__ import annotations

from collections.abc import Iterable

from edgefill.operations import OperatorError
from edgefill.stack import StackInfo
from prewarm_worker.allowed_hosts import check_host
from shared.messages import MessageError


def stack_allowed_hosts(stack: StackInfo) -> tuple[str, ...]:
    """The hosts the stack's prewarm worker accepts (empty when the stack names none)."""
    listed = stack.output("PrewarmAllowedHosts")
    if listed is None:
        listed = ",".join(
            (
                stack.output("DistributionDomain") or "",
                stack.output("ViewerHost") or stack.parameters.get("ViewerHost", ""),
                stack.parameters.get("Aliases", ""),
            )
        )
    return tuple(dict.fromkeys(h.strip() for h in listed.split(",") if h.strip()))


def check_prewarm_host(host: str, allowed: Iterable[str], stack_name: str) -> None:
    """``OperatorError`` naming ``--host`` unless ``host`` is one of ``allowed``."""
    known = tuple(allowed)
    if not known:
        raise OperatorError(
            f"--host: stack {stack_name!r} names no distribution domain or viewer host to "
            "check it against"
        )
    try:
        check_host(host, known)
    except MessageError:
        raise OperatorError(
            f"--host: {host[:80]!r} is not a host of stack {stack_name!r} (allowed: "
            f"{', '.join(known)}); the prewarm worker would refuse every message"
        ) from None
