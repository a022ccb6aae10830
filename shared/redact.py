"""What of a viewer's URL may be logged: the path and the query parameter names, never a
query value nor a URL's userinfo.

A viewer's signed URL (``?Expires=...&Signature=...&Key-Pair-Id=...``, ``?X-Amz-Signature=``,
``?token=``) is a credential: whoever reads it in CloudWatch can replay it until it
expires. So every log line of the edge function and the workers that names a URI, a
query or a URL renders it through this module. Standard library only, and a few
microseconds per call: the edge function imports it.
"""

from __future__ import annotations

import re
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
    """A path with its query (if any) redacted: ``/a.jpg?sig=x`` → ``/a.jpg?sig=*``. A
    fragment is dropped whole; a full URL is rendered by ``redact_url``."""
    if "//" in uri:
        return redact_url(uri)
    path, question, query = uri.partition("#")[0].partition("?")
    return path + (question + redact_query(query) if question else "")


def redact_url(url: str, *, keep_query_names: bool = True) -> str:
    """A URL fit for a log line: no userinfo, no fragment, and query values redacted
    (``keep_query_names=False``: the whole query dropped, a ``?`` left to show there was one).

    ``https://user:pw@host:8443/a?Signature=x#f`` → ``https://host:8443/a?Signature=*``.
    Text that does not parse as a URL is redacted as free text (``redact_text``).
    """
    try:
        parts = urlsplit(url)
        host = parts.netloc.rpartition("@")[2]
    except ValueError:  # e.g. an unbalanced "[" in the host: redacted as free text
        text = redact_text(url.partition("#")[0])
        if keep_query_names or "?" not in text:
            return text
        return text.partition("?")[0] + "?"
    head = f"{parts.scheme}://{host}" if parts.scheme else (f"//{host}" if host else "")
    if not parts.query:
        return head + parts.path
    return head + parts.path + "?" + (redact_query(parts.query) if keep_query_names else "")


# In free text (an exception's message, an error reason): a query runs from "?" to the
# first character that cannot be in a URL ("'" can, so a quoted URL's closing quote goes
# with its last value); userinfo sits between "//" and "@".
_QUERY_IN_TEXT = re.compile(r"\?([^\s\"<>\\^`{|}]+)")
_USERINFO_IN_TEXT = re.compile(r"(?<=//)[^/\s\"'<>@?#]*@")


def redact_text(text: str) -> str:
    """``text`` (a log message, an exception's message) with every URL query's values
    redacted and every URL's userinfo removed; text without "?" or "@" costs one scan."""
    if "@" in text:
        text = _USERINFO_IN_TEXT.sub("", text)
    if "?" in text:
        text = _QUERY_IN_TEXT.sub(lambda match: "?" + redact_query(match.group(1)), text)
    return text
