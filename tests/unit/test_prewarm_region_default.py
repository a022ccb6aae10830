"""Regions (issue 20): with no targets in the message nor in EDGEFILL_TARGETS, a regional
prewarm worker warms its own region's edges; operators' targets always win."""

from __future__ import annotations

import pytest

from prewarm_worker.worker import default_targets
from shared.config import PrewarmConfig

BASE = {"EDGEFILL_DISTRIBUTION_DOMAIN": "d111111abcdef8.cloudfront.net"}


def config(**env: str) -> PrewarmConfig:
    return PrewarmConfig.from_env({**BASE, **env})


def test_a_worker_in_singapore_warms_singapore_by_default() -> None:
    assert default_targets(config(AWS_REGION="ap-southeast-1")) == ("ap-southeast-1",)


def test_configured_targets_win_over_the_workers_region() -> None:
    chosen = config(AWS_REGION="ap-southeast-1", EDGEFILL_TARGETS="eu-central-1,NRT20-P2")
    assert default_targets(chosen) == ("eu-central-1", "NRT20-P2")


def test_a_region_with_only_an_override_subnet_is_a_default_too() -> None:
    chosen = config(
        AWS_REGION="ap-east-9", EDGEFILL_REGION_SUBNETS='{"ap-east-9": "203.0.113.0/24"}'
    )
    assert default_targets(chosen) == ("ap-east-9",)


@pytest.mark.parametrize("region", ["ap-east-9", "", "not a region", "AP-SOUTHEAST-1"])
def test_no_default_when_the_region_is_unknown_or_not_a_region(region: str) -> None:
    # A region without a client subnet cannot be resolved as a viewer there would: no
    # default (the message is then refused with "no targets", naming the region).
    assert default_targets(config(AWS_REGION=region)) == ()
