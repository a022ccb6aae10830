"""``edgefill doctor --canary``'s flow in the lab: one object the bucket lacks goes through
a POP (failover to the full origin, same bytes), and its copy appears in the bucket."""

from __future__ import annotations

import hashlib
import uuid

import pytest

from edgefill.doctor.canary import Fetch, Fetched, http_fetch, run_canary
from edgefill.doctor.checks import Check
from edgefill.lab.lab import Lab
from edgefill.operations import OperatorError
from shared.keys import ObjectKey


def through_pop(lab: Lab, code: str = "FRA56-P1") -> Fetch:
    """A viewer at a lab POP, as the canary's distribution fetch."""

    def fetch(uri: str) -> Fetched:
        answer = lab.viewer_get(code, uri)
        return Fetched(
            answer.status, len(answer.body), hashlib.sha256(answer.body).hexdigest(), answer.x_cache
        )

    return fetch


def canary(lab: Lab, uri: str, max_wait: float = 60.0) -> tuple[Check, list[float]]:
    assert lab.aws is not None
    key = ObjectKey.from_uri(uri, lab.env.get("EDGEFILL_KEY_PREFIX", "")).key
    waited: list[float] = []
    check = run_canary(
        uri,
        origin=http_fetch(lab.origin.url),
        viewer=through_pop(lab),
        s3=lab.aws.client("s3"),
        bucket=lab.settings.bucket,
        key=key,
        max_wait=max_wait,
        poll=0.2,
        progress=waited.append,
    )
    return check, waited


def test_the_canary_follows_one_object_from_the_origin_into_the_bucket(lab: Lab) -> None:
    # Given an object only the full origin has
    uri = f"/canary/{uuid.uuid4().hex}.bin"
    lab.origin.put(uri, b"canary " * 20_000)
    # When the canary runs through a POP
    check, waited = canary(lab, uri)
    # Then the POP served the origin's bytes and the copy arrived with the same length
    assert check.ok, check.detail
    assert "same bytes" in check.detail and "in the bucket after" in check.detail
    assert check.detail.startswith("origin ") and "(140000 B)" in check.detail
    assert waited == sorted(waited)  # progress while waiting, in order
    # And a second canary on the same path is refused: it is in the bucket now
    with pytest.raises(OperatorError, match="already in the bucket"):
        canary(lab, uri)


def test_a_path_the_origin_lacks_is_not_a_canary(lab: Lab) -> None:
    with pytest.raises(OperatorError, match="answered 404"):
        canary(lab, f"/canary/{uuid.uuid4().hex}-absent.bin")


def test_a_distribution_serving_other_bytes_fails_the_canary(lab: Lab) -> None:
    # Given a POP whose answer differs from the origin's (the origin changed in between)
    uri = f"/canary/{uuid.uuid4().hex}.txt"
    lab.origin.put(uri, b"version one")

    def stale_viewer(path: str) -> Fetched:
        return Fetched(200, 3, hashlib.sha256(b"old").hexdigest(), "Hit from cloudfront")

    assert lab.aws is not None
    check = run_canary(
        uri,
        origin=http_fetch(lab.origin.url),
        viewer=stale_viewer,
        s3=lab.aws.client("s3"),
        bucket=lab.settings.bucket,
        key=ObjectKey.from_uri(uri).key,
        max_wait=0.5,
        poll=0.1,
    )
    # Then the canary fails at the distribution step, saying the bytes differ
    assert not check.ok and "differ from the origin's" in check.detail and check.remedy


def test_a_copy_that_never_comes_fails_after_the_wait(lab: Lab) -> None:
    # Given a "distribution" that serves the right bytes but never fails over (no backfill)
    uri = f"/canary/{uuid.uuid4().hex}.txt"
    lab.origin.put(uri, b"never copied")
    assert lab.aws is not None
    check = run_canary(
        uri,
        origin=http_fetch(lab.origin.url),
        viewer=http_fetch(lab.origin.url),
        s3=lab.aws.client("s3"),
        bucket=lab.settings.bucket,
        key=ObjectKey.from_uri(uri).key,
        max_wait=0.6,
        poll=0.2,
    )
    # Then the canary fails once the wait is over, pointing at the logs
    assert not check.ok and "not in the bucket after" in check.detail
    assert "logs" in check.remedy
