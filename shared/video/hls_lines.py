"""HLS playlist lines as RFC 8216 reads them: attribute lists and ``EXT-X-DEFINE``.

``attributes`` reads an attribute list (RFC 8216 §4.2) strictly from the left and stops at
the first malformed attribute, so a quoted value can never be re-read as an attribute.

``substitute_variables`` applies RFC 8216bis §4.3 (Variable Substitution) and §4.4.2.3
(``EXT-X-DEFINE``) to a playlist's lines, in order:
- ``NAME``/``VALUE`` defines a variable; ``QUERYPARAM`` takes the value of that query
  parameter of the playlist's own URI; ``IMPORT`` takes the variable of that name from
  the multivariant playlist that named this one.
- ``{$name}`` is replaced in URI lines and in quoted-string attribute values (a
  ``VALUE`` included, as hls.js does), never in other text (an ``EXTINF`` title stays).
- The playlist fails to parse (``VariableError``, naming the variable) on a reference to a
  variable not defined by a preceding tag, a name defined twice, an ``IMPORT`` the
  multivariant playlist does not define, a ``QUERYPARAM`` the URI does not carry, or a
  malformed tag.

Bounds: a variable's value is at most ``MAX_VARIABLE_BYTES`` (after its own
substitution), the playlist at most ``MAX_VARIABLES`` of them holding ``MAX_VARIABLES_BYTES``
together (what a message may carry on to a media playlist), and the substituted text at
most ``max_bytes``: the size of every substitution is known before its string is built,
so a small playlist cannot make a large one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final
from urllib.parse import parse_qsl

from shared.messages import CONTROL_CHARACTERS, MAX_VARIABLES_BYTES, VARIABLE_NAME

# A URI is at most 8 KiB (the v1 message rule); a variable longer than that names nothing.
MAX_VARIABLE_BYTES: Final = 8192
MAX_VARIABLES: Final = 1000
_ATTRIBUTE = re.compile(r'\s*([A-Za-z0-9-]+)\s*=\s*("[^"\r\n]*"|[^",]*?)\s*(?:,|$)')
_QUOTED = re.compile(r'"[^"\r\n]*"')
_REFERENCE = re.compile(r"\{\$([A-Za-z0-9_-]{1,256})\}")
DEFINE: Final = "#EXT-X-DEFINE:"


class VariableError(ValueError):
    """The playlist fails to parse under RFC 8216bis's variable rules."""


def attributes(text: str) -> dict[str, str]:
    """The attribute list after a tag's ``:``: names upper-cased, quotes removed; reading
    stops at the first attribute that is not ``NAME=value``."""
    out: dict[str, str] = {}
    position, end = 0, len(text)
    while position < end:
        match = _ATTRIBUTE.match(text, position)
        if match is None or match.end() == position:
            break
        value = match.group(2)
        if value.startswith('"'):
            value = value[1:-1]
        out.setdefault(match.group(1).upper(), value)
        position = match.end()
    return out


def substitute_variables(
    lines: list[str],
    query: str,
    imports: Mapping[str, str] | None,
    max_bytes: int,
) -> dict[str, str]:
    """Substitute every variable reference in ``lines`` in place; returns the variables the
    playlist defines. ``query``: the playlist URI's query (for ``QUERYPARAM``);
    ``imports``: its multivariant playlist's variables (None: not known here)."""
    variables: dict[str, str] = {}
    budget = max_bytes - sum(len(line) + 1 for line in lines)
    for index, line in enumerate(lines):
        if line.startswith(DEFINE):
            line, budget = _substituted_quoted(line, variables, index, budget)
            lines[index] = line
            _define(line[len(DEFINE) :], variables, query, imports, index + 1)
        elif "{$" not in line:
            continue
        elif line.startswith("#"):
            if line.startswith("#EXT"):
                lines[index], budget = _substituted_quoted(line, variables, index, budget)
        else:
            lines[index], budget = _substituted(line, variables, index, budget)
    return variables


