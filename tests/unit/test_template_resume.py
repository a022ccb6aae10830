"""Template rules of copies longer than one invocation: the worker knows its own queue,
may send continuations to it, and may look up open uploads of the bucket."""

from __future__ import annotations

from typing import Any

from tests.unit.test_template import (
    Template,
    as_list,
    policy_statements,
    props,
    refers_to,
    regional,
    regional_cfn,
)

__all__ = ["regional_cfn", "regional"]  # fixtures of test_template


def actions(statement: dict[str, Any]) -> list[str]:
    return [str(action) for action in as_list(statement["Action"])]


def test_the_backfill_worker_sends_continuations_to_its_own_queue(regional: Template) -> None:
    variables = props(regional, "BackfillWorkerFunction")["Environment"]["Variables"]
    assert refers_to(variables["EDGEFILL_BACKFILL_QUEUE_URL"], "BackfillQueue")


def test_the_backfill_role_may_send_to_its_queue_and_list_open_uploads(
    regional_cfn: Template,
) -> None:
    statements = [
        s for owner, s in policy_statements(regional_cfn) if owner == "BackfillWorkerRole"
    ]
    sends = [s for s in statements if "sqs:SendMessage" in actions(s) and s["Effect"] == "Allow"]
    assert any(refers_to(s["Resource"], "BackfillQueue") for s in sends)
    listing = [s for s in statements if "s3:ListBucketMultipartUploads" in actions(s)]
    assert listing and all(s["Effect"] == "Allow" for s in listing)
    parts = [s for s in statements if "s3:ListMultipartUploadParts" in actions(s)]
    assert parts, "ListParts checks that a checkpoint's upload still holds its parts"
