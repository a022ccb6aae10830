"""template.yaml, operations (issue 19): each worker may send its refusals to its own DLQ
and nowhere else; the stack deploys on any account (no reserved concurrency: the sweep's
runs never overlap by a lease)."""

from __future__ import annotations

import re

import pytest

from backfill_worker.flight.exclusive import SWEEP_RUN
from backfill_worker.flight.lease import lease_key
from tests.unit.test_template import (
    Template,
    as_list,
    cfn,
    policy_statements,
    props,
    refers_to,
    regional,
    regional_cfn,
    rendered,
    sam,
)
from tests.unit.test_template_freshness import statements_of

__all__ = ["cfn", "regional", "regional_cfn", "sam"]  # the templates and translations

WORKERS = {
    "BackfillWorkerFunction": ("BackfillWorkerRole", "BackfillDLQ", "EDGEFILL_BACKFILL_DLQ_URL"),
    "PrewarmWorkerFunction": ("PrewarmWorkerRole", "PrewarmDLQ", "EDGEFILL_PREWARM_DLQ_URL"),
}


# ---- refusals reach the DLQ ------------------------------------------------------------
@pytest.mark.parametrize("function", sorted(WORKERS))
def test_each_worker_sends_its_refusals_to_its_own_queues_dlq(
    regional: Template, regional_cfn: Template, function: str
) -> None:
    cfn = regional_cfn
    role, dlq, variable = WORKERS[function]
    # Given the worker's environment: its own queue's DLQ
    variables = props(regional, function)["Environment"]["Variables"]
    assert refers_to(variables[variable], dlq)
    (other,) = {v for _, (_, _, v) in WORKERS.items()} - {variable}
    assert other not in variables
    # And its role may send there
    sends = [
        s for s in statements_of(cfn, role) if "sqs:SendMessage" in as_list(s.get("Action", []))
    ]
    assert any(refers_to(s["Resource"], dlq) for s in sends)
    # And no role but its worker's may send to that DLQ (the redrive policy fills it too)
    for owner, statement in policy_statements(cfn):
        if owner != role and "sqs:SendMessage" in as_list(statement.get("Action", [])):
            assert not refers_to(statement["Resource"], dlq), owner


# ---- the stack deploys on any account -------------------------------------------------------
def test_no_function_reserves_concurrency(
    sam: Template, cfn: Template, regional: Template, regional_cfn: Template
) -> None:
    # Lambda refuses a reservation that leaves the account's unreserved concurrency below
    # its minimum: on a new or low-quota account the stack would fail to create.
    for template in (sam, cfn, regional, regional_cfn):
        for name, resource in template["Resources"].items():
            if resource["Type"] in ("AWS::Serverless::Function", "AWS::Lambda::Function"):
                assert "ReservedConcurrentExecutions" not in resource.get("Properties", {}), name


def test_the_sweep_may_hold_its_run_lease_and_no_other(regional_cfn: Template) -> None:
    # Given the sweep's statements on leases
    leases = [
        s
        for s in statements_of(regional_cfn, "RevalidationSweepRole")
        if any("/_edgefill/leases/" in text for r in as_list(s["Resource"]) for text in rendered(r))
    ]
    # Then there is one, on the run lease's object exactly
    (statement,) = leases
    assert set(as_list(statement["Action"])) == {"s3:GetObject", "s3:PutObject", "s3:DeleteObject"}
    texts = {text for r in as_list(statement["Resource"]) for text in rendered(r)}
    assert texts and all(text.endswith("/" + lease_key(SWEEP_RUN)) for text in texts), texts


# ---- the full origin is a name, never an address --------------------------------------------
IP_LITERALS = [
    "192.0.2.1",
    "10.0.0.1",
    "127.1",  # inet_aton's short forms
    "3232235777",
    "0x7f000001",
    "0x7f.0.0.1",
    "::1",
    "2001:db8::1",
    "[2001:db8::1]",
    "::ffff:192.0.2.1",
    "fe80::1%eth0",
]


@pytest.mark.parametrize("literal", IP_LITERALS)
def test_the_full_origin_refuses_ip_literals_at_deploy(sam: Template, literal: str) -> None:
    parameter = sam["Parameters"]["FullOriginDomain"]
    assert not re.fullmatch(parameter["AllowedPattern"], literal)
    # and the operator is told why, and what to do instead
    assert "not an IP address" in parameter["ConstraintDescription"]


@pytest.mark.parametrize(
    "name",
    [
        "origin.example.com",
        "ORIGIN.Example.com",
        "a-b.c.io",
        "xn--bcher-kva.example",
        "ec2-203-0-113-25.compute-1.amazonaws.com",
    ],
)
def test_the_full_origin_takes_dns_names(sam: Template, name: str) -> None:
    assert re.fullmatch(sam["Parameters"]["FullOriginDomain"]["AllowedPattern"], name)


@pytest.mark.parametrize(
    "value", ["localhost", "origin.example.com.", "a..b.com", "-a.example.com", "o.example.com:443"]
)
def test_the_full_origin_refuses_what_is_no_public_name(sam: Template, value: str) -> None:
    assert not re.fullmatch(sam["Parameters"]["FullOriginDomain"]["AllowedPattern"], value)


# ---- the bucket's KMS key, only where S3 is read or written ---------------------------------
def test_only_roles_that_touch_s3_may_use_the_bucket_key(
    regional: Template, regional_cfn: Template
) -> None:
    # Given the roles granted the bucket's KMS key
    granted = {
        role
        for item in props(regional, "BucketKmsKeyAccess")["Roles"]
        for role in ("BackfillWorkerRole", "PrewarmWorkerRole", "RevalidationSweepRole")
        if refers_to(item, role)
    }
    # And the roles whose policies name an S3 object or bucket action
    touching_s3 = {
        owner
        for owner, statement in policy_statements(regional_cfn)
        if owner.endswith("Role")
        and any(str(action).startswith("s3:") for action in as_list(statement.get("Action", [])))
    }
    # Then exactly those may use the key: never the prewarm worker (it reads through edges)
    assert granted == touching_s3 == {"BackfillWorkerRole", "RevalidationSweepRole"}
