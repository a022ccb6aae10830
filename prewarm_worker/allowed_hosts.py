"""Which viewer hosts a prewarm message may name: only our own.

The warmer connects to CloudFront edge addresses and presents the message's ``host`` as
SNI and ``Host``. CloudFront serves every customer from the same edges, so a queue that
could name any host would turn the warmer into a load generator against another
customer's distribution. A message's ``host`` must therefore be ``EDGEFILL_VIEWER_HOST``,
the distribution domain, or one of ``EDGEFILL_ALLOWED_HOSTS`` (the template passes the
distribution's aliases there); anything else refuses the message as a whole. A port in
the value (``cdn.example.com:8443``) is ignored for the comparison: the edge port comes
from the configuration, never from a message.
"""

from __future__ import annotations

from collections.abc import Iterable

from shared.config import PrewarmConfig
from shared.messages import MessageError


def allowed_hosts(config: PrewarmConfig) -> frozenset[str]:
    """The viewer hosts ``config`` serves, lower case."""
    return frozenset(
        host.lower()
        for host in (config.viewer_host, config.distribution_domain, *config.allowed_hosts)
    )


def host_name(host: str) -> str:
    """``host`` without a port, lower case, without a trailing dot."""
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return name.rstrip(".").lower()


def check_host(host: str, allowed: Iterable[str]) -> None:
    """Raise ``MessageError`` (field ``host``) unless ``host`` is one of ``allowed``."""
    known = frozenset(host_name(item) for item in allowed)
    if host_name(host) not in known:
        raise MessageError(
            "host",
            f"{host[:80]!r} is not a host of this distribution; allowed: "
            f"{', '.join(sorted(known))} (add more with EDGEFILL_ALLOWED_HOSTS)",
        )
