"""Which viewer hosts a prewarm message may name: only our own.

The warmer connects to CloudFront edge addresses and presents the message's ``host`` as
SNI and ``Host``. CloudFront serves every customer from the same edges, so a queue that
could name any host would turn the warmer into a load generator against another
customer's distribution. A message's ``host`` must therefore be ``EDGEFILL_VIEWER_HOST``,
the distribution domain, or one of ``EDGEFILL_ALLOWED_HOSTS`` (the template passes the
distribution's aliases there); anything else refuses the message as a whole. A port in
the value (``cdn.example.com:8443``) is ignored for the comparison: the edge port comes
from the configuration, never from a message.

**Wildcard aliases** (issue 19). CloudFront takes an alternate domain name ``*.example.com``
(``*.`` first, never ``*example.com`` nor ``a.*.example.com``), so the aliases may hold
one. Such a pattern allows a host of **exactly one more label**, leftmost:
``img.example.com``, not ``example.com`` and not ``a.b.example.com``. CloudFront itself
routes deeper names to the wildcard too, but a certificate's ``*.example.com`` covers
one label only (RFC 6125 §6.4.3), so a deeper name would fail TLS at every edge; and
``b.example.com`` may be delegated to someone else whose distribution holds
``*.b.example.com``. A deeper name is allowed by listing it (or its own wildcard). A
message host with a ``*`` in it never matches anything.
"""

from __future__ import annotations

from collections.abc import Iterable

from shared.config import PrewarmConfig
from shared.messages import WILDCARD_PREFIX, MessageError, is_host_name


def allowed_hosts(config: PrewarmConfig) -> frozenset[str]:
    """The viewer hosts ``config`` serves, lower case (wildcard aliases included)."""
    return frozenset(
        host.lower()
        for host in (config.viewer_host, config.distribution_domain, *config.allowed_hosts)
    )


def host_name(host: str) -> str:
    """``host`` without a port, lower case, without a trailing dot."""
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return name.rstrip(".").lower()


def host_allowed(host: str, allowed: Iterable[str]) -> bool:
    """``host`` (a port and a trailing dot ignored) is one of ``allowed``, or one label
    under one of its wildcard aliases (see the module docstring)."""
    name = host_name(host)
    if "*" in name:
        return False
    for pattern in (host_name(item) for item in allowed):
        if not pattern.startswith(WILDCARD_PREFIX):
            if name == pattern:
                return True
            continue
        suffix = pattern[1:]  # ".example.com"
        label = name[: -len(suffix)] if name.endswith(suffix) else ""
        if label and "." not in label and is_host_name(label):
            return True
    return False


def check_host(host: str, allowed: Iterable[str]) -> None:
    """Raise ``MessageError`` (field ``host``) unless ``host_allowed(host, allowed)``."""
    known = tuple(allowed)
    if not host_allowed(host, known):
        shown = sorted(frozenset(host_name(item) for item in known))
        raise MessageError(
            "host",
            f"{host[:80]!r} is not a host of this distribution; allowed: "
            f"{', '.join(shown)} (add more with EDGEFILL_ALLOWED_HOSTS)",
        )
