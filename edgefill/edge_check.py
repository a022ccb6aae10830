"""``edgefill check``: does every edge serve the same version of each path?

A HEAD goes to each target's edge for each encoding (the edges are found as the warmer
finds them: EDNS client subnet per region, the POP name per POP code). Each answer is
recorded with its status, ETag, length, Last-Modified, Age, X-Cache and POP.

An answer's **version** is its ``x-amz-meta-origin-etag`` when the bucket served it
(CloudFront passes user metadata through), else its ``ETag``: so a copy and the origin's
own answer for the same bytes are the same version. The reference version of a path is
the bucket copy's (``--bucket``/``--stack``) when one is asked for, else the version most
edges serve. A path is ``consistent`` when every answer is a 2xx of the reference version,
``stale`` when some answer is another version (those edges are named), ``error`` when an
edge did not answer (no route, TLS, timeout, 5xx).

When the bucket is asked and holds **no copy** of the path (withdrawn at the origin,
deleted, never filled), an edge is consistent when its answer did not come from the
bucket (it carries none of edgefill's ``x-amz-meta-*`` fields: the edge failed over to
the origin, whatever the origin answered), and stale when it still serves a bucket copy:
after a takedown, no edge may serve the old version.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any, Final

from shared.edge_http import EdgeClient, EdgeError
from shared.header_numbers import header_number
from shared.messages import ACCEPT_ENCODING

# Parallel HEADs; each is tiny, the edges are few.
DEFAULT_WORKERS: Final = 16
# The user metadata every copy edgefill writes carries (one suffices to tell a copy).
_COPY_METADATA: Final = (
    "x-amz-meta-fetched-at",
    "x-amz-meta-origin-etag",
    "x-amz-meta-origin-last-modified",
)


class NoCopy:
    """The bucket holds no copy of the path (``bucket_version``'s answer)."""

    def __repr__(self) -> str:
        return "NO_COPY"


NO_COPY: Final = NoCopy()
BucketVersion = str | NoCopy | None


@dataclass(frozen=True, slots=True)
class EdgeAnswer:
    """One HEAD: what one target's edge answered for one encoding."""

    target: str
    encoding: str
    edge: str | None = None
    pop: str | None = None
    status: int | None = None
    etag: str | None = None
    version: str | None = None
    length: int | None = None
    last_modified: str | None = None
    age: int | None = None
    x_cache: str | None = None
    error: str | None = None
    from_bucket: bool = False  # the answer is a bucket copy (edgefill's x-amz-meta-*)

    @property
    def failed(self) -> bool:
        return self.error is not None or self.status is None or self.status >= 500

    def as_dict(self) -> dict[str, Any]:
        raw = asdict(self)
        return {
            "target": raw["target"],
            "encoding": raw["encoding"],
            "edge": raw["edge"],
            "pop": raw["pop"],
            "status": raw["status"],
            "etag": raw["etag"],
            "version": raw["version"],
            "length": raw["length"],
            "lastModified": raw["last_modified"],
            "age": raw["age"],
            "xCache": raw["x_cache"],
            "error": raw["error"],
            "fromBucket": raw["from_bucket"],
        }


@dataclass
class PathVerdict:
    """The verdict on one path and the answers it rests on."""

    path: str
    verdict: str  # consistent | stale | error
    reference: str | None
    edges: list[EdgeAnswer] = field(default_factory=list)
    differing: list[str] = field(default_factory=list)  # "target encoding: version"
    bucket_version: str | None = None
    bucket_copy: bool | None = None  # None: the bucket was not asked

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "verdict": self.verdict,
            "reference": self.reference,
            "bucketVersion": self.bucket_version,
            "bucketCopy": self.bucket_copy,
            "differing": self.differing,
            "edges": [answer.as_dict() for answer in self.edges],
        }


def version_of(headers: Mapping[str, str]) -> str | None:
    """``x-amz-meta-origin-etag`` when present (a bucket copy), else the ``ETag``."""
    lowered = {name.lower(): value for name, value in headers.items()}
    return lowered.get("x-amz-meta-origin-etag") or lowered.get("etag")


