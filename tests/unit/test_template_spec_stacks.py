"""The lab's TemplateSpec across the two stacks (issue 20): the queues and event sources
from regional.yaml, the origin group's failover codes from template.yaml, whichever file
it is given."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from edgefill.lab.template_spec import TemplateError, TemplateSpec

ROOT = Path(__file__).resolve().parents[2]
EDGE = ROOT / "template.yaml"
REGIONAL = ROOT / "regional.yaml"


def test_either_stacks_file_gives_the_same_spec() -> None:
    from_edge = TemplateSpec.load(EDGE)
    from_regional = TemplateSpec.load(REGIONAL)
    texts = TemplateSpec.from_text(
        REGIONAL.read_text(encoding="utf-8"), edge_text=EDGE.read_text(encoding="utf-8")
    )
    assert from_edge == from_regional == texts
    assert from_edge.failover_statuses == {403, 404, 500, 502, 503, 504}
    assert from_edge.event_source_for("BackfillQueue").function_timeout == 900


def test_the_regional_stack_alone_has_no_distribution() -> None:
    with pytest.raises(TemplateError, match=r"no AWS::CloudFront::Distribution"):
        TemplateSpec.from_text(REGIONAL.read_text(encoding="utf-8"))


def test_the_edge_stack_alone_has_no_queue(tmp_path: Path) -> None:
    # Given template.yaml without its regional.yaml beside it
    shutil.copy(EDGE, tmp_path / "template.yaml")
    # Then the lab says which queue it cannot find
    with pytest.raises(TemplateError, match="BackfillQueue"):
        TemplateSpec.load(tmp_path / "template.yaml")


def test_a_missing_sibling_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="cannot read"):
        TemplateSpec.load(tmp_path / "regional.yaml")


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("Resources: [unclosed", "not valid YAML"),
        ("Resources:\n  Q: {Type: AWS::SQS::Queue}\n\tBad: tab", "not valid YAML"),  # a tab
        ("- a list\n- not a template", "no Resources section"),
        ("Resources: !Ref Nothing", "no AWS::SQS::Queue named BackfillQueue"),  # a tag instead
    ],
)
def test_a_template_that_is_not_a_cloudformation_document_is_a_named_error(
    text: str, named: str
) -> None:
    with pytest.raises(TemplateError, match=named):
        TemplateSpec.from_text(text)
