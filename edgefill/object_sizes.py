"""Each path's stored size, for estimates and caps: HeadObject on the regional bucket, in
parallel; for what the bucket lacks, optionally a HEAD at the full origin.

Bounds: at most ``MAX_WORKERS`` requests at once; each origin HEAD waits at most
``ORIGIN_TIMEOUT`` seconds and never follows a redirect (a redirect could name a host the
operator did not), so a path the origin redirects stays unknown."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from botocore.exceptions import BotoCoreError, ClientError

from edgefill.operations import OperatorError
from shared.header_numbers import header_number
from shared.keys import InvalidKey, ObjectKey

if TYPE_CHECKING:
    import requests

MAX_WORKERS: Final = 16
ORIGIN_TIMEOUT: Final = 10.0


@dataclass(frozen=True, slots=True)
class SizeLookup:
    """``size`` in bytes, or None with ``problem`` saying why it is unknown."""

    uri: str
    size: int | None
    where: str = ""  # "bucket" or "origin"
    problem: str = ""


def bucket_sizes(s3: Any, bucket: str, uris: Sequence[str], prefix: str = "") -> list[SizeLookup]:
    """HeadObject for each URI's key (its query, if any, is not part of the key)."""
    return _parallel(lambda uri: _head_object(s3, bucket, uri, prefix), uris)


def origin_sizes(
    origin_url: str, uris: Sequence[str], session: requests.Session | None = None
) -> list[SizeLookup]:
    """A HEAD at ``origin_url`` + URI for each URI; Content-Length of a 200 is the size."""
    import requests  # here: only a size lookup at the origin needs it (issue 23)

    base = check_origin_url(origin_url)
    http = session or requests.Session()
    return _parallel(lambda uri: _head_origin(http, base, uri), uris)


def check_origin_url(origin_url: str) -> str:
    """``origin_url`` without its trailing ``/``; ``OperatorError`` unless it is
    ``http(s)://host[:port][/path]`` with no query, fragment or credentials."""
    parts = urlsplit(origin_url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
        raise OperatorError(f"--origin-url {origin_url!r}: must be http(s)://host[:port][/path]")
    if parts.username or parts.password or parts.fragment:
        raise OperatorError("--origin-url: must hold neither credentials nor a fragment")
    return origin_url.rstrip("/")


def with_origin_fallback(
    found: list[SizeLookup], origin_url: str | None, session: requests.Session | None = None
) -> list[SizeLookup]:
    """``found`` with each unknown size looked up at the full origin (when one is named)."""
    missing = [lookup.uri for lookup in found if lookup.size is None]
    if origin_url is None or not missing:
        return found
    answers = {lookup.uri: lookup for lookup in origin_sizes(origin_url, missing, session)}
    return [
        answers[lookup.uri] if lookup.size is None and answers[lookup.uri].size is not None
        else lookup
        for lookup in found
    ]  # fmt: skip


def _parallel(look: Callable[[str], SizeLookup], uris: Sequence[str]) -> list[SizeLookup]:
    unique = list(dict.fromkeys(uris))
    if not unique:
        return []
    with ThreadPoolExecutor(min(MAX_WORKERS, len(unique)), thread_name_prefix="size") as pool:
        answers = dict(zip(unique, pool.map(look, unique), strict=True))
    return [answers[uri] for uri in uris]


def _head_object(s3: Any, bucket: str, uri: str, prefix: str) -> SizeLookup:
    try:
        key = ObjectKey.from_uri(uri.partition("?")[0], prefix).key
    except InvalidKey as error:
        return SizeLookup(uri, None, problem=str(error))
    try:
        answer = s3.head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        why = "not in the bucket" if status in (403, 404) else f"HeadObject failed: {code}"
        return SizeLookup(uri, None, problem=why)
    except BotoCoreError as error:
        return SizeLookup(uri, None, problem=f"HeadObject failed: {error}")
    return SizeLookup(uri, int(answer["ContentLength"]), where="bucket")


def _head_origin(http: requests.Session, base: str, uri: str) -> SizeLookup:
    import requests

    url = base + uri
    try:
        response = http.head(url, allow_redirects=False, timeout=ORIGIN_TIMEOUT)
    except requests.RequestException as error:
        return SizeLookup(uri, None, problem=f"origin HEAD failed: {type(error).__name__}")
    with response:
        if response.status_code != 200:
            return SizeLookup(uri, None, problem=f"origin answered {response.status_code}")
        length = header_number(response.headers.get("Content-Length"))
    if length is None:  # absent, or not ASCII digits ('²'.isdigit() is true)
        return SizeLookup(uri, None, problem="origin sent no Content-Length (as ASCII digits)")
    return SizeLookup(uri, length, where="origin")
