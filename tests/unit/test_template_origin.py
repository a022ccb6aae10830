"""template.yaml and the backfill's origin protection: missing-path markers live under
``_edgefill/missing/``, which viewers cannot read, the worker can, and a lifecycle rule
sweeps."""

from __future__ import annotations

from typing import Any

from backfill_worker.fill.missing import MISSING_PREFIX, marker_key
from tests.unit.test_template import (
    Template,
    as_list,
    policy_statements,
    props,
    regional,  # noqa: F401 - the module-scoped fixture
    rendered,
)


def lifecycle_rules(template: Template) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = props(template, "OriginBucket")["LifecycleConfiguration"]["Rules"]
    return rules


def test_missing_path_markers_expire_by_lifecycle(regional: Template) -> None:  # noqa: F811
    # Given the bucket's lifecycle rules
    rules = [r for r in lifecycle_rules(regional) if r.get("Prefix") == MISSING_PREFIX]
    # Then one enabled rule expires the markers' prefix, which is where markers are written
    assert len(rules) == 1
    assert rules[0]["Status"] == "Enabled" and rules[0]["ExpirationInDays"] == 1
    assert MISSING_PREFIX == "_edgefill/missing/"
    assert marker_key("img/a.jpg").startswith(MISSING_PREFIX)


def test_viewers_cannot_read_the_markers(regional: Template) -> None:  # noqa: F811
    denies = [
        s
        for owner, s in policy_statements(regional)
        if owner == "OriginBucketPolicy"
        and s["Effect"] == "Deny"
        and "s3:GetObject" in as_list(s["Action"])
    ]
    assert any(any(t.endswith("/_edgefill/*") for t in rendered(s["Resource"])) for s in denies), (
        "CloudFront (and so every viewer) must be denied _edgefill/*"
    )


def test_the_worker_may_read_and_write_markers(regional: Template) -> None:  # noqa: F811
    statements = [
        s
        for owner, s in policy_statements(regional)
        if owner == "BackfillWorkerRole" and s["Effect"] == "Allow"
    ]
    grants = [
        set(as_list(s["Action"]))
        for s in statements
        if any(t.endswith(f"/{MISSING_PREFIX}*") for t in rendered(s["Resource"]))
    ]
    assert grants and {"s3:GetObject", "s3:PutObject"} <= set().union(*grants)
    # And nothing broader than the prefix is granted for them
    assert all("s3:DeleteObject" not in actions for actions in grants)
