"""template.yaml, operations (issue 19): each worker may send its refusals to its own DLQ
and nowhere else."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.test_template import (
    Template,
    as_list,
    cfn,
    policy_statements,
    props,
    refers_to,
    sam,
)

__all__ = ["cfn", "sam"]  # the template and its translation, fixtures of test_template

WORKERS = {
    "BackfillWorkerFunction": ("BackfillWorkerRole", "BackfillDLQ", "EDGEFILL_BACKFILL_DLQ_URL"),
    "PrewarmWorkerFunction": ("PrewarmWorkerRole", "PrewarmDLQ", "EDGEFILL_PREWARM_DLQ_URL"),
}


def statements_of(template: Template, role: str) -> list[dict[str, Any]]:
    return [statement for owner, statement in policy_statements(template) if owner == role]


# ---- refusals reach the DLQ ------------------------------------------------------------
@pytest.mark.parametrize("function", sorted(WORKERS))
def test_each_worker_sends_its_refusals_to_its_own_queues_dlq(
    sam: Template, cfn: Template, function: str
) -> None:
    role, dlq, variable = WORKERS[function]
    # Given the worker's environment: its own queue's DLQ
    variables = props(sam, function)["Environment"]["Variables"]
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
