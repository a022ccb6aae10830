"""Template rules behind the backfill worker's reliability (issue 19): the size limit a
deployment may set fits in one multipart upload; pending invalidations may be kept in the
bucket and their reminders sent to the worker's own queue."""

from __future__ import annotations

import re
from typing import Any

from backfill_worker.freshness.invalidation_journal import JOURNAL_PREFIX, WINDOWS_PREFIX
from shared.config import MAX_OBJECT_BYTES
from tests.unit.test_template import (
    Template,
    as_list,
    policy_statements,
    props,
    refers_to,
    regional,
    regional_cfn,
    rendered,
)

__all__ = ["regional_cfn", "regional"]  # fixtures of test_template


def backfill_statements(regional_cfn: Template) -> list[dict[str, Any]]:
    return [s for owner, s in policy_statements(regional_cfn) if owner == "BackfillWorkerRole"]


def test_max_object_bytes_is_refused_past_what_ten_thousand_parts_hold(regional: Template) -> None:
    # Given the MaxObjectBytes parameter's pattern
    pattern = re.compile(regional["Parameters"]["MaxObjectBytes"]["AllowedPattern"])
    # Then the worker's largest limit passes it, and a value of 15 digits does not (the
    # worker would refuse it at the first invocation: ConfigError, every record retried)
    assert pattern.fullmatch(str(MAX_OBJECT_BYTES))
    assert not pattern.fullmatch("1" + "0" * 14)


def test_the_backfill_role_keeps_pending_invalidations_in_the_bucket(
    regional_cfn: Template,
) -> None:
    # Given the statements that name the journal's prefix
    journal = [
        s
        for s in backfill_statements(regional_cfn)
        if any(text.endswith(f"/{JOURNAL_PREFIX}*") for text in rendered(s["Resource"]))
    ]
    # Then the worker may write, read and delete there, and nowhere else under _edgefill/
    assert journal and all(s["Effect"] == "Allow" for s in journal)
    actions = {str(a) for s in journal for a in as_list(s["Action"])}
    assert actions == {"s3:GetObject", "s3:PutObject", "s3:DeleteObject"}
    # And it may send reminders to its own queue (the statement continuations use)
    sends = [
        s for s in backfill_statements(regional_cfn) if "sqs:SendMessage" in as_list(s["Action"])
    ]
    assert any(refers_to(s["Resource"], "BackfillQueue") for s in sends)


def test_windows_their_reminder_did_not_close_expire(regional: Template) -> None:
    rules = props(regional, "OriginBucket")["LifecycleConfiguration"]["Rules"]
    windows = [r for r in rules if r.get("Prefix") == WINDOWS_PREFIX]
    assert [(r["Status"], r["ExpirationInDays"]) for r in windows] == [("Enabled", 1)]
    # Pending paths are not expired: they stay until CloudFront has them
    assert not [r for r in rules if str(r.get("Prefix", "")).startswith(JOURNAL_PREFIX + "p")]
