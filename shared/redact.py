"""What of a viewer's URL may be logged: the path and the query parameter names, never a
query value nor a URL's userinfo.

A viewer's signed URL (``?Expires=...&Signature=...&Key-Pair-Id=...``, ``?X-Amz-Signature=``,
``?token=``) is a credential: whoever reads it in CloudWatch can replay it until it
expires. So every log line of the edge function and the workers that names a URI, a
query or a URL renders it through this module. Standard library only, and a few
microseconds per call: the edge function imports it.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import urlsplit

# What stands in for a removed value: short, and visibly not a value.
REDACTED: Final = "*"
# A log line names at most this many parameters of one query (a query may hold thousands);
# the rest are counted, not named.
MAX_NAMES: Final = 20
# A parameter name is cut to this many characters (a name can be a value in disguise:
# ``?eyJhbGciOi...`` is a token with no "=").
MAX_NAME_CHARS: Final = 64


def query_names(query: str) -> list[str]:
    """The parameter names of a raw query string (``a=1&b&a=2`` → ``["a", "b", "a"]``),
    at most ``MAX_NAMES``, each cut to ``MAX_NAME_CHARS``; values are dropped."""
    names: list[str] = []
    for part in query.split("&"):
        if not part:
            continue
        if len(names) == MAX_NAMES:
            names.append(f"...{query.count('&') + 1 - MAX_NAMES} more")
            break
        names.append(part.partition("=")[0][:MAX_NAME_CHARS])
    return names


def redact_query(query: str) -> str:
    """A raw query string with every value replaced: ``a=1&b=2&c`` → ``a=*&b=*&c``."""
    parts: list[str] = []
    for index, part in enumerate(query.split("&")):
        if index == MAX_NAMES:
            parts.append(f"...{query.count('&') + 1 - MAX_NAMES} more")
            break
        name, equals, _ = part.partition("=")
        parts.append(name[:MAX_NAME_CHARS] + (f"={REDACTED}" if equals else ""))
    return "&".join(parts)


def redact_uri(uri: str) -> str:
    """A path with its query (if any) redacted: ``/a.jpg?sig=x`` → ``/a.jpg?sig=*``.
    A fragment is dropped whole."""
    path, question, query = uri.partition("#")[0].partition("?")
    return path + (question + redact_query(query) if question else "")


def redact_url(url: str) -> str:
    """A URL fit for a log line: no userinfo, query values redacted, no fragment.

    ``https://user:pw@host:8443/a?Signature=x#f`` → ``https://host:8443/a?Signature=*``.
    Text that does not parse as a URL is treated as a path, so nothing after ``?`` leaks.
    """
    try:
        parts = urlsplit(url)
        host = parts.netloc.rpartition("@")[2]
    except ValueError:  # e.g. an unbalanced "[" in the host
        return redact_uri(url.rpartition("@")[2])
    head = f"{parts.scheme}://{host}" if parts.scheme else (f"//{host}" if host else "")
    return head + parts.path + (f"?{redact_query(parts.query)}" if parts.query else "")
