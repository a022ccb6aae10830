"""Demo scene "a premiere": one ``edgefill prewarm --expand`` of an HLS master.

The lab's VOD title (``edgefill/lab/vod.py``: a master, 3 renditions, init segments and
segments, an AES key) is on the full origin only. The operator queues one prewarm
message naming the master, with ``--expand``. The prewarm worker warms the master at
every lab region, reads it back, warms the 3 media playlists, reads them, and warms every
init segment and segment, for every encoding. Warming what the bucket lacks fails over
at the POPs, so the edge function queues backfills; the copied playlists expand in the
backfill worker too. Then:

- every object of the tree is in the bucket, byte for byte, and the key is not;
- every POP holds every encoding of every object;
- a viewer's whole playback (master → media playlist → init → every segment), at every
  POP, is Hits.
"""

from __future__ import annotations

from edgefill.lab import vod
from edgefill.lab.origin import LabOrigin
from edgefill.scenes.bucket import object_exists, object_sha256
from edgefill.scenes.stage import Stage
from shared.messages import ENCODINGS

STEP = "6 premiere"
TIMEOUT_SECONDS = 60


def premiere(demo: Stage) -> None:
    """Prewarm the title's master with --expand; check the bucket, the POPs and a playback."""
    demo.step("6. A premiere: one prewarm --expand of the master brings the whole title")
    lab = demo.lab
    assert lab.aws is not None
    tree = vod.title()  # on the full origin since catalog.seed
    paths = tree.hls_tree()
    demo.say(
        f"the title: {len(paths)} objects (a master, {len(tree.renditions)} renditions, "
        f"their init segments and {vod.SEGMENTS} segments each) and an AES key, on the full "
        "origin only"
    )
    argv = [
        "prewarm",
        LabOrigin.uri(tree.master),
        "--expand",
        "--endpoint-url",
        lab.aws.endpoint_url,
        "--prewarm-queue-url",
        lab.aws.queue("PrewarmQueue").url,
    ]
    demo.say("$ edgefill " + " ".join(argv))
    code = demo.operator(argv)
    demo.checks.expect(
        STEP, "edgefill prewarm --expand sent one message", code == 0, f"exit {code}"
    )
    host = lab.settings.viewer_host
    variants = [(pop, path, enc) for pop in lab.pops for path in paths for enc in ENCODINGS]

    def cached() -> int:
        return sum(lab.pops[p].cached(host, LabOrigin.uri(path), e) for p, path, e in variants)

    warmed = demo.wait_until(
        "title variants cached at the POPs", len(variants), cached, timeout=TIMEOUT_SECONDS
    )
    demo.checks.expect(
        STEP,
        f"every POP holds every encoding of all {len(paths)} objects",
        warmed,
        f"{cached()}/{len(variants)}",
    )
    s3 = lab.aws.client("s3")
    bucket = lab.settings.bucket
    stored = demo.wait_until(
        "title objects in the bucket",
        len(paths),
        lambda: sum(object_exists(s3, bucket, path.lstrip("/")) for path in paths),
        timeout=TIMEOUT_SECONDS,
    )
    lab.wait_idle(timeout=TIMEOUT_SECONDS)
    wrong = [p for p in paths if object_sha256(s3, bucket, p.lstrip("/")) != lab.origin.sha256(p)]
    demo.checks.expect(
        STEP,
        "every playlist, init segment and segment is in the bucket, byte for byte",
        stored and not wrong,
        ", ".join(wrong[:3]),
    )
    demo.checks.expect(
        STEP,
        "the AES key was not copied",
        not object_exists(s3, bucket, tree.key.lstrip("/")),
    )
    _playback(demo, tree)


def _playback(demo: Stage, tree: vod.VodTree) -> None:
    lab = demo.lab
    misses = []
    requests = 0
    for index, pop in enumerate(lab.pops):
        rendition = tree.renditions[index % len(tree.renditions)]
        for path in tree.playback(rendition):
            response = lab.viewer_get(pop, LabOrigin.uri(path), "br+gzip")
            requests += 1
            if not response.hit or response.status != 200:
                misses.append(f"{pop} {path}: {response.status} {response.x_cache}")
    demo.say(f"{requests} playback requests at {len(lab.pops)} POPs, {len(misses)} not Hits")
    demo.checks.expect(
        STEP,
        "a viewer's whole playback (master → rendition → every segment) is Hits at every POP",
        not misses,
        "; ".join(misses[:3]),
    )
