"""Demo scene "two regions": each overseas bucket keeps its own region's hot set.

It runs in the regions lab (``edgefill/lab/regions.py``): an edge stack whose CloudFront
Function routes SG and MY viewers to ap-southeast-1 and DE and FR viewers to eu-central-1,
and one regional stack (bucket, queues, workers) per region.

1. Viewers in Singapore, Malaysia, Germany and France ask for objects neither bucket holds:
   one in both regions, one only in Asia, one only in Europe. Each is served from the full
   origin (a Miss), through the origin group of the viewer's region.
2. Each region's backfill worker copies what its viewers missed into its own bucket: each
   bucket ends with exactly its region's objects, byte for byte; the object asked in both
   regions is in both, each copy fetched from the full origin once by its region's worker.
3. Each region's prewarm worker warms its region's edges, for every encoding: the shared
   object at both POPs, each regional object at its own region's POP only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, Protocol

from edgefill.lab.origin import LabOrigin
from shared.messages import ENCODINGS

if TYPE_CHECKING:
    from edgefill.lab.regions import RegionsLab
    from edgefill.scenes.stage import Expectations

STEP: Final = "10 regions"
SHARED: Final = "/regions/poster 東京.jpg"  # asked in both regions
ASIA: Final = "/regions/sg-launch.js"
EUROPE: Final = "/regions/de-launch.css"
ASIA_REGION: Final = "ap-southeast-1"
EUROPE_REGION: Final = "eu-central-1"
# (POP, viewer country, path): who asks for what.
VIEWERS: Final = (
    ("SIN2-P1", "SG", SHARED),
    ("SIN2-P1", "MY", SHARED),
    ("SIN2-P1", "SG", ASIA),
    ("FRA56-P1", "DE", SHARED),
    ("FRA56-P1", "FR", EUROPE),
    ("FRA56-P1", "DE", EUROPE),
)
EXPECTED: Final = {ASIA_REGION: (SHARED, ASIA), EUROPE_REGION: (SHARED, EUROPE)}
REGION_POP: Final = {ASIA_REGION: "SIN2-P1", EUROPE_REGION: "FRA56-P1"}
TIMEOUT_SECONDS: Final = 60


class RegionsStage(Protocol):
    """What the scene needs from whatever runs it (``edgefill.demo.Demo`` has it all)."""

    @property
    def checks(self) -> Expectations: ...

    def say(self, text: str) -> None: ...

    def step(self, title: str) -> None: ...


def regions(demo: RegionsStage, lab: RegionsLab) -> None:
    """Viewers in two regions; each bucket ends with its own region's objects."""
    demo.step("10. Two regions: each bucket keeps what its own viewers ask for")
    bodies = {
        SHARED: ("image/jpeg", b"\xff\xd8poster" * 4000),
        ASIA: ("application/javascript", b"console.log('sg');\n" * 300),
        EUROPE: ("text/css", b"body{color:#123}\n" * 300),
    }
    for path, (content_type, body) in bodies.items():
        lab.put(path, body, content_type=content_type)
    demo.say(
        "routes: "
        + "; ".join(f"{r.region} ← {', '.join(r.countries)}" for r in lab.settings.regions)
        + f" (default {lab.default_region})"
    )

    # 1. every viewer served from the full origin, through its own region's group
    for code, country, path in VIEWERS:
        answer = lab.viewer_get(code, LabOrigin.uri(path), country=country)
        seen = f"{answer.status} {answer.x_cache}"
        demo.say(f"a viewer in {country} at {code} asks {path}: {seen}")
        ok = answer.status == 200 and answer.body == bodies[path][1]
        demo.checks.expect(STEP, f"{country} viewer at {code} served {path}", ok, seen)
    for region, paths in EXPECTED.items():
        failed_over = {path: lab.region(region).failovers(path) for path in paths}
        demo.checks.expect(
            STEP,
            f"{region}'s viewers failed over to {region}'s origin for its objects",
            all(failed_over.values()),
            str(failed_over),
        )

    # 2. each bucket: exactly its region's objects, each copy fetched once
    lab.wait_idle(timeout=TIMEOUT_SECONDS)
    for region, paths in EXPECTED.items():
        keys = lab.bucket_keys(region)
        wanted = {path.lstrip("/") for path in paths}
        demo.say(f"{lab.region(region).bucket}: {', '.join(sorted(keys))}")
        demo.checks.expect(
            STEP,
            f"{region}'s bucket holds exactly its region's objects",
            keys == wanted,
            f"{sorted(keys)}",
        )
        s3 = lab.client("s3", region)
        same = all(
            s3.get_object(Bucket=lab.region(region).bucket, Key=path.lstrip("/"))["Body"].read()
            == bodies[path][1]
            for path in paths
            if path.lstrip("/") in keys
        )
        demo.checks.expect(STEP, f"{region}'s copies are byte-identical", same)
        copies = {path: lab.region(region).copies(path) for path in bodies}
        expected_copies = {path: int(path in paths) for path in bodies}
        demo.checks.expect(
            STEP,
            f"{region}'s worker fetched each of its objects from the full origin once",
            copies == expected_copies,
            str(copies),
        )

    # 3. warmed at its own region's edges, every encoding; nowhere else
    host = lab.settings.viewer_host
    for region, paths in EXPECTED.items():
        pop = lab.pops[REGION_POP[region]]
        cold = [
            f"{path} {encoding}"
            for path in paths
            for encoding in ENCODINGS
            if not pop.cached(host, LabOrigin.uri(path), encoding)
        ]
        demo.checks.expect(
            STEP,
            f"{region}'s objects are warm at {pop.site.code} for every encoding",
            not cold,
            "; ".join(cold[:4]),
        )
    strays = [
        f"{path} at {code}"
        for path, code in ((ASIA, "FRA56-P1"), (EUROPE, "SIN2-P1"), (ASIA, "IAD89-P3"))
        if any(lab.pops[code].cached(host, LabOrigin.uri(path), e) for e in ENCODINGS)
    ]
    demo.checks.expect(
        STEP, "no region's warm reached another region's edges", not strays, ", ".join(strays)
    )
