"""The regions lab's routing (issue 20, point 6): the POPs run the deployed CloudFront
Function in Node.js; country → region → that region's bucket → failover to that region's
copy of the full origin → the backfill message on that region's queue. And what goes
wrong: an unknown or missing country, a regional bucket gone, a function that throws,
runs too long or names an origin the distribution lacks."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from edgefill.lab.lab import LabError
from edgefill.lab.origin import LabOrigin
from edgefill.lab.regions import RegionsLab, RegionsLabSettings, RegionSpec

ASIA, EUROPE, GONE = "ap-southeast-1", "eu-central-1", "us-west-2"
REGIONS = (
    RegionSpec(ASIA, ("SG", "MY")),
    RegionSpec(EUROPE, ("DE", "FR")),
    RegionSpec(GONE, ("JP",), bucket=False),  # a regional stack whose bucket was deleted
)


@pytest.fixture(scope="module")
def lab() -> Iterator[RegionsLab]:
    # No pollers: the backfill messages stay on their queues for the tests to read.
    running = RegionsLab(RegionsLabSettings(regions=REGIONS, pollers=False)).start()
    yield running
    running.stop()
    assert running.leftovers() == []


@pytest.fixture(autouse=True)
def lab_environment(lab: RegionsLab, fake_aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in lab.env.items():
        monkeypatch.setenv(name, value)


def _queued(lab: RegionsLab, region: str, uri: str) -> list[dict[str, object]]:
    return [m for m in lab.queue_messages(region) if m.get("uri") == uri]


def test_a_viewers_country_picks_its_regions_bucket_origin_copy_and_queue(
    lab: RegionsLab,
) -> None:
    # Given an object on the origin that no bucket holds
    path = "/routing/de.txt"
    lab.put(path, b"fur Frankfurt\n" * 50, content_type="text/plain")
    # When a German viewer asks at the Singapore POP
    answer = lab.viewer_get("SIN2-P1", LabOrigin.uri(path), country="DE")
    # Then eu-central-1's group served it: its bucket missed, its origin copy answered
    assert (answer.status, answer.x_cache) == (200, "Miss from cloudfront")
    assert lab.region(EUROPE).failovers(path) == 1
    assert lab.region(ASIA).failovers(path) == 0
    # and the backfill went to eu-central-1's queue, not Singapore's
    assert len(_queued(lab, EUROPE, LabOrigin.uri(path))) == 1
    assert _queued(lab, ASIA, LabOrigin.uri(path)) == []


def test_an_object_in_the_regions_bucket_is_served_from_it(lab: RegionsLab) -> None:
    # Given an object only in ap-southeast-1's bucket
    path = "/routing/in-bucket.txt"
    lab.client("s3", ASIA).put_object(
        Bucket=lab.region(ASIA).bucket, Key=path.lstrip("/"), Body=b"from the bucket"
    )
    # When a Malaysian viewer asks
    answer = lab.viewer_get("SIN2-P1", path, country="MY")
    # Then the bucket answered: no failover, no origin request, nothing queued
    assert (answer.status, answer.body) == (200, b"from the bucket")
    assert all(lab.region(r).failovers(path) == 0 for r in lab.regions)
    assert _queued(lab, ASIA, path) == []


@pytest.mark.parametrize("country", ["US", None])
def test_an_unknown_or_missing_country_goes_to_the_default_region(
    lab: RegionsLab, country: str | None
) -> None:
    path = f"/routing/default-{country}.txt"
    lab.put(path, b"default\n", content_type="text/plain")
    answer = lab.viewer_get("IAD89-P3", path, country=country)
    assert answer.status == 200
    assert lab.region(ASIA).failovers(path) == 1  # the default region: the first
    assert len(_queued(lab, ASIA, path)) == 1
    assert _queued(lab, EUROPE, path) == []


def test_a_regions_missing_bucket_still_serves_viewers_from_the_full_origin(
    lab: RegionsLab,
) -> None:
    path = "/routing/jp.txt"
    lab.put(path, b"tokyo\n", content_type="text/plain")
    answer = lab.viewer_get("IAD89-P3", path, country="JP")
    # The bucket is gone (NoSuchBucket, as 403 behind OAC): the group fails over
    assert (answer.status, answer.body) == (200, b"tokyo\n")
    assert lab.region(GONE).failovers(path) == 1
    assert len(_queued(lab, GONE, path)) == 1


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ("throw new Error('broken deploy');", "FunctionExecutionError"),
        ("while (true) {}", "FunctionThrottledError"),
        (
            "cf.createRequestOriginGroup({originIds: ['bucket-mars-1', 'full-mars-1'], "
            "failoverCriteria: {statusCodes: [403]}}); return event.request;",
            "origin 'bucket-mars-1' is not in the distribution",
        ),
        ("cf.createRequestOriginGroup({originIds: 'x'}); return event.request;", "originIds"),
        ("return undefined;", "returned no request"),
    ],
)
def test_a_failing_function_gives_the_viewer_a_503_as_cloudfront_does(
    lab: RegionsLab, body: str, kind: str
) -> None:
    path = f"/routing/failing-{kind.split()[0].strip(chr(39))}.txt"
    lab.put(path, b"never fetched\n", content_type="text/plain")
    lab.use_function(f"import cf from 'cloudfront';\nfunction handler(event) {{ {body} }}\n")
    try:
        answer = lab.viewer_get("SIN2-P1", path, country="SG")
    finally:
        lab.use_function(lab.rendered_function())
    assert answer.status == 503
    assert answer.x_cache == "Error from cloudfront"
    assert kind in answer.body.decode()
    # nothing was fetched from any origin, nothing queued
    assert all(lab.region(r).failovers(path) == 0 for r in lab.regions)
    # and the restored function routes again
    assert lab.viewer_get("SIN2-P1", path, country="SG").status == 200


def test_a_function_leaving_the_static_group_in_place_routes_to_region1(lab: RegionsLab) -> None:
    path = "/routing/static.txt"
    lab.put(path, b"static\n", content_type="text/plain")
    lab.use_function(
        "import cf from 'cloudfront';\nfunction handler(event) { return event.request; }\n"
    )
    try:
        answer = lab.viewer_get("FRA56-P1", path, country="DE")
    finally:
        lab.use_function(lab.rendered_function())
    assert answer.status == 200
    assert lab.region(ASIA).failovers(path) == 1
    assert lab.region(EUROPE).failovers(path) == 0


def test_the_lab_registers_the_edge_stack_and_one_regional_stack_per_region(
    lab: RegionsLab,
) -> None:
    def outputs(region: str, stack: str) -> dict[str, str]:
        described = lab.client("cloudformation", region).describe_stacks(StackName=stack)
        return {o["OutputKey"]: o["OutputValue"] for o in described["Stacks"][0]["Outputs"]}

    edge = outputs("us-east-1", "edgefill")
    assert edge["Regions"] == f"{ASIA},{EUROPE},{GONE}"
    assert edge["Routes"] == f"{ASIA}:SG,MY;{EUROPE}:DE,FR;{GONE}:JP"
    assert edge["DefaultRegion"] == ASIA
    for region in (ASIA, EUROPE, GONE):
        regional = outputs(region, "edgefill-regional")
        assert regional["BucketName"] == f"edgefill-123456789012-{region}"
        assert regional["BackfillQueueUrl"] == (
            f"https://sqs.{region}.amazonaws.com/123456789012/edgefill-backfill"
        )


def test_the_regions_lab_refuses_regions_it_cannot_route() -> None:
    with pytest.raises(LabError, match="distinct regions"):
        RegionsLab(RegionsLabSettings(regions=(REGIONS[0], REGIONS[0])))
    with pytest.raises(LabError, match="default region 'eu-west-1'"):
        RegionsLab(RegionsLabSettings(regions=REGIONS, default_region="eu-west-1"))
    with pytest.raises(LabError, match="routes: .*'sg'"):
        RegionsLab(RegionsLabSettings(regions=(RegionSpec(ASIA, ("sg",)),)))
    with pytest.raises(LabError, match="routes: .*DE"):
        RegionsLab(RegionsLabSettings(regions=(RegionSpec(ASIA, ("DE",)), REGIONS[1])))
    with pytest.raises(LabError, match="geolocates"):
        RegionsLab().viewer_get("SIN2-P1", "/", country="ZZ")
