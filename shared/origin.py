"""The full origin as the backfill sees it: raw, undecoded GETs that stay on one host.

The backfill stores the origin's bytes exactly as served, so every request asks for
``Accept-Encoding: identity`` and bodies are read from the socket with
``decode_content=False``: a gzip body stays gzip, with its Content-Encoding kept by the
caller. Requests carry no cookies and no credentials (``trust_env`` is off, so neither
``.netrc`` nor proxy variables can add any, and the cookie jar accepts nothing).
Redirects are never followed: a redirect's target is not the resource the key names
(the caller refuses it), and no request goes to a URL the worker did not build itself.

Each thread has its own ``requests.Session`` (sessions are not documented as
thread-safe), so parallel ranged GETs reuse their connections without sharing state.
"""

from __future__ import annotations

import http.client
import http.cookiejar
import os
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

import requests
import urllib3

from shared.header_numbers import header_number
from shared.read_deadline import ReadBudget, WatchedAdapter, armed

# Connect fast or give up; between two reads of a slow origin allow a generous pause.
CONNECT_TIMEOUT: Final = 5.0
READ_TIMEOUT: Final = 30.0
# Size of one socket read; a part is assembled from reads of at most this size.
READ_CHUNK: Final = 1024 * 1024
_REDIRECTS = range(300, 400)
_CONDITIONAL = frozenset({"If-None-Match", "If-Modified-Since"})
_RANGED = frozenset({"Range", "If-Range"})
# What a read from the origin may raise besides OriginError: urllib3 and requests errors,
# socket errors, and http.client's (an invalid status line or chunk size).
_READ_ERRORS = (
    urllib3.exceptions.HTTPError,
    requests.RequestException,
    http.client.HTTPException,
    OSError,
    ValueError,
)
# ASCII digits only, and few enough that int() stays cheap and cannot raise.
_CONTENT_RANGE = re.compile(r"bytes ([0-9]{1,30})-([0-9]{1,30})/([0-9]{1,30}|\*)")
USER_AGENT: Final = "edgefill-backfill/1"


