"""The rules behind refresh, invalidate and check: paths, batches, versions, verdicts."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from edgefill import invalidations
from edgefill.cli import build_parser
from edgefill.commands import freshness
from edgefill.commands.edge_flags import EDGE_FLAGS
from edgefill.edge_check import NO_COPY, EdgeAnswer, head, verdict_of, version_of
from edgefill.operations import OperatorError


def answer(target: str, version: str | None, status: int = 200, **more: Any) -> EdgeAnswer:
    return EdgeAnswer(target, "gzip", edge="127.0.0.1", status=status, version=version, **more)


def test_a_copy_and_the_origins_answer_are_the_same_version() -> None:
    assert version_of({"ETag": '"s3-etag"', "x-amz-meta-origin-etag": '"v2"'}) == '"v2"'
    assert version_of({"etag": '"v2"'}) == '"v2"'
    assert version_of({}) is None


def test_every_edge_on_one_version_is_consistent() -> None:
    verdict = verdict_of("/a", [answer("NRT20-P2", '"v2"'), answer("FRA56-P1", '"v2"')])
    assert (verdict.verdict, verdict.reference, verdict.differing) == ("consistent", '"v2"', [])


def test_an_edge_on_another_version_is_stale_and_named() -> None:
    answers = [answer("NRT20-P2", '"v2"'), answer("FRA56-P1", '"v1"', pop="FRA56-P1")]
    # Given the bucket holds v2 / Then the edge still on v1 is named
    verdict = verdict_of("/a", answers, bucket_version='"v2"')
    assert verdict.verdict == "stale"
    assert verdict.differing == ['FRA56-P1 gzip (FRA56-P1): 200 "v1"']
    # And every edge agreeing on v1 while the bucket has v2 is stale too
    assert verdict_of("/a", [answer("X", '"v1"')], bucket_version='"v2"').verdict == "stale"


def test_an_edge_that_does_not_answer_is_an_error() -> None:
    answers = [answer("NRT20-P2", '"v2"'), EdgeAnswer("GRU3-P1", "br", error="timed out")]
    assert verdict_of("/a", answers).verdict == "error"
    assert verdict_of("/a", [answer("NRT20-P2", None, status=503)]).verdict == "error"


def test_every_edge_agreeing_on_a_404_is_not_consistent() -> None:
    assert verdict_of("/a", [answer("A", None, 404), answer("B", None, 404)]).verdict == "stale"


def test_after_a_takedown_no_edge_may_serve_the_buckets_old_copy() -> None:
    # Given the bucket has no copy: edges that failed over to the origin agree with it,
    # whatever the origin answers (a 403, or a private 200 of the same bytes)
    origin_answers = [answer("NRT20-P2", None, 403), answer("FRA56-P1", '"v1"', 200)]
    verdict = verdict_of("/a", origin_answers, bucket_version=NO_COPY)
    assert (verdict.verdict, verdict.reference, verdict.bucket_copy) == ("consistent", None, False)
    assert verdict.as_dict()["bucketCopy"] is False
    # But an edge still serving the copy is stale, and named
    still = answer("GRU3-P1", '"v1"', 200, from_bucket=True)
    verdict = verdict_of("/a", [*origin_answers, still], bucket_version=NO_COPY)
    assert verdict.verdict == "stale" and verdict.differing[0].startswith("GRU3-P1")
    assert verdict.edges[-1].as_dict()["fromBucket"] is True


def test_an_answer_carrying_edgefills_metadata_is_a_bucket_copy() -> None:
    class Response:
        status, content_length = 200, 3
        headers = {"ETag": '"s3"', "x-amz-meta-origin-etag": '"v1"', "X-Cache": "Hit"}

    class Client:
        def head(self, *args: object) -> Response:
            return Response()

    found = head(Client(), "127.0.0.1", "h", "/a", "NRT20-P2", "gzip")  # type: ignore[arg-type]
    assert found.from_bucket and found.version == '"v1"'


def test_invalidation_paths_are_encoded_and_wildcards_kept_at_the_end() -> None:
    given = [("1", "/img/a b.jpg"), ("2", "/img/*"), ("3", "/*"), ("4", "/"), ("5", "/img/a b.jpg")]
    assert invalidations.invalidation_paths(given) == ["/img/a%20b.jpg", "/img/*", "/*", "/"]
    for bad in ("/a*b", "img/x", "/../etc", "/_edgefill/due/x", "/a\nb"):
        with pytest.raises(OperatorError):
            invalidations.invalidation_paths([("arg", bad)])


def test_batches_respect_cloudfronts_path_and_wildcard_limits() -> None:
    plain = [f"/p/{n}" for n in range(7000)]
    assert [len(b) for b in invalidations.batches(plain)] == [3000, 3000, 1000]
    wild = [f"/w/{n}/*" for n in range(40)]
    assert [len(b) for b in invalidations.batches(wild)] == [15, 15, 10]


class BusyCloudFront:
    def __init__(self, busy: int = 0, refuse: str | None = None) -> None:
        self.busy, self.refuse = busy, refuse
        self.created: list[list[str]] = []
        self.polls = 0

    def create_invalidation(self, DistributionId: str, InvalidationBatch: Any) -> Any:  # noqa: N803
        if self.refuse:
            raise ClientError({"Error": {"Code": self.refuse, "Message": "no"}}, "Create")
        if self.busy:
            self.busy -= 1
            raise ClientError(
                {"Error": {"Code": "TooManyInvalidationsInProgress", "Message": "busy"}}, "Create"
            )
        self.created.append(InvalidationBatch["Paths"]["Items"])
        return {"Invalidation": {"Id": f"I{len(self.created)}", "Status": "InProgress"}}

    def get_invalidation(self, DistributionId: str, Id: str) -> Any:  # noqa: N803
        self.polls += 1
        return {
            "Invalidation": {"Id": Id, "Status": "Completed" if self.polls > 2 else "InProgress"}
        }


def test_a_busy_distribution_is_tried_again_and_waited_for() -> None:
    cloudfront, sleeps = BusyCloudFront(busy=2), []
    run = invalidations.create(cloudfront, "E2EXAMPLE", ["/a", "/b"], sleep=sleeps.append)
    assert run.ok and cloudfront.created == [["/a", "/b"]] and len(sleeps) == 2
    assert invalidations.wait(cloudfront, run, 60, sleep=lambda _: None)
    assert run.completed == 1


def test_waiting_gives_up_at_the_timeout() -> None:
    cloudfront = BusyCloudFront()
    run = invalidations.create(cloudfront, "E2EXAMPLE", ["/a"])
    ticks = iter([0.0, 1.0, 100.0, 200.0])
    assert not invalidations.wait(
        cloudfront, run, 50, sleep=lambda _: None, clock=lambda: next(ticks)
    )


def test_an_unknown_distribution_is_bad_input() -> None:
    with pytest.raises(OperatorError, match="NoSuchDistribution"):
        invalidations.create(BusyCloudFront(refuse="NoSuchDistribution"), "E2EXAMPLE", ["/a"])


def test_refresh_bodies_are_refresh_messages() -> None:
    (body,) = freshness.refresh_bodies([("1", "/a b.html")], "cdn.example.com")
    assert json.loads(body) | {"at": None} == {
        "v": 1,
        "type": "backfill",
        "uri": "/a%20b.html",
        "host": "cdn.example.com",
        "mode": "refresh",
        "at": None,
    }


@pytest.mark.parametrize("command", ["warm", "check"])
def test_check_finds_edges_with_the_same_flags_as_warm(command: str) -> None:
    # Given every edge-finding flag on the command line
    argv = [command, "/a"]
    for flag in EDGE_FLAGS:
        option = f"--{flag.replace('_', '-')}"
        argv += [option] if flag == "allow_private_edges" else [option, "https"]
    # When parsed, then each lands where the command reads it from
    args = build_parser().parse_args(argv)
    assert {flag: getattr(args, flag) for flag in EDGE_FLAGS} == {
        flag: "true" if flag == "allow_private_edges" else "https" for flag in EDGE_FLAGS
    }
