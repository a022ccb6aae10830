"""Template: playlist expansion is on by default, sends where it may, and can be turned off."""

from __future__ import annotations

from shared.config import BackfillConfig, PrewarmConfig
from tests.unit.test_template import (
    Template,
    deployment,
    policy_statements,
    refers_to,
    regional,
    sam,
)

__all__ = ["regional", "sam"]  # fixtures of test_template

ORIGIN = {"FullOriginDomain": "origin.example.com"}


def test_expansion_is_on_by_default_and_sends_to_the_backfill_queue(
    sam: Template, regional: Template
) -> None:
    # Given the template's defaults
    stack = deployment(sam, regional, ORIGIN)
    # When the backfill worker reads its environment
    config = BackfillConfig.from_env(stack.environment("BackfillWorkerFunction"))
    # Then copied playlists expand, into the backfill queue, 20,000 objects at most
    assert config.expand_playlists is True
    assert config.backfill_queue_url == stack.resource("BackfillQueue")
    assert config.expand_max == 20_000


def test_expansion_can_be_turned_off_and_capped(sam: Template, regional: Template) -> None:
    stack = deployment(sam, regional, {**ORIGIN, "ExpandPlaylists": "false", "ExpandMax": "500"})
    config = BackfillConfig.from_env(stack.environment("BackfillWorkerFunction"))
    assert config.expand_playlists is False and config.expand_max == 500


def test_only_the_backfill_worker_may_send_to_the_backfill_queue_besides_the_edge(
    regional: Template,
) -> None:
    # Given every statement allowing sqs:SendMessage on the backfill queue
    senders = {
        owner
        for owner, statement in policy_statements(regional)
        if statement.get("Effect") == "Allow"
        and "sqs:SendMessage" in str(statement.get("Action"))
        and refers_to(statement.get("Resource"), "BackfillQueue")
    }
    # Then the backfill worker's role is one of them (expansion), the prewarm worker's is not
    assert "BackfillWorkerRole" in senders
    assert "PrewarmWorkerRole" not in senders


def test_both_workers_read_manifests_against_the_same_hosts(
    sam: Template, regional: Template
) -> None:
    # Given a deployment with aliases, a viewer host and an origin path
    stack = deployment(
        sam,
        regional,
        {
            **ORIGIN,
            "FullOriginPath": "/vod",
            "Aliases": "video.example.com,www.example.com",
            "AcmCertificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/abc",
            "ViewerHost": "video.example.com",
        },
    )
    backfill = BackfillConfig.from_env(stack.environment("BackfillWorkerFunction"))
    prewarm = PrewarmConfig.from_env(stack.environment("PrewarmWorkerFunction"))
    # Then the backfill worker knows the distribution domain, the viewer host, the aliases
    assert backfill.viewer_hosts == (
        "d111111abcdef8.cloudfront.net",
        "video.example.com",
        "video.example.com",
        "www.example.com",
    )
    # And the prewarm worker, which never contacts it, knows the full origin the same way
    assert prewarm.origin_url == backfill.origin_url == "https://origin.example.com/vod"
    assert {prewarm.distribution_domain, prewarm.viewer_host, *prewarm.allowed_hosts} <= set(
        backfill.viewer_hosts
    )