class OriginError(Exception):
    """The origin did not deliver; ``permanent`` tells whether a retry could help."""

    def __init__(
        self, reason: str, *, permanent: bool, status: int | None = None, kind: str = "origin"
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent
        self.status = status  # the origin's HTTP status, when it answered with an error
        self.kind = kind  # the outcome's name in logs and metrics: origin, bad_header, ...


class DeadlinePassed(OriginError):
    """The copy's read budget ran out before the origin delivered (transient)."""

    def __init__(self, what: str) -> None:
        super().__init__(
            f"{what} outlasted the invocation's copy budget", permanent=False, kind="deadline"
        )


class OriginResponse:
    """A streaming 200 response whose body is read raw (undecoded)."""

    def __init__(self, response: requests.Response, budget: ReadBudget | None = None) -> None:
        self._response = response
        self._budget = budget
        self.status = response.status_code
        self.headers = response.headers
        self.url = response.url
        self.received = 0

    @property
    def content_length(self) -> int | None:
        """The declared length, or None (chunked or absent)."""
        try:
            return declared_length(self.headers.get("Content-Length"))
        except ValueError:
            return None  # refused before any body is read (backfill_worker/storable.py)

    @property
    def accepts_ranges(self) -> bool:
        """True when the origin advertises ``Accept-Ranges: bytes``."""
        units = (self.headers.get("Accept-Ranges") or "").lower().split(",")
        return "bytes" in {unit.strip() for unit in units}

    def read(self, amount: int) -> bytes:
        """Up to ``amount`` raw bytes (fewer only at the end of the body)."""
        chunks: list[bytes] = []
        wanted = amount
        try:
            while wanted > 0:
                chunk = self._response.raw.read(min(READ_CHUNK, wanted), decode_content=False)
                if not chunk:
                    break
                chunks.append(chunk)
                wanted -= len(chunk)
                self.received += len(chunk)
        except _READ_ERRORS as error:
            self._check_budget()
            raise OriginError(f"body read failed: {_brief(error)}", permanent=False) from error
        self._check_budget()
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def readinto(self, buffer: memoryview) -> int:
        """Fill ``buffer`` with raw body bytes; fewer than its size only at the end."""
        filled = 0
        try:
            while filled < len(buffer):
                chunk = self._response.raw.read(
                    min(READ_CHUNK, len(buffer) - filled), decode_content=False
                )
                if not chunk:
                    break
                buffer[filled : filled + len(chunk)] = chunk
                filled += len(chunk)
        except _READ_ERRORS as error:
            self._check_budget()
            raise OriginError(f"body read failed: {_brief(error)}", permanent=False) from error
        finally:
            self.received += filled
        # A connection shut by the deadline looks like the end of the body: never take
        # the bytes read so far for a whole object.
        self._check_budget()
        return filled

    def _check_budget(self) -> None:
        if self._budget is not None and self._budget.spent:
            raise DeadlinePassed(f"the body after {self.received} bytes")

    def close(self) -> None:
        """Give the connection back (or drop it when the body is unread)."""
        self._response.close()


@dataclass(frozen=True, slots=True)
class Validators:
    """What identifies one version of the origin's object: a copy made of ranges must see
    the same values in every range, or the object changed mid-copy."""

    etag: str | None
    last_modified: str | None
    content_encoding: str | None
    total: int


class OriginClient:
    """GETs against ``origin_url`` (``scheme://host[:port][/prefix]``) and nothing else."""

    def __init__(
        self,
        origin_url: str,
        *,
        connect_timeout: float = CONNECT_TIMEOUT,
        read_timeout: float = READ_TIMEOUT,
    ) -> None:
        self.origin_url = origin_url.rstrip("/")
        parts = urlsplit(self.origin_url)
        self._scheme = parts.scheme.lower()
        self._netloc = _netloc(parts.scheme, parts.netloc)
        self._timeout = (connect_timeout, read_timeout)
        self._local = threading.local()

    def url_for(self, uri: str, query: str = "") -> str:
        """The origin URL of a percent-encoded ``uri`` (already validated) and raw query."""
        return self.origin_url + uri + (f"?{query}" if query else "")

    def is_own(self, url: str) -> bool:
        """True when ``url`` names the origin's own scheme, host and port, and carries no
        credentials (requests would turn ``user:pass@`` into an Authorization header)."""
        parts = urlsplit(url)
        return (
            parts.scheme.lower() == self._scheme
            and "@" not in parts.netloc
            and _netloc(parts.scheme, parts.netloc) == self._netloc
        )

    def get(
        self,
        url: str,
        budget: ReadBudget | None = None,
        extra: Mapping[str, str] | None = None,
        *,
        conditional: Mapping[str, str] | None = None,
    ) -> OriginResponse:
        """GET ``url`` (an own URL) streaming. A redirect is never followed.

        Returns a 200 or a 3xx response (a redirect's target is not the resource its URI
        names: the caller refuses it, see ``backfill_worker/storable.py``); a 206 when
        ``extra`` asks for a ``Range`` (with ``If-Range`` to resume a copy); a 304 when
        ``conditional`` (``If-None-Match`` / ``If-Modified-Since``) was sent. No other
        header may be added. Raises ``OriginError`` for anything else (4xx permanent, 5xx
        and network failures transient; ``status`` says which), and ``DeadlinePassed``
        when ``budget`` runs out before the headers or a body read."""
        if not self.is_own(url):
            raise OriginError(f"GET of a foreign URL refused: {url[:200]}", permanent=True)
        headers = {**(extra or {}), **(conditional or {})}
        if not set(headers) <= _CONDITIONAL | _RANGED:
            raise ValueError(f"only {sorted(_CONDITIONAL | _RANGED)} may be added to an origin GET")
        response = self._request(url, headers, budget)
        status = response.status_code
        if (
            status == 200
            or status in _REDIRECTS
            or (status == 206 and "Range" in headers)
            or (status == 304 and not _CONDITIONAL.isdisjoint(headers))
        ):
            return OriginResponse(response, budget)
        response.close()
        raise _status_error(status)

    def get_resuming(
        self, url: str, start: int, end: int, expected: Validators, budget: ReadBudget | None
    ) -> OriginResponse | None:
        """Bytes ``[start, end)`` of the version ``expected`` describes, to resume a copy:
        a Range GET with ``If-Range`` (the strong ETag, else Last-Modified; neither when
        the caller names the version by an MD5 it checks at the end). Returns the 206
        response when the origin still has that version; None when it has another (it
        answered 200, or the range's validators, length or encoding differ), so the copy
        starts over. Validators can stay the same over new bytes: the caller compares
        bytes too (``backfill_worker/transfer/resume.py``)."""
        validator = expected.etag if is_strong_etag(expected.etag) else expected.last_modified
        if not self.is_own(url):
            raise OriginError(f"GET of a foreign URL refused: {url[:200]}", permanent=True)
        headers = {"Range": f"bytes={start}-{end - 1}"}
        if validator is not None:
            headers["If-Range"] = validator
        response = self._request(url, headers, budget)
        status = response.status_code
        if status == 206:
            try:
                _check_range(response, start, end, expected)
            except OriginError:
                response.close()
                return None
            return OriginResponse(response, budget)
        response.close()
        if status == 200 or status in _REDIRECTS:
            return None  # another version (or no longer this resource): start over
        raise _status_error(status)

    def get_range_into(
        self,
        url: str,
        start: int,
        expected: Validators,
        buffer: memoryview,
        budget: ReadBudget | None = None,
    ) -> None:
        """Fill ``buffer`` with bytes ``[start, start + len(buffer))`` of ``url`` (an own
        URL from ``get``) by a ranged GET that must answer 206 with exactly that range of
        the same object version."""
        end = start + len(buffer)
        response = self._ranged(url, start, end, expected, budget)
        try:
            origin_response = OriginResponse(response, budget)
            filled = origin_response.readinto(buffer)
            if filled != len(buffer):
                raise OriginError(
                    f"range {start}-{end - 1} ended after {filled} bytes", permanent=False
                )
        finally:
            response.close()

    def _ranged(
        self, url: str, start: int, end: int, expected: Validators, budget: ReadBudget | None
    ) -> requests.Response:
        if not self.is_own(url):
            raise OriginError(f"ranged GET to a foreign host refused: {url[:200]}", permanent=True)
        response = self._request(url, {"Range": f"bytes={start}-{end - 1}"}, budget)
        try:
            if response.status_code != 206:
                if response.status_code < 300:
                    raise OriginError(
                        f"origin answered {response.status_code} to a Range request "
                        "it advertised support for",
                        permanent=False,
                    )
                raise _status_error(response.status_code)
            _check_range(response, start, end, expected)
        except BaseException:
            response.close()
            raise
        return response

    def _request(
        self, url: str, extra: dict[str, str], budget: ReadBudget | None
    ) -> requests.Response:
        headers = {"Accept-Encoding": "identity", "User-Agent": USER_AGENT, **extra}
        connect, read = self._timeout
        if budget is not None:
            if budget.spent:
                raise DeadlinePassed("the request")
            # Each wait for bytes ends by the deadline; the budget's timer ends the
            # sum of many short waits (a trickle) by shutting the connection down.
            connect, read = budget.timeout(connect), budget.timeout(read)
        try:
            with armed(budget):
                response = self._session().get(
                    url,
                    headers=headers,
                    stream=True,
                    allow_redirects=False,
                    timeout=(connect, read),
                )
        except (urllib3.exceptions.InvalidHeader, requests.exceptions.InvalidHeader) as error:
            # Differing repeated Content-Lengths and the like: the next answer would be
            # just as unreadable.
            raise OriginError(
                f"unreadable response: {_brief(error)}", permanent=True, kind="bad_header"
            ) from error
        except _READ_ERRORS as error:
            if budget is not None and budget.spent:
                raise DeadlinePassed("the response headers") from error
            raise OriginError(f"GET failed: {_brief(error)}", permanent=False) from error
        return response

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            # No .netrc credentials, no proxies from the environment: the only host
            # contacted is the configured origin, with nothing a viewer could have sent.
            session.trust_env = False
            session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or True
            session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
            # Its connections register with the copy's read budget (shared/read_deadline).
            session.mount("http://", WatchedAdapter())
            session.mount("https://", WatchedAdapter())
            self._local.session = session
        return session


def read_exactly(response: OriginResponse, amount: int) -> bytes:
    """``amount`` raw bytes of the body; a shorter body is a transient ``OriginError``."""
    data = response.read(amount)
    if len(data) != amount:
        raise OriginError(
            f"body ended after {response.received} bytes, {amount - len(data)} short",
            permanent=False,
        )
    return data


def validators_of(response: OriginResponse, total: int) -> Validators:
    """The validators a later ranged GET of the same version must repeat."""
    return Validators(
        etag=response.headers.get("ETag"),
        last_modified=response.headers.get("Last-Modified"),
        content_encoding=response.headers.get("Content-Encoding"),
        total=total,
    )


def _check_range(response: requests.Response, start: int, end: int, expected: Validators) -> None:
    match = _CONTENT_RANGE.fullmatch((response.headers.get("Content-Range") or "").strip())
    if not match:
        raise OriginError("206 without a valid Content-Range", permanent=False)
    first, last, total = int(match.group(1)), int(match.group(2)), match.group(3)
    if (first, last + 1) != (start, end) or (total != "*" and int(total) != expected.total):
        raise OriginError(
            f"asked bytes {start}-{end - 1}/{expected.total}, got {match.group(0)}",
            permanent=False,
        )
    for name, value in (("ETag", expected.etag), ("Last-Modified", expected.last_modified)):
        if value is not None and response.headers.get(name) != value:
            raise OriginError(
                f"{name} changed during the copy: the object changed", permanent=False
            )
    if response.headers.get("Content-Encoding") != expected.content_encoding:
        raise OriginError("Content-Encoding differs between ranges", permanent=False)


def is_strong_etag(etag: str | None) -> bool:
    """True for a strong entity tag (not ``W/``): a version a ranged resume can name."""
    return etag is not None and not etag.startswith("W/")


def _status_error(status: int) -> OriginError:
    # 5xx, timeouts and throttling pass; other answers would be the same next time.
    transient = status >= 500 or status in (408, 429)
    return OriginError(f"origin answered {status}", permanent=not transient, status=status)


def declared_length(value: str | None) -> int | None:
    """A Content-Length as a number; None when absent. ``ValueError`` when malformed:
    anything but ASCII digits (``int`` accepts '١٢٣'), or repeated values that differ."""
    if value is None:
        return None
    values = {part.strip() for part in value.split(",")}
    if len(values) != 1:
        raise ValueError(f"Content-Length has differing values: {value[:80]!r}")
    (number,) = values
    length = header_number(number)
    if length is None:
        raise ValueError(f"Content-Length is not a number of bytes: {value[:80]!r}")
    return length


def _netloc(scheme: str, netloc: str) -> str:
    """``host:port`` with the scheme's default port filled in, lower-cased, no userinfo."""
    parts = urlsplit(f"{scheme}://{netloc}")
    try:
        port = parts.port
    except ValueError:
        return f"invalid:{netloc}"
    default = {"http": 80, "https": 443}.get(scheme.lower())
    return f"{parts.hostname or ''}:{port or default}"


def _brief(error: Any) -> str:
    return f"{type(error).__name__}: {str(error)[:200]}"
