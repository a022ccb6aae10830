"""template.yaml, freshness: the sweep (schedule, least-privilege role), invalidation
grants on the one distribution, and the workers' freshness variables."""

from __future__ import annotations

from typing import Any

import pytest

from shared.config import BackfillConfig, PrewarmConfig
from tests.unit.test_template import (
    ROOT,
    ParameterValues,
    Template,
    as_list,
    deployment,
    is_edge_output,
    policy_statements,
    props,
    refers_to,
    regional,
    regional_cfn,
    rendered,
    resources,
    sam,
)

SWEEP = "RevalidationSweepFunction"


__all__ = [
    "regional",
    "regional_cfn",
    "sam",
]  # the template and its translation, fixtures of test_template


def statements_of(template: Template, role: str) -> list[dict[str, Any]]:
    return [statement for owner, statement in policy_statements(template) if owner == role]


def actions_of(template: Template, role: str) -> set[str]:
    return {a for s in statements_of(template, role) for a in as_list(s.get("Action", []))}


def test_the_sweep_runs_on_the_revalidate_schedule(
    regional: Template, regional_cfn: Template
) -> None:
    parameter = regional["Parameters"]["RevalidateSchedule"]
    assert parameter["Default"] == "rate(15 minutes)"  # one look-ahead: refreshes on time
    function = props(regional, SWEEP)
    assert function["Handler"] == "backfill_worker.sweep.handler"
    assert function["Runtime"] == "python3.13" and function["Architectures"] == ["x86_64"]
    assert regional["Resources"][SWEEP]["Metadata"]["BuildMethod"] == "makefile"
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "\nbuild-RevalidationSweepFunction: build-BackfillWorkerFunction" in makefile
    # Runs never overlap, by a lease (test_template_operations.py), not by a reservation
    assert "ReservedConcurrentExecutions" not in function
    rules = resources(regional_cfn, "AWS::Events::Rule")
    assert any(
        refers_to(r["Properties"]["ScheduleExpression"], "RevalidateSchedule")
        for r in rules.values()
    )


@pytest.mark.parametrize(
    ("schedule", "created"), [("rate(1 hour)", True), ("cron(0 3 * * ? *)", True), ("none", False)]
)
def test_none_creates_no_sweep(regional: Template, schedule: str, created: bool) -> None:
    stack = ParameterValues(regional, {"RevalidateSchedule": schedule})
    assert stack.condition("HasRevalidateSchedule") is created
    for name in (SWEEP, "RevalidationSweepRole", "RevalidationSweepLogGroup"):
        assert regional["Resources"][name]["Condition"] == "HasRevalidateSchedule"


def test_the_sweep_role_reads_only_the_due_index_and_sends_only_refreshes(
    regional_cfn: Template,
) -> None:
    statements = statements_of(regional_cfn, "RevalidationSweepRole")
    actions = actions_of(regional_cfn, "RevalidationSweepRole")
    assert actions == {
        "s3:ListBucket",
        "s3:GetObject",
        "s3:PutObject",  # its run lease, and the entry standing for a refresh in flight
        "s3:DeleteObject",
        "sqs:SendMessage",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
    }
    for statement in statements:
        listed = as_list(statement["Action"])
        if "s3:ListBucket" in listed:
            assert statement["Condition"]["StringLike"]["s3:prefix"] == "_edgefill/due/*"
        elif statement.get("Sid") == "TheSweepRunLease":
            continue
        elif any(a.startswith("s3:") for a in listed):
            texts = [t for r in as_list(statement["Resource"]) for t in rendered(r)]
            assert texts and all(t.endswith("/_edgefill/due/*") for t in texts), texts
        elif "sqs:SendMessage" in listed:
            assert refers_to(statement["Resource"], "BackfillQueue")


def test_the_distribution_arn_the_grants_name_is_one_distribution(sam: Template) -> None:
    # The edge stack's DistributionArn output, which the regional grants and bucket
    # policy read: one distribution's ARN, never a pattern
    for parameters in ({}, {"CreateDistribution": "false", "ExistingDistributionId": "E2X"}):
        arn = ParameterValues(sam, {"Region1": "eu-central-1", **parameters}).output(
            "DistributionArn"
        )
        assert arn.startswith("arn:aws:cloudfront::123456789012:distribution/E"), arn
        assert "*" not in arn


