"""``prewarm`` across regions sends each target once: a deployment region to its own
worker, anything else (a POP, another region) to the default region's."""

from __future__ import annotations

from edgefill.commands.queue_commands import route_targets


def test_each_target_goes_to_one_region() -> None:
    routed = route_targets(
        ["eu-central-1", "NRT20-P2", "ap-southeast-1", "us-west-2"],
        ["ap-southeast-1", "eu-central-1"],
        "ap-southeast-1",
    )
    assert routed == {
        "eu-central-1": ["eu-central-1"],
        "ap-southeast-1": ["NRT20-P2", "ap-southeast-1", "us-west-2"],
    }


def test_with_one_region_selected_everything_goes_there() -> None:
    # --region eu-central-1: the default region is not among those selected
    routed = route_targets(["ap-southeast-1", "FRA56-P1"], ["eu-central-1"], "ap-southeast-1")
    assert routed == {"eu-central-1": ["ap-southeast-1", "FRA56-P1"]}
