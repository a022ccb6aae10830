"""The stacks' CloudWatch dashboards: each body is valid JSON once CloudFormation has
filled it in, together they show what an operator watches (the edge stack the edge's
metrics, each regional stack its queues and workers), and every metric they name is
really emitted, by AWS (documented SQS/Lambda metrics) or by an emitter in this
repository's code."""

from __future__ import annotations

import ast
import copy
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edge_origin_request import log_lines
from tests.unit.test_template import ROOT, Template, regional, sam

__all__ = ["regional", "sam"]  # fixtures of test_template

SOURCES = ("shared", "edge_origin_request", "backfill_worker", "prewarm_worker")
# The metrics AWS publishes that the dashboard may name (SQS and Lambda documentation).
AWS_METRICS = {
    "AWS/SQS": {"ApproximateNumberOfMessagesVisible", "ApproximateAgeOfOldestMessage"},
    "AWS/Lambda": {"Invocations", "Errors", "Throttles", "Duration"},
}
QUEUES = ("BackfillQueue", "BackfillDLQ", "PrewarmQueue", "PrewarmDLQ")
WORKERS = ("BackfillWorkerFunction", "PrewarmWorkerFunction")
# Calls that emit a metric, and where the metric's name sits in them.
EMITTERS = {"add_metric", "single_metric", "count_by_reason", "_write"}
_SEARCH = re.compile(r"SEARCH\('\{(?P<schema>[^}]*)\}(?P<terms>[^']*)'")


# ---------------------------------------------------------------- rendering the body
def _evaluate(value: Any, parameters: dict[str, Any]) -> Any:
    """Ref of a parameter (its default) and Fn::Join, as CloudFormation evaluates them."""
    if isinstance(value, dict) and "Ref" in value:
        parameter = parameters[value["Ref"]]
        default = parameter["Default"]
        return default.split(",") if parameter["Type"] == "CommaDelimitedList" else default
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        items = _evaluate(parts, parameters)
        return separator.join(str(_evaluate(item, parameters)) for item in items)
    return value


