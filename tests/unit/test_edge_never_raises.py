"""Property: whatever shape CloudFront's event takes, the edge logic never raises, returns
the very request object it was given, and strips the marker from a marked origin."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_origin_request.failover import FailoverReporter, cloudfront_request, handle_origin_request
from edge_origin_request.recently_queued import RecentlyQueued
from tests.budget import examples
from tests.sample_events import load_event

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3)
    ),
    max_leaves=8,
)
# Paths into the request where a real event has structure worth breaking.
PATHS = [
    ("origin",),
    ("origin", "custom"),
    ("origin", "custom", "customHeaders"),
    ("origin", "custom", "customHeaders", "x-edgefill-queue"),
    ("origin", "custom", "customHeaders", "x-edgefill-queue", 0),
    ("origin", "custom", "customHeaders", "x-edgefill-queue", 0, "value"),
    ("headers",),
    ("headers", "host"),
    ("headers", "host", 0, "value"),
    ("method",),
    ("uri",),
    ("querystring",),
]


class CountingSender:
    def __init__(self) -> None:
        self.sent = 0

    def send(self, queue_url: str, body: str) -> str:
        json.loads(body)  # whatever went out is valid JSON
        self.sent += 1
        return "id"


def replace(request: Any, path: tuple[Any, ...], value: Any) -> None:
    node = request
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value


@settings(max_examples=examples(400), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(["edge_failover_get", "edge_s3_origin", "edge_failover_post"]),
    path=st.sampled_from(PATHS),
    value=json_values,
)
def test_no_event_shape_makes_the_logic_raise(name: str, path: tuple[Any, ...], value: Any) -> None:
    event = load_event(name)
    request = cloudfront_request(event)
    assert request is not None
    try:
        replace(request, path, value)
    except (KeyError, IndexError, TypeError):
        return  # the path does not exist in this sample (e.g. no custom origin on S3)
    reporter = FailoverReporter(sender=CountingSender(), recently_queued=RecentlyQueued())
    handle_origin_request(event, request, reporter)
    assert cloudfront_request(event) is request
    custom = request.get("origin", {}) if isinstance(request.get("origin"), dict) else {}
    headers = custom.get("custom", {}) if isinstance(custom.get("custom"), dict) else {}
    own = headers.get("customHeaders", {}) if isinstance(headers.get("customHeaders"), dict) else {}
    assert "x-edgefill-queue" not in own


@given(event=json_values)
def test_any_json_event_yields_a_request_or_none(event: Any) -> None:
    request = cloudfront_request(event)
    assert request is None or isinstance(request, dict)