def head(
    client: EdgeClient, address: str, host: str, path: str, target: str, encoding: str
) -> EdgeAnswer:
    """HEAD ``path`` at ``address`` as a viewer of ``host`` with ``encoding``'s header."""
    try:
        response = client.head(address, host, path, ACCEPT_ENCODING[encoding])
    except EdgeError as error:
        return EdgeAnswer(target, encoding, address, error=error.reason[:300])
    answer = {name.lower(): value for name, value in response.headers.items()}
    return EdgeAnswer(
        target,
        encoding,
        address,
        pop=answer.get("x-amz-cf-pop"),
        status=response.status,
        etag=answer.get("etag"),
        version=version_of(answer),
        length=response.content_length,
        last_modified=answer.get("last-modified"),
        age=header_number(answer.get("age")),
        x_cache=answer.get("x-cache"),
        from_bucket=any(name in answer for name in _COPY_METADATA),
    )


def verdict_of(
    path: str, answers: list[EdgeAnswer], bucket_version: BucketVersion = None
) -> PathVerdict:
    """The verdict on ``path`` from its answers (see the module docstring)."""
    if isinstance(bucket_version, NoCopy):
        return _verdict_without_copy(path, answers)
    failed = [a for a in answers if a.failed]
    served = [a for a in answers if not a.failed]
    versions = Counter((a.status, a.version) for a in served)
    if bucket_version is not None:
        reference: tuple[int | None, str | None] = (200, bucket_version)
    elif versions:
        reference = versions.most_common(1)[0][0]
    else:
        reference = (None, None)

    def same(answer: EdgeAnswer) -> bool:
        if bucket_version is None:
            return (answer.status, answer.version) == reference
        ok = answer.status is not None and 200 <= answer.status < 300
        return ok and answer.version == bucket_version

    differing = [
        f"{a.target} {a.encoding} ({a.pop or a.edge}): {a.status} {a.version}"
        for a in served
        if not same(a)
    ]
    if failed:
        verdict = "error"
        differing += [f"{a.target} {a.encoding}: {a.error or a.status}" for a in failed]
    elif differing or not served:
        verdict = "stale"
    elif reference[0] is None or not 200 <= reference[0] < 300:
        verdict = "stale"  # every edge agrees, but on an error answer
        differing = [f"every edge answers {reference[0]}"]
    else:
        verdict = "consistent"
    copy = None if bucket_version is None else True
    return PathVerdict(path, verdict, reference[1], answers, differing, bucket_version, copy)


def _verdict_without_copy(path: str, answers: list[EdgeAnswer]) -> PathVerdict:
    """The bucket has no copy: every edge must answer from the origin, none from a copy."""
    failed = [a for a in answers if a.error is not None or a.status is None]
    differing = [
        f"{a.target} {a.encoding} ({a.pop or a.edge}): {a.status} {a.version} (a bucket copy)"
        for a in answers
        if not failed.count(a) and a.from_bucket
    ]
    differing += [f"{a.target} {a.encoding}: {a.error or a.status}" for a in failed]
    verdict = "error" if failed else ("stale" if differing or not answers else "consistent")
    return PathVerdict(path, verdict, None, answers, differing, None, False)


def check(
    paths: Iterable[str],
    edges: Mapping[str, str | None],
    errors: Mapping[str, str],
    encodings: Iterable[str],
    host: str,
    client: EdgeClient,
    bucket_version: Callable[[str], BucketVersion] | None = None,
    workers: int = DEFAULT_WORKERS,
) -> list[PathVerdict]:
    """Verdicts for ``paths``: ``edges`` maps each target to its edge address (``errors``
    says why a target has none); ``bucket_version(path)`` gives the copy's version."""
    encodings = list(encodings)
    paths = list(dict.fromkeys(paths))
    jobs = [(path, target, enc) for path in paths for target in edges for enc in encodings]

    def run(job: tuple[str, str, str]) -> EdgeAnswer:
        path, target, encoding = job
        address = edges[target]
        if address is None:
            return EdgeAnswer(target, encoding, error=errors.get(target, "not resolved"))
        return head(client, address, host, path, target, encoding)

    with ThreadPoolExecutor(max(1, min(workers, len(jobs) or 1)), "check") as pool:
        answers = list(pool.map(run, jobs))
    by_path: dict[str, list[EdgeAnswer]] = {}
    for (path, _, _), answer in zip(jobs, answers, strict=True):
        by_path.setdefault(path, []).append(answer)
    return [
        verdict_of(path, by_path.get(path, []), bucket_version(path) if bucket_version else None)
        for path in paths
    ]