def dashboard_body(sam: Template) -> dict[str, Any]:
    """The dashboard's JSON with the parameter defaults and placeholder resource names."""
    sub = sam["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    text, variables = (sub, {}) if isinstance(sub, str) else sub
    for name, value in variables.items():
        text = text.replace("${" + name + "}", _evaluate(value, sam["Parameters"]))
    text = text.replace("${AWS::Region}", "us-east-1")
    text = re.sub(r"\$\{(\w+)\.QueueName\}", r"queue-\1", text)
    text = re.sub(r"\$\{(\w+)\}", r"name-\1", text)
    assert "${" not in text, "an unfilled ${...} is left in the dashboard body"
    body: dict[str, Any] = json.loads(text)
    return body


def metric_lines(body: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """(widget title, metric line) for every line of every metric widget."""
    for widget in body["widgets"]:
        if widget["type"] == "metric":
            for line in widget["properties"]["metrics"]:
                yield widget["properties"]["title"], line


def named_metrics(body: dict[str, Any]) -> set[tuple[str, str]]:
    """(namespace, metric name) for every metric the dashboard names, in a metric line or
    in a SEARCH expression (which must name both)."""
    names: set[tuple[str, str]] = set()
    for title, line in metric_lines(body):
        if isinstance(line[0], dict):
            match = _SEARCH.search(line[0]["expression"])
            assert match, f"{title}: an expression that is not a SEARCH"
            metric = re.search(r'MetricName="(\w+)"', match["terms"])
            assert metric, f"{title}: a SEARCH that names no MetricName"
            names.add((match["schema"].split(",")[0], metric[1]))
        else:
            names.add((line[0], line[1]))
    return names


# ---------------------------------------------------------------- finding the emitters
def emitted_metrics(sources: list[Path]) -> set[str]:
    """Metric names that appear as literals in emitting calls: ``add_metric("X", …)``,
    ``add_metric(name="X")``, ``single_metric(name="X")``, ``count_by_reason("X", …)``
    (the backfill worker's counter) and ``_write(…, metric="X")`` (the edge's EMF line)."""
    found: set[str] = set()
    for path in sources:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if called not in EMITTERS:
                continue
            candidates = [k.value for k in node.keywords if k.arg in ("name", "metric")]
            if called != "_write" and node.args:
                candidates.append(node.args[0])
            found |= {
                c.value
                for c in candidates
                if isinstance(c, ast.Constant) and isinstance(c.value, str)
            }
    return found


def source_files() -> list[Path]:
    return [path for package in SOURCES for path in sorted((ROOT / package).rglob("*.py"))]


def unemitted(body: dict[str, Any], emitted: set[str]) -> list[str]:
    problems = []
    for namespace, name in sorted(named_metrics(body)):
        if namespace in AWS_METRICS:
            if name not in AWS_METRICS[namespace]:
                problems.append(f"{namespace} {name} is not a metric AWS publishes")
        elif namespace != log_lines.METRICS_NAMESPACE:
            problems.append(f"{namespace} {name}: unknown namespace")
        elif name not in emitted:
            problems.append(f"{namespace} {name} is emitted nowhere in {', '.join(SOURCES)}")
    return problems


# ---------------------------------------------------------------- tests
@pytest.fixture(scope="module")
def body(sam: Template, regional: Template) -> dict[str, Any]:
    """The widgets an operator sees across one edge stack and one regional stack."""
    return {"widgets": dashboard_body(sam)["widgets"] + dashboard_body(regional)["widgets"]}


def test_each_dashboard_is_named_after_its_stack(sam: Template, regional: Template) -> None:
    for template in (sam, regional):
        dashboard = template["Resources"]["Dashboard"]
        assert dashboard["Type"] == "AWS::CloudWatch::Dashboard"
        assert dashboard["Properties"]["DashboardName"] == {"Ref": "AWS::StackName"}
        url = template["Outputs"]["DashboardUrl"]["Value"]["Fn::Sub"]
        assert url.endswith("#dashboards/dashboard/${Dashboard}")


def test_each_stack_shows_what_it_runs(sam: Template, regional: Template) -> None:
    # The edge stack shows the edge function's metrics; a regional stack its queues and
    # workers, in its own region, and nothing of the edge (which every region would repeat)
    edge = named_metrics(dashboard_body(sam))
    local = named_metrics(dashboard_body(regional))
    assert edge == {("edgefill", "FailoversQueued"), ("edgefill", "SendFailures")}
    assert not edge & local
    assert ("AWS/SQS", "ApproximateNumberOfMessagesVisible") in local


def test_every_metric_the_dashboard_names_is_emitted(body: dict[str, Any]) -> None:
    emitted = emitted_metrics(source_files())
    # The finder does find the emitters (a finder that finds nothing would pass vacuously)
    assert {"ObjectsCopied", "WarmOk", "FailoversQueued", "SendFailures", "Skipped"} <= emitted
    assert unemitted(body, emitted) == []


def test_a_metric_nobody_emits_is_caught(body: dict[str, Any]) -> None:
    # Given the dashboard with a metric and a SEARCH that no code emits
    broken = copy.deepcopy(body)
    metrics = broken["widgets"][0]["properties"]["metrics"]
    metrics.append(["edgefill", "ObjectsTeleported", "service", "backfill"])
    metrics.append(
        [{"id": "x", "expression": "SEARCH('{edgefill,service} MetricName=\"Nope\"', 'Sum', 300)"}]
    )
    metrics.append(["AWS/SQS", "NumberOfMessagesTeleported", "QueueName", "q"])
    # Then each one is named
    problems = unemitted(broken, emitted_metrics(source_files()))
    assert len(problems) == 3
    assert any("ObjectsTeleported" in p for p in problems)
    assert any("Nope" in p for p in problems)
    assert any("NumberOfMessagesTeleported" in p for p in problems)


def test_the_emitter_finder_reads_each_kind_of_emission(tmp_path: Path) -> None:
    source = tmp_path / "emitters.py"
    source.write_text(
        "m.add_metric('A', 'Count', 1)\nm.add_metric(name='B', unit='Count', value=1)\n"
        "self.count_by_reason('C', reason)\n_write('INFO', 'event', {}, metric='D')\n"
        "print('E')\nlog('F')\n",
        encoding="utf-8",
    )
    assert emitted_metrics([source]) == {"A", "B", "C", "D"}


def test_queue_widgets_show_depth_and_age_of_all_four_queues(body: dict[str, Any]) -> None:
    for metric in ("ApproximateNumberOfMessagesVisible", "ApproximateAgeOfOldestMessage"):
        shown = {line[3] for _, line in metric_lines(body) if line[:2] == ["AWS/SQS", metric]}
        assert shown == {f"queue-{queue}" for queue in QUEUES}, metric


def test_worker_widgets_show_invocations_errors_throttles_and_duration(
    body: dict[str, Any],
) -> None:
    for metric in AWS_METRICS["AWS/Lambda"]:
        shown = {line[3] for _, line in metric_lines(body) if line[:2] == ["AWS/Lambda", metric]}
        assert shown == {f"name-{worker}" for worker in WORKERS}, metric


def test_worker_metrics_carry_the_service_the_workers_emit(
    regional: Template, body: dict[str, Any]
) -> None:
    # Given the service each worker's Powertools Metrics stamps (its environment)
    services = {
        regional["Resources"][name]["Properties"]["Environment"]["Variables"][
            "POWERTOOLS_SERVICE_NAME"
        ]
        for name in WORKERS
    } | {log_lines.SERVICE}
    # Then every edgefill metric line and SEARCH selects one of them
    for title, line in metric_lines(body):
        if isinstance(line[0], dict):
            service = re.search(r'service="(\w+)"', line[0]["expression"])
            assert service and service[1] in services, title
        elif line[0] == "edgefill":
            assert line[2:4] in (["service", s] for s in services), title


def test_backfill_and_prewarm_widgets_show_their_outcomes(body: dict[str, Any]) -> None:
    names = {name for namespace, name in named_metrics(body) if namespace == "edgefill"}
    assert {"ObjectsCopied", "Skipped", "Failed", "BytesCopied", "CopySeconds"} <= names
    assert {"WarmOk", "WarmFailed", "EdgeHits", "EdgeMisses"} <= names
    # By reason and by target: the SEARCH schemas are the dimensions the workers emit
    schemas = {
        _SEARCH.search(line[0]["expression"])["schema"]  # type: ignore[index]
        for _, line in metric_lines(body)
        if isinstance(line[0], dict)
    }
    assert schemas == {"edgefill,reason,service", "edgefill,service,target"}


def test_edge_widgets_show_each_parameter_region(sam: Template, body: dict[str, Any]) -> None:
    regions = sam["Parameters"]["DashboardEdgeRegions"]["Default"].split(",")
    assert {"us-east-1", "eu-west-1", "ap-northeast-1", "sa-east-1"} <= set(regions)
    assert all(re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d", region) for region in regions)
    for metric in ("FailoversQueued", "SendFailures"):
        shown = [
            line[-1]["region"]
            for _, line in metric_lines(body)
            if isinstance(line[0], str) and line[:2] == ["edgefill", metric]
        ]
        assert shown == regions, metric
        assert all(
            line[2:4] == ["service", log_lines.SERVICE]
            for _, line in metric_lines(body)
            if isinstance(line[0], str) and line[1] == metric
        )


def test_a_one_region_list_still_renders(sam: Template) -> None:
    one = copy.deepcopy(sam)
    one["Parameters"]["DashboardEdgeRegions"]["Default"] = "eu-west-1"
    queued = [
        line
        for _, line in metric_lines(dashboard_body(one))
        if isinstance(line[0], str) and line[1] == "FailoversQueued"
    ]
    assert queued == [["edgefill", "FailoversQueued", "service", "edge", {"region": "eu-west-1"}]]
