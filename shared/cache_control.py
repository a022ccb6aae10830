"""RFC 9111 in one place: Cache-Control parsed once, the numbers and dates caches read,
and a response's freshness (§4.2). Storability (``backfill_worker/transfer/storable.py``)
and the copies' lifetimes (``backfill_worker/freshness/lifetime.py``) both read headers
through this module, so the two can never disagree about the same header.

Pure (no I/O, no clock: times are arguments) and it never raises, whatever the header
values hold. The rules, each with its section:

- **Lists** (RFC 9110 §5.6.1): elements split on commas *outside* quoted strings; empty
  elements and the whitespace around them are ignored; a quoted string keeps its commas
  and its backslash escapes are undone (§5.6.4). A field sent on several lines arrives
  joined by commas (§5.3), which is the same list.
- **Directive names** are compared case-insensitively (RFC 9111 §5.2); an argument may be
  a token or a quoted string, recipients accept both (§5.2), so ``max-age="60"`` is 60.
- **delta-seconds** (§1.2.2) are ASCII digits only (``int()`` would take ``'١٢٣'``, and
  ``'²'.isdigit()`` is true); a value too large to represent is 2^31 seconds.
- **Duplicates and invalid values** (§4.2.1): a seconds directive that repeats with
  differing values, has no argument or one that is not delta-seconds makes the response
  *stale* (the RFC lets a cache choose "stale"; a shared cache that nothing corrects
  takes the restrictive reading). Repeating the same value is one directive.
- **Age** (§5.1): the first member of a list; a value that is not delta-seconds is ignored.
- **HTTP dates** (RFC 9110 §5.6.7): IMF-fixdate, and the obsolete RFC 850 and asctime
  forms a recipient must accept; nothing else (``email.utils`` would read far more).
- **Freshness lifetime** (§4.2.1), for a shared cache: ``s-maxage``, else ``max-age``,
  else ``Expires − Date`` (an invalid Expires is already expired, §5.3; Expires is
  ignored beside max-age or s-maxage), else the heuristic (§4.2.2): 10 % of the time
  from Last-Modified to Date, at most the default; without Last-Modified, the default.
- **Current age** (§4.2.3): the larger of the apparent age (receipt time − Date, never
  negative) and Age (+ the response delay when the request time is known).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from shared.header_numbers import header_number

# RFC 9111 §1.2.2: "the greatest integer it can represent" may be taken as 2^31.
MAX_DELTA_SECONDS: Final = 2**31
# RFC 9111 §4.2.2: "A typical setting of this fraction might be 10%".
HEURISTIC_FRACTION: Final = 0.1
# Directives whose argument is delta-seconds.
SECONDS_DIRECTIVES: Final = ("max-age", "s-maxage", "stale-if-error", "stale-while-revalidate")
# Directives that forbid serving the copy stale (§4.2.4: §5.2.2.2, §5.2.2.8, §5.2.2.10).
NO_STALE_DIRECTIVES: Final = ("must-revalidate", "proxy-revalidate", "s-maxage")

_DIGITS = re.compile(r"[0-9]+")
# A directive name is a token (RFC 9110 §5.6.2).
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_WEEKDAYS: Final = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS: Final = (
    *("Jan", "Feb", "Mar", "Apr", "May", "Jun"),
    *("Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
)
_MONTH = "(" + "|".join(_MONTHS) + ")"
_WEEKDAY = "(" + "|".join(_WEEKDAYS) + ")"
_TIME = "([0-9]{2}):([0-9]{2}):([0-9]{2})"
# RFC 9110 §5.6.7: IMF-fixdate, rfc850-date, asctime-date (ASCII digits only).
_IMF_FIXDATE = re.compile(rf"{_WEEKDAY}, ([0-9]{{2}}) {_MONTH} ([0-9]{{4}}) {_TIME} GMT")
_RFC850_DATE = re.compile(
    rf"(Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), "
    rf"([0-9]{{2}})-{_MONTH}-([0-9]{{2}}) {_TIME} GMT"
)
_ASCTIME_DATE = re.compile(rf"{_WEEKDAY} {_MONTH} ([0-9 ][0-9]) {_TIME} ([0-9]{{4}})")
# Longer header values are not dates.
_MAX_DATE_CHARS: Final = 64


def split_list(value: str | None) -> list[str]:
    """The elements of a comma-separated field value (RFC 9110 §5.6.1), commas inside
    quoted strings kept, empty elements dropped, each element stripped."""
    if not value:
        return []
    elements: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in value:
        if quoted:
            current.append(char)
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                quoted = False
        elif char == ",":
            elements.append("".join(current))
            current = []
        else:
            if char == '"':
                quoted = True
            current.append(char)
    elements.append("".join(current))
    return [element.strip(" \t") for element in elements if element.strip(" \t")]


def delta_seconds(value: str | None) -> int | None:
    """RFC 9111 §1.2.2 delta-seconds: ASCII digits only (``shared/header_numbers.py``),
    surrounding whitespace allowed; a value beyond 2^31 is 2^31, however many digits it
    has. None when ``value`` is absent or not delta-seconds."""
    number = header_number(value)
    if number is not None:
        return min(number, MAX_DELTA_SECONDS)
    # More digits than header_number reads: still a number (leading zeros aside, a huge one).
    text = value.strip(" \t") if isinstance(value, str) else ""
    if not _DIGITS.fullmatch(text):
        return None
    significant = header_number(text.lstrip("0") or "0")
    return MAX_DELTA_SECONDS if significant is None else min(significant, MAX_DELTA_SECONDS)


def age_value(value: str | None) -> int | None:
    """The Age field (RFC 9111 §5.1): the first member of a list, as delta-seconds; None
    when absent or invalid (a cache ignores an invalid Age)."""
    members = split_list(value)
    return delta_seconds(members[0]) if members else None


def http_date(value: str | None) -> datetime | None:
    """An HTTP date (RFC 9110 §5.6.7: IMF-fixdate, RFC 850, asctime) as an aware UTC
    datetime; None for anything else, a date that does not exist included."""
    if value is None or len(value) > _MAX_DATE_CHARS:
        return None
    text = value.strip(" \t")
    try:
        if match := _IMF_FIXDATE.fullmatch(text):
            _, day, month, year, hour, minute, second = match.groups()
            return _moment(int(year), month, int(day), hour, minute, second)
        if match := _RFC850_DATE.fullmatch(text):
            _, day, month, short_year, hour, minute, second = match.groups()
            return _moment(_rfc850_year(int(short_year)), month, int(day), hour, minute, second)
        if match := _ASCTIME_DATE.fullmatch(text):
            _, month, day, hour, minute, second, year = match.groups()
            return _moment(int(year), month, int(day.strip()), hour, minute, second)
    except ValueError:  # 31 February, 25 o'clock
        return None
    return None


def is_imf_fixdate(value: str) -> bool:
    """True when ``value`` is an IMF-fixdate exactly as S3 writes one back (botocore
    formats an Expires as ``%a, %d %b %Y %H:%M:%S GMT``), weekday included."""
    moment = http_date(value)
    return moment is not None and format_http_date(moment) == value


def format_http_date(moment: datetime) -> str:
    """``moment`` as an IMF-fixdate (independent of the process locale)."""
    moment = moment.astimezone(UTC)
    return (
        f"{_WEEKDAYS[moment.weekday()]}, {moment.day:02d} {_MONTHS[moment.month - 1]} "
        f"{moment.year:04d} {moment.hour:02d}:{moment.minute:02d}:{moment.second:02d} GMT"
    )


@dataclass(frozen=True, slots=True)
class CacheControl:
    """A Cache-Control field value, parsed: each directive as ``(name, argument)`` in
    order, names lower-cased, quoted arguments unquoted (``None``: no argument)."""

    directives: tuple[tuple[str, str | None], ...] = ()
    present: bool = False  # the field was sent (an empty value is still a field)

    def has(self, name: str) -> bool:
        """True when directive ``name`` is present (qualified or not)."""
        return any(directive == name for directive, _ in self.directives)

    def arguments(self, name: str) -> list[str | None]:
        """Every argument directive ``name`` was given, in order."""
        return [argument for directive, argument in self.directives if directive == name]

    def seconds(self, name: str) -> int | None:
        """Directive ``name``'s delta-seconds; None when absent or unusable (see
        ``problem``)."""
        if self.problem(name) is not None:
            return None
        values = self.arguments(name)
        return delta_seconds(values[0]) if values else None

    def problem(self, name: str) -> str | None:
        """Why seconds directive ``name`` makes the response stale (§4.2.1): it has no
        argument, one that is not delta-seconds, or repeats with differing values."""
        values = self.arguments(name)
        if not values:
            return None
        parsed = [delta_seconds(value) for value in values]
        if any(seconds is None for seconds in parsed):
            return f"{name} is not delta-seconds"
        if len(set(parsed)) > 1:
            return f"{name} repeats with differing values"
        return None

    def directive_text(self, name: str) -> str:
        """How a log line names directive ``name``: ``Cache-Control: max-age=0``."""
        values = self.arguments(name)
        argument = values[0] if values else None
        shown = name if argument is None else f"{name}={argument[:40]}"
        return f"Cache-Control: {shown}"


def parse_cache_control(value: str | None) -> CacheControl:
    """Parse a Cache-Control field value (see the module docstring); never raises."""
    if value is None:
        return CacheControl()
    directives: list[tuple[str, str | None]] = []
    for element in split_list(value):
        name, equals, argument = element.partition("=")
        name = name.strip(" \t").lower()
        if not _TOKEN.fullmatch(name):
            continue  # not a directive: ignored like any unknown extension
        directives.append((name, _unquote(argument.strip(" \t")) if equals else None))
    return CacheControl(tuple(directives), present=True)


@dataclass(frozen=True, slots=True)
class Lifetime:
    """A freshness lifetime (§4.2.1) and what gave it: ``rule`` is ``s-maxage``,
    ``max-age``, ``expires``, ``heuristic``, ``default`` or ``invalid`` (stale: ``field``
    names the header that made it so); ``explicit`` says the origin set it."""

    seconds: int
    rule: str
    field: str = ""
    why: str = ""  # with ``invalid``: what is wrong with ``field``

    @property
    def explicit(self) -> bool:
        return self.rule in ("s-maxage", "max-age", "expires", "invalid")


def freshness_lifetime(
    fields: Mapping[str, str],
    received_at: datetime,
    default: int,
    cache_control: CacheControl | None = None,
) -> Lifetime:
    """The freshness lifetime of a response whose lower-cased header fields are
    ``fields`` (§4.2.1 for a shared cache; §4.2.2 heuristic capped by ``default``), the
    response received at ``received_at`` (used when Date is absent)."""
    control = cache_control or parse_cache_control(fields.get("cache-control"))
    for name in ("s-maxage", "max-age"):
        problem = control.problem(name)
        if problem is not None:
            return Lifetime(0, "invalid", control.directive_text(name), problem)
        seconds = control.seconds(name)
        if seconds is not None:
            return Lifetime(seconds, name, control.directive_text(name))
    date = http_date(fields.get("date")) or received_at
    if "expires" in fields:
        expires = http_date(fields["expires"])
        if expires is None:
            return Lifetime(0, "invalid", "Expires", "not an HTTP date")  # §5.3: expired
        return Lifetime(_bounded((expires - date).total_seconds()), "expires", "Expires")
    modified = http_date(fields.get("last-modified"))
    if modified is not None:
        heuristic = _bounded((date - modified).total_seconds() * HEURISTIC_FRACTION)
        return Lifetime(min(heuristic, default), "heuristic", "Last-Modified")
    return Lifetime(default, "default")


def current_age(
    fields: Mapping[str, str], received_at: datetime | None, requested_at: datetime | None = None
) -> int:
    """The current age on receipt (§4.2.3): max(apparent age, Age + response delay).

    Clock skew: the apparent age compares the origin's Date with our receipt time, so an
    origin whose clock lags makes its responses look older (an earlier revalidation, or
    a refusal when that makes them stale on arrival); a clock that runs ahead counts for
    nothing (the apparent age is never negative). Both err towards revalidating sooner."""
    age = age_value(fields.get("age")) or 0
    date = http_date(fields.get("date"))
    apparent = 0
    if date is not None and received_at is not None:
        apparent = _bounded((received_at - date).total_seconds())
    delay = 0
    if received_at is not None and requested_at is not None:
        delay = _bounded((received_at - requested_at).total_seconds())
    return max(apparent, min(age + delay, MAX_DELTA_SECONDS))


def _unquote(argument: str) -> str:
    """A directive argument without its quotes (RFC 9110 §5.6.4), escapes undone."""
    if not argument.startswith('"'):
        return argument
    out: list[str] = []
    escaped = False
    for char in argument[1:]:
        if escaped:
            out.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            break
        else:
            out.append(char)
    return "".join(out)


def _moment(year: int, month: str, day: int, hour: str, minute: str, second: str) -> datetime:
    return datetime(
        year, _MONTHS.index(month) + 1, day, int(hour), int(minute), int(second), tzinfo=UTC
    )


def _rfc850_year(short: int) -> int:
    """RFC 9110 §5.6.7: a two-digit year more than 50 years in the future is the past
    century's; taken against 2000 here (a clock-free reading good until 2050)."""
    return 2000 + short if short < 50 else 1900 + short


def _bounded(seconds: float) -> int:
    return int(max(0, min(seconds, MAX_DELTA_SECONDS)))