def _define(
    text: str,
    variables: dict[str, str],
    query: str,
    imports: Mapping[str, str] | None,
    line: int,
) -> None:
    found = attributes(text)
    forms = [name for name in ("NAME", "IMPORT", "QUERYPARAM") if name in found]
    if len(forms) != 1:
        raise VariableError(
            f"EXT-X-DEFINE at line {line} needs exactly one of NAME, IMPORT or QUERYPARAM"
        )
    form = forms[0]
    name = found[form]
    if not VARIABLE_NAME.fullmatch(name):
        raise VariableError(f"EXT-X-DEFINE at line {line} names {name[:40]!r}: not a variable name")
    if name in variables:
        raise VariableError(f"EXT-X-DEFINE defines variable {name[:40]!r} twice (line {line})")
    if len(variables) >= MAX_VARIABLES:
        raise VariableError(f"more than {MAX_VARIABLES} EXT-X-DEFINE variables")
    value = _value(form, name, found, query, imports, line)
    if len(value.encode("utf-8", "surrogatepass")) > MAX_VARIABLE_BYTES:
        raise VariableError(f"variable {name[:40]!r} is longer than {MAX_VARIABLE_BYTES} bytes")
    if CONTROL_CHARACTERS.search(value):
        raise VariableError(f"variable {name[:40]!r} holds a control character")
    variables[name] = value
    # A media playlist's fill or follow-up carries its multivariant playlist's variables.
    if sum(len(f"{key}{held}".encode()) for key, held in variables.items()) > MAX_VARIABLES_BYTES:
        raise VariableError(f"the playlist's variables hold more than {MAX_VARIABLES_BYTES} bytes")


def _value(
    form: str,
    name: str,
    found: Mapping[str, str],
    query: str,
    imports: Mapping[str, str] | None,
    line: int,
) -> str:
    """The value an ``EXT-X-DEFINE`` of ``form`` gives variable ``name``."""
    if form == "NAME":
        value = found.get("VALUE")
        if value is None:
            raise VariableError(f"EXT-X-DEFINE of variable {name[:40]!r} has no VALUE")
        return value
    if form == "IMPORT":
        value = (imports or {}).get(name)
        if value is None:
            where = "its multivariant playlist does not define it"
            if imports is None:
                where = "the multivariant playlist's variables are not known here"
            raise VariableError(f"variable {name[:40]!r} is IMPORTed but {where} (line {line})")
        return value
    value = dict(parse_qsl(query, keep_blank_values=True)).get(name)
    if value is None:
        raise VariableError(
            f"variable {name[:40]!r} comes from QUERYPARAM but the playlist's URI has no "
            f"such query parameter (line {line})"
        )
    return value


def _substituted_quoted(
    line: str, variables: Mapping[str, str], index: int, budget: int
) -> tuple[str, int]:
    """``line`` with references replaced inside its quoted strings only."""
    if "{$" not in line:
        return line, budget
    left = budget

    def one(quoted: re.Match[str]) -> str:
        nonlocal left
        text, left = _substituted(quoted.group(0), variables, index, left)
        return text

    return _QUOTED.sub(one, line), left


def _substituted(
    text: str, variables: Mapping[str, str], index: int, budget: int
) -> tuple[str, int]:
    """``text`` with every reference replaced; the size is checked before it is built."""
    for match in _REFERENCE.finditer(text):
        value = variables.get(match.group(1))
        if value is None:
            raise VariableError(
                f"variable {match.group(1)[:40]!r} is used at line {index + 1} "
                "but no EXT-X-DEFINE before it defines it"
            )
        budget -= len(value) - len(match.group(0))
        if budget < 0:
            raise VariableError("variable substitution makes the playlist too long")
    return _REFERENCE.sub(lambda match: variables[match.group(1)], text), budget