def test_invalidation_grants_are_on_the_one_distribution(regional_cfn: Template) -> None:
    grants = {
        "BackfillWorkerRole": "cloudfront:CreateInvalidation",
        "PrewarmWorkerRole": "cloudfront:GetInvalidation",
    }
    for role, action in grants.items():
        found = [
            s
            for s in statements_of(regional_cfn, role)
            if any(a.startswith("cloudfront:") for a in as_list(s["Action"]))
        ]
        assert [as_list(s["Action"]) for s in found] == [[action]], role
        # the edge stack's distribution, by its ARN output
        assert is_edge_output(found[0]["Resource"], "DistributionArn"), role
    assert not any(
        a.startswith("cloudfront:") for a in actions_of(regional_cfn, "RevalidationSweepRole")
    )
    assert "cloudfront:CreateInvalidation" not in actions_of(regional_cfn, "PrewarmWorkerRole")


def test_the_backfill_worker_may_keep_the_index_and_delete_gone_copies(
    regional_cfn: Template,
) -> None:
    statements = statements_of(regional_cfn, "BackfillWorkerRole")
    index = [s for s in statements if s.get("Sid") == "KeepTheDueIndex"]
    assert index and as_list(index[0]["Action"]) == ["s3:PutObject"]
    assert all(t.endswith("/_edgefill/due/*") for t in rendered(index[0]["Resource"]))
    gone = [s for s in statements if s.get("Sid") == "DeleteCopiesGoneAtTheOrigin"]
    assert gone and as_list(gone[0]["Action"]) == ["s3:DeleteObject"]


@pytest.mark.parametrize(
    ("parameters", "distribution"),
    [
        ({}, "E1EDGEFILLTEST"),
        (
            {
                "CreateDistribution": "false",
                "ExistingDistributionId": "E2EXISTING1234",
                "ExistingDistributionDomain": "d222.cloudfront.net",
            },
            "E2EXISTING1234",
        ),
    ],
)
def test_worker_environments_carry_the_freshness_variables(
    sam: Template, regional: Template, parameters: dict[str, str], distribution: str
) -> None:
    stack = deployment(
        sam,
        regional,
        {"FullOriginDomain": "origin.example.com", "RevalidateAfter": "3600", **parameters},
    )
    backfill = BackfillConfig.from_env(stack.environment("BackfillWorkerFunction"))
    prewarm = PrewarmConfig.from_env(stack.environment("PrewarmWorkerFunction"))
    sweep = BackfillConfig.from_env(stack.environment(SWEEP))
    assert backfill.distribution_id == prewarm.distribution_id == distribution
    assert backfill.revalidate_after == sweep.revalidate_after == 3600
    queue = stack.resource("BackfillQueue")
    assert backfill.backfill_queue_url == sweep.backfill_queue_url == queue


def test_an_existing_distribution_must_be_named_by_its_id(sam: Template) -> None:
    # Every regional stack's bucket policy and invalidation grant need the distribution
    (assertion,) = [
        a
        for a in sam["Rules"]["ExistingDistributionNeedsDomain"]["Assertions"]
        if a["Assert"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "ExistingDistributionId"}, ""]}]}
    ]
    assert "ExistingDistributionId" in assertion["AssertDescription"]


def test_the_look_ahead_fits_sqs_delay_and_the_schedule_period(
    sam: Template, regional: Template
) -> None:
    # Given the defaults / Then the sweep looks one 15-minute period ahead, which SQS's
    # DelaySeconds (at most 900 s) can still bring to each copy's due time
    look_ahead = regional["Parameters"]["RevalidateLookAhead"]
    assert (look_ahead["Default"], look_ahead["MinValue"], look_ahead["MaxValue"]) == (900, 0, 900)
    assert regional["Parameters"]["RevalidateSchedule"]["Default"] == "rate(15 minutes)"
    floor = regional["Parameters"]["MinRevalidateInterval"]
    assert floor["Default"] == 900 and floor["MinValue"] >= 60  # at least the period
    stack = deployment(
        sam,
        regional,
        {
            "FullOriginDomain": "origin.example.com",
            "RevalidateLookAhead": "600",
            "MinRevalidateInterval": "1800",
        },
    )
    assert BackfillConfig.from_env(stack.environment(SWEEP)).sweep_lookahead == 600
    worker = BackfillConfig.from_env(stack.environment("BackfillWorkerFunction"))
    assert worker.min_revalidate == 1800
