"""The lab's runner of the CloudFront Function: one node process, a line per request,
CloudFront's failures as ``ViewerFunctionError``s, a dead process replaced."""

from __future__ import annotations

import pytest

from edgefill.lab.viewer_function import OriginChoice, ViewerFunction

CODE = """import cf from 'cloudfront';
function handler(event) {
  var c = event.request.headers['cloudfront-viewer-country'];
  if (c && c.value === 'DE') {
    cf.createRequestOriginGroup({originIds: ['bucket-eu-central-1', 'full-eu-central-1'],
                                 failoverCriteria: {statusCodes: [403, 404]}});
  }
  if (typeof require !== 'undefined' || typeof process !== 'undefined') throw new Error('node');
  return event.request;
}
"""


def _event(country: str | None) -> dict[str, object]:
    headers = {} if country is None else {"cloudfront-viewer-country": {"value": country}}
    return {"version": "1.0", "request": {"method": "GET", "uri": "/a", "headers": headers}}


def test_the_function_runs_without_node_apis_and_reports_its_origin_choice() -> None:
    with ViewerFunction(CODE) as function:
        request, choice = function.run(_event("DE"))
        assert request["uri"] == "/a"
        assert choice == OriginChoice(
            ("bucket-eu-central-1", "full-eu-central-1"), frozenset({403, 404})
        )
        # the choice is per request: the next one without a country chooses nothing
        assert function.run(_event(None))[1] is None
        assert function.invocations == 2


def test_a_dead_node_process_is_replaced_for_the_next_request() -> None:
    with ViewerFunction(CODE) as function:
        function.run(_event(None))
        assert function._process is not None
        first = function._process.pid
        function._process.kill()
        function._process.wait()
        assert function.run(_event("DE"))[1] is not None
        assert function._process.pid != first
        assert function.errors == {}


def test_code_without_the_cloudfront_import_is_refused() -> None:
    with pytest.raises(ValueError, match="cloudfront module"):
        ViewerFunction("function handler(event) { return event.request; }")
