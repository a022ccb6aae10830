"""Demo scene "the origin withdraws a page": a takedown at the origin reaches every edge.

Two pages are in the bucket and warm at every POP, each fresh for a few seconds. Then
the origin withdraws them, one by answering 403, the other by marking it private. With
the revalidation sweep running (the lab's schedule: every ``LAB_SWEEP_SECONDS``, looking
as far ahead, each refresh delayed to its copy's due time):

1. within the pages' lifetime plus one sweep interval, both are gone from the bucket
   (a conditional delete on the S3 ETag the refresh read), each logged ``withdrawn``;
2. the invalidation of both paths completes at the lab POPs;
3. every POP fails over to the origin for them: the 403 is served as a 403, the private
   page from the origin (a Miss, nothing cached), never the bucket's old copy;
4. ``edgefill check --bucket`` finds no edge serving the old version.
"""

from __future__ import annotations

import time
from typing import Final

from edgefill.lab.lab import LAB_SWEEP_SECONDS
from edgefill.lab.origin import LabOrigin
from edgefill.scenes.bucket import check_against_bucket, object_exists
from edgefill.scenes.stage import Stage

STEP: Final = "9 takedown"
RECALLED: Final = "/press/recalled.html"  # the origin answers 403
MEMBERS: Final = "/press/members.html"  # the origin marks it private
LIFETIME_SECONDS: Final = 3
# The bound the issue sets (lifetime + one sweep interval), plus the invalidation's time
# at the lab POPs and a second of the lab's polling.
SLACK_SECONDS: Final = 3.0
TIMEOUT_SECONDS: Final = 30


def takedown(demo: Stage) -> None:
    """The origin withdraws two pages; the bucket, the invalidation and the edges follow."""
    demo.step("9. The origin withdraws a page: the bucket, then every edge, let it go")
    lab = demo.lab
    assert lab.aws is not None and lab.invalidations is not None
    s3 = lab.aws.client("s3")
    bucket = lab.settings.bucket
    pages = (RECALLED, MEMBERS)
    _copied_and_warm(demo, pages)
    invalidations_before = len(lab.invalidations.applied)
    requests_before = {path: len(lab.origin.counts(path).requests) for path in pages}
    # The origin withdraws both: one refused, one no longer for a shared cache.
    withdrawn_at = time.monotonic()
    lab.origin.fault(RECALLED, status=403)
    _, body = _page(MEMBERS)
    lab.origin.put(MEMBERS, body, content_type="text/html", headers={"Cache-Control": "private"})
    sweep = lab.start_sweep()
    try:
        demo.say(
            f"the origin now answers 403 for {RECALLED} and marks {MEMBERS} private; the sweep "
            f"runs every {sweep.period:g} s"
        )
        # 1. gone from the bucket within the lifetime plus one sweep interval
        gone = demo.wait_until(
            "withdrawn copies removed from the bucket",
            len(pages),
            lambda: sum(not object_exists(s3, bucket, path.lstrip("/")) for path in pages),
            timeout=TIMEOUT_SECONDS,
        )
        took = time.monotonic() - withdrawn_at
        demo.say(f"both copies withdrawn {took:.1f} s after the origin withdrew them")
        bound = LIFETIME_SECONDS + LAB_SWEEP_SECONDS + SLACK_SECONDS
        demo.checks.expect(STEP, "both pages are gone from the bucket", gone)
        demo.checks.expect(
            STEP,
            f"within their lifetime plus one sweep interval ({bound:g} s with the lab's slack)",
            gone and took <= bound,
            f"{took:.1f} s",
        )

        # 2. the invalidation completes at the POPs
        def invalidated() -> int:
            assert lab.invalidations is not None
            applied = lab.invalidations.applied[invalidations_before:]
            seen = {path for _, paths, _ in applied for path in paths}
            return sum(LabOrigin.uri(path) in seen for path in pages)

        done = demo.wait_until(
            "invalidation completed at the POPs", len(pages), invalidated, timeout=TIMEOUT_SECONDS
        )
        demo.checks.expect(STEP, "both paths were invalidated", done)
    finally:
        lab.stop_sweep()

    # 3. every POP fails over to the origin: nobody gets the old copy
    wrong = []
    for pop in lab.pops:
        for path, status in ((RECALLED, 403), (MEMBERS, 200)):
            answer = lab.viewer_get(pop, LabOrigin.uri(path))
            from_bucket = "x-amz-meta-fetched-at" in answer.headers
            if answer.status != status or from_bucket or answer.hit:
                wrong.append(f"{pop} {path}: {answer.status} {answer.x_cache}")
    demo.checks.expect(
        STEP,
        "every POP fails over to the origin for them (403, and the private page uncached)",
        not wrong,
        "; ".join(wrong[:3]),
    )
    asked = {path: len(lab.origin.counts(path).requests) - requests_before[path] for path in pages}
    demo.say(f"origin requests since the takedown: {asked}")

    # 4. edgefill check: no edge serves the old version
    code = check_against_bucket(demo, list(pages))
    demo.checks.expect(
        STEP, "edgefill check: no edge serves the old version", code == 0, f"exit {code}"
    )
    lab.origin.clear_fault(RECALLED)


def _page(path: str) -> tuple[str, bytes]:
    text = f"<h1>{path}</h1><p>published, for now</p>\n"
    return text, text.encode() * 40


def _copied_and_warm(demo: Stage, pages: tuple[str, ...]) -> None:
    """Given: the pages on the origin, copied by a failover's backfill, warm everywhere."""
    lab = demo.lab
    assert lab.aws is not None
    s3 = lab.aws.client("s3")
    cache_control = {"Cache-Control": f"max-age={LIFETIME_SECONDS}"}
    for path in pages:
        lab.origin.put(path, _page(path)[1], content_type="text/html", headers=cache_control)
        lab.viewer_get("NRT20-P2", LabOrigin.uri(path))  # a miss: failover, then backfill
    copied = demo.wait_until(
        "pages copied",
        len(pages),
        lambda: sum(object_exists(s3, lab.settings.bucket, p.lstrip("/")) for p in pages),
        timeout=TIMEOUT_SECONDS,
    )
    # Viewers at every POP make them warm (whether or not the prewarm worker runs: the
    # demo pauses it for the film before this scene).
    host = lab.settings.viewer_host
    variants = [(code, path) for code in lab.pops for path in pages]

    def warm() -> int:
        cold = [
            (c, p)
            for c, p in variants
            if not lab.pops[c].cached(host, LabOrigin.uri(p), "identity")
        ]
        for code, path in cold:
            lab.viewer_get(code, LabOrigin.uri(path))
        return len(variants) - len(cold)

    warmed = demo.wait_until("pages warm at every POP", len(variants), warm, timeout=10)
    demo.checks.expect(
        STEP, "both pages are in the bucket and warm at every POP", copied and warmed
    )
