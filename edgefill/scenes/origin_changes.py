"""Demo scene "the origin changes": copies follow the origin.

Two pages are in the bucket and warm at every POP. Then one changes at the full origin:

1. the object changes at the full origin (the edges still serve the old version);
2. ``edgefill refresh`` queues a refresh for both pages;
3. the bucket holds the new bytes (a conditional GET, a verified overwrite);
4. the invalidation completes (one CreateInvalidation; the lab POPs apply it);
5. the edges are warmed after it (a prewarm that waited for the invalidation);
6. ``edgefill check`` reports every POP consistent on the new version;
7. a viewer request returns the new bytes as a Hit.

The control page did not change: its refresh got a 304, so it shows no invalidation and
no rewrite (same S3 ETag and Last-Modified).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from edgefill.lab.origin import LabOrigin
from edgefill.scenes.bucket import check_against_bucket, object_sha256
from edgefill.scenes.stage import Stage
from shared.messages import ENCODINGS

STEP = "7 freshness"
CHANGED = "/news/today.html"
CONTROL = "/news/about.html"
TIMEOUT_SECONDS = 30


def origin_changes(demo: Stage) -> None:
    """The origin changes one page; refresh, invalidate, warm after, check, serve."""
    demo.step("7. The origin changes: the copy, the edges and a check follow it")
    lab = demo.lab
    assert lab.aws is not None and lab.invalidations is not None
    s3 = lab.aws.client("s3")
    bucket, host = lab.settings.bucket, lab.settings.viewer_host
    _copied_and_warm(demo, s3)
    control_before = _s3_version(s3, bucket, CONTROL)
    invalidations_before = len(lab.invalidations.applied)

    # 1. the object changes at the full origin
    new = b"<h1>Today</h1><p>the second edition, with corrections</p>\n" * 40
    lab.origin.put(CHANGED, new, content_type="text/html", headers={"Cache-Control": "max-age=300"})
    stale = lab.viewer_get("FRA56-P1", LabOrigin.uri(CHANGED))
    demo.say(
        f"the origin now serves {lab.origin.etag(CHANGED)}; FRA56-P1 still answers "
        f"{stale.headers.get('x-amz-meta-origin-etag') or stale.headers.get('etag')} "
        f"({stale.x_cache})"
    )

    # 2. edgefill refresh
    argv = [
        "refresh",
        CHANGED,
        CONTROL,
        "--endpoint-url",
        lab.aws.endpoint_url,
        "--backfill-queue-url",
        lab.aws.queue("BackfillQueue").url,
    ]
    demo.say("$ edgefill " + " ".join(argv))
    code = demo.operator(argv)
    demo.checks.expect(STEP, "edgefill refresh queued both pages", code == 0, f"exit {code}")

    # 3. the bucket holds the new bytes
    wanted = hashlib.sha256(new).hexdigest()
    replaced = demo.wait_until(
        "new bytes in the bucket",
        1,
        lambda: int(object_sha256(s3, bucket, CHANGED.lstrip("/")) == wanted),
        timeout=TIMEOUT_SECONDS,
    )
    demo.checks.expect(STEP, "the bucket holds the new bytes", replaced)

    # 4. the invalidation completes
    def applied() -> list[tuple[str, list[str], int]]:
        assert lab.invalidations is not None
        return lab.invalidations.applied[invalidations_before:]

    done = demo.wait_until(
        "invalidation completed at the POPs",
        1,
        lambda: int(any(LabOrigin.uri(CHANGED) in paths for _, paths, _ in applied())),
        timeout=TIMEOUT_SECONDS,
    )
    for invalidation_id, paths, dropped in applied():
        demo.say(f"invalidation {invalidation_id}: {paths}, {dropped} cached objects dropped")
    demo.checks.expect(STEP, "the invalidation of the changed page completed", done)

    # 5. the edges are warmed after it
    variants = [(code, enc) for code in lab.pops for enc in ENCODINGS]
    warmed = demo.wait_until(
        "edges warmed after the invalidation",
        len(variants),
        lambda: sum(lab.pops[c].cached(host, LabOrigin.uri(CHANGED), e) for c, e in variants),
        timeout=TIMEOUT_SECONDS,
    )
    demo.checks.expect(STEP, "every POP was warmed with every encoding after it", warmed)
    lab.wait_idle(timeout=TIMEOUT_SECONDS)

    # 6. edgefill check
    code = check_against_bucket(demo, [CHANGED])
    demo.checks.expect(
        STEP, "edgefill check: every POP consistent on the new version", code == 0, f"exit {code}"
    )

    # 7. a viewer gets the new bytes as a Hit
    answers = [lab.viewer_get(c, LabOrigin.uri(CHANGED), e) for c, e in variants]
    wrong = [
        f"{c} {e}: {a.x_cache}"
        for (c, e), a in zip(variants, answers, strict=True)
        if not a.hit or hashlib.sha256(a.body).hexdigest() != wanted
    ]
    demo.checks.expect(
        STEP, "viewers at every POP get the new bytes as Hits", not wrong, "; ".join(wrong[:3])
    )

    # The control page: no invalidation, no rewrite.
    every = [paths for _, paths, _ in lab.invalidations.applied[invalidations_before:]]
    in_flight = lab.invalidations.in_progress()
    demo.checks.expect(
        STEP,
        "the unchanged page was not invalidated",
        all(LabOrigin.uri(CONTROL) not in paths for paths in every) and not in_flight,
        json.dumps(every),
    )
    demo.checks.expect(
        STEP,
        "the unchanged page was not rewritten (same S3 ETag and Last-Modified)",
        _s3_version(s3, bucket, CONTROL) == control_before,
    )


def _copied_and_warm(demo: Stage, s3: Any) -> None:
    """Given: both pages on the origin, copied by a failover's backfill, warm everywhere."""
    lab = demo.lab
    for path, text in ((CHANGED, "the first edition"), (CONTROL, "who we are")):
        body = f"<h1>{path}</h1><p>{text}</p>\n".encode() * 40
        lab.origin.put(
            path, body, content_type="text/html", headers={"Cache-Control": "max-age=300"}
        )
    for path in (CHANGED, CONTROL):
        lab.viewer_get("NRT20-P2", LabOrigin.uri(path))  # a miss: failover, then backfill
    copied = demo.wait_until(
        "pages copied and warmed",
        2,
        lambda: sum(
            object_sha256(s3, lab.settings.bucket, p.lstrip("/")) == lab.origin.sha256(p)
            for p in (CHANGED, CONTROL)
        ),
        timeout=TIMEOUT_SECONDS,
    )
    lab.wait_idle(timeout=TIMEOUT_SECONDS)
    demo.checks.expect(STEP, "both pages are in the bucket and warm", copied)


def _s3_version(s3: Any, bucket: str, path: str) -> tuple[str, str]:
    head = s3.head_object(Bucket=bucket, Key=path.lstrip("/"))
    return str(head["ETag"]), str(head["LastModified"])
