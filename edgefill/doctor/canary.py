"""``edgefill doctor --canary PATH``: one real object through the whole flow.

PATH must be at the full origin and not in the bucket. The canary GETs it from the full
origin (the reference bytes), then through the distribution (the viewer host when the
distribution has a certificate for it, else its domain) and expects the same bytes;
then waits, at most ``MAX_WAIT`` seconds, for the backfill to put it in the bucket with
the same length. Each step's time is reported. Bodies are hashed as they stream, so a
large canary costs no memory.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import ClientError

from edgefill.doctor.checks import Check
from edgefill.operations import OperatorError

if TYPE_CHECKING:
    import requests

MAX_WAIT: Final = 180.0  # seconds for the copy to appear in the bucket
POLL: Final = 2.0  # seconds between HeadObjects while waiting
HTTP_TIMEOUT: Final = (10.0, 60.0)  # connect, read
CHUNK: Final = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Fetched:
    status: int
    length: int
    sha256: str
    x_cache: str = ""


Fetch = Callable[[str], Fetched]


def http_fetch(base: str, session: requests.Session | None = None) -> Fetch:
    """GET ``base`` + URI as identity (the bytes as stored), no redirects followed."""
    import requests  # here: the CLI's other commands never load it (issue 23)

    http = session or requests.Session()

    def fetch(uri: str) -> Fetched:
        digest, length = hashlib.sha256(), 0
        with http.get(
            base.rstrip("/") + uri,
            headers={"Accept-Encoding": "identity"},
            stream=True,
            allow_redirects=False,
            timeout=HTTP_TIMEOUT,
        ) as response:
            for chunk in response.raw.stream(CHUNK, decode_content=False):
                digest.update(chunk)
                length += len(chunk)
            return Fetched(
                response.status_code,
                length,
                digest.hexdigest(),
                response.headers.get("X-Cache", ""),
            )

    return fetch


def run_canary(
    uri: str,
    *,
    origin: Fetch,
    viewer: Fetch,
    s3: Any,
    bucket: str,
    key: str,
    max_wait: float = MAX_WAIT,
    poll: float = POLL,
    progress: Callable[[float], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Check:
    """The canary's verdict; ``OperatorError`` when PATH is not a valid canary."""
    if _stored_length(s3, bucket, key) is not None:
        raise OperatorError(f"--canary {uri}: already in the bucket ({key}); pick a path it lacks")
    started = clock()
    reference = _get(origin, uri, "the full origin")
    if reference.status != 200:
        answer = reference.x_cache if reference.status == 0 else f"answered {reference.status}"
        raise OperatorError(f"--canary {uri}: the full origin {answer}, not 200")
    origin_seconds = clock() - started
    started = clock()
    seen = _get(viewer, uri, "the distribution")
    viewer_seconds = clock() - started
    steps = [f"origin {origin_seconds:.2f}s ({reference.length} B)"]
    if seen.status != 200 or seen.sha256 != reference.sha256:
        if seen.status == 0:
            what = seen.x_cache
        elif seen.status != 200:
            what = f"answered {seen.status}"
        else:
            what = f"sent {seen.length} B that differ from the origin's"
        return Check(
            "canary",
            False,
            "; ".join([*steps, f"distribution {viewer_seconds:.2f}s: {what}"]),
            "run the checks above; the distribution must fail over to the full origin",
        )
    steps.append(f"distribution {viewer_seconds:.2f}s ({seen.x_cache or 'no X-Cache'}), same bytes")
    started = clock()
    while True:
        waited = clock() - started
        stored = _stored_length(s3, bucket, key)
        if stored == reference.length:
            steps.append(f"in the bucket after {waited:.1f}s, same length")
            return Check("canary", True, "; ".join(steps))
        if waited >= max_wait:
            found = "absent" if stored is None else f"{stored} B, not {reference.length}"
            steps.append(f"not in the bucket after {waited:.0f}s ({found})")
            return Check(
                "canary",
                False,
                "; ".join(steps),
                "look at the edge function's logs (failover queued?) and the backfill "
                "worker's (copied? DLQ?); see docs/DEPLOY.md, Logs",
            )
        if progress is not None:
            progress(waited)
        sleep(min(poll, max(0.0, max_wait - waited)))


def _get(fetch: Fetch, uri: str, where: str) -> Fetched:
    import requests

    try:
        return fetch(uri)
    except requests.RequestException as error:
        return Fetched(0, 0, "", f"{where} unreachable: {type(error).__name__}")


def _stored_length(s3: Any, bucket: str, key: str) -> int | None:
    try:
        return int(s3.head_object(Bucket=bucket, Key=key)["ContentLength"])
    except ClientError as error:
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if status in (403, 404):
            return None
        raise
