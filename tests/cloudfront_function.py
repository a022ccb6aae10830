"""The viewer-request CloudFront Function, run in Node.js as the distribution runs it.

The function's file is rendered by ``shared.edge_routing.render`` (its Fn::Sub), written
beside a stand-in for CloudFront's ``cloudfront`` module, and imported by a small runner
that calls ``handler`` once per event and prints, for each, what the function returned,
whether it threw, and every ``cloudfront`` method it called with its arguments. The
stand-in checks the arguments as CloudFront documents them (two origin IDs, failover
status codes) and throws otherwise, so a malformed call fails the test that makes it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from shared.edge_routing import function_code, render

NODE_MISSING = (
    "Node.js is missing: the CloudFront Function's tests run it in node (v18 or later). "
    "Install it (apt-get install nodejs, brew install node, or https://nodejs.org)."
)

# ES module stand-in for CloudFront Functions' `import cf from 'cloudfront'`.
_STAND_IN = """\
const calls = [];
globalThis.__cloudfrontCalls = calls;
function record(method, args) { calls.push({ method, args: JSON.parse(JSON.stringify(args)) }); }
function isOriginId(id) { return typeof id === 'string' && id.length > 0; }
export default {
  createRequestOriginGroup(params) {
    record('createRequestOriginGroup', [params]);
    const ids = params && params.originIds;
    const codes = params && params.failoverCriteria && params.failoverCriteria.statusCodes;
    if (!Array.isArray(ids) || ids.length !== 2 || !ids.every(isOriginId)) {
      throw new Error('createRequestOriginGroup: originIds must be two origin IDs');
    }
    if (!Array.isArray(codes) || codes.length === 0 || !codes.every(Number.isInteger)) {
      throw new Error('createRequestOriginGroup: failoverCriteria.statusCodes');
    }
  },
  selectRequestOriginById(id) { record('selectRequestOriginById', [id]); },
  updateRequestOrigin(params) { record('updateRequestOrigin', [params]); },
};
"""

_RUNNER = """\
import { readFileSync } from 'node:fs';
import { handler } from './select_origin.mjs';
const events = JSON.parse(readFileSync(0, 'utf8'));
const results = [];
for (const event of events) {
  globalThis.__cloudfrontCalls.length = 0;
  let returned = null, threw = null;
  try { returned = handler(event); } catch (e) { threw = String(e); }
  results.push({ returned, threw, calls: globalThis.__cloudfrontCalls.slice() });
}
process.stdout.write(JSON.stringify(results));
"""


def node_executable() -> str:
    """The path of ``node``; ``RuntimeError`` with how to install it when there is none."""
    node = shutil.which("node")
    if node is None:
        raise RuntimeError(NODE_MISSING)
    return node


def viewer_event(country: Any = None, uri: str = "/img/a.jpg") -> dict[str, Any]:
    """A viewer-request event; ``country`` is the header's value (``None``: no header,
    a dict: the header object as given)."""
    headers: dict[str, Any] = {"host": {"value": "d111111abcdef8.cloudfront.net"}}
    if isinstance(country, dict):
        headers["cloudfront-viewer-country"] = country
    elif country is not None:
        headers["cloudfront-viewer-country"] = {"value": country}
    return {
        "version": "1.0",
        "context": {"eventType": "viewer-request"},
        "viewer": {"ip": "192.0.2.10"},
        "request": {"method": "GET", "uri": uri, "querystring": {}, "headers": headers},
    }


def run_code(code: str, events: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Run already rendered function ``code`` once per event; one result per event."""
    node = node_executable()
    with tempfile.TemporaryDirectory(prefix="edgefill-cf-") as scratch:
        root = Path(scratch)
        package = root / "node_modules" / "cloudfront"
        package.mkdir(parents=True)
        (package / "package.json").write_text(
            json.dumps({"name": "cloudfront", "type": "module", "main": "index.js"}),
            encoding="utf-8",
        )
        (package / "index.js").write_text(_STAND_IN, encoding="utf-8")
        (root / "select_origin.mjs").write_text(code + "\nexport { handler };\n", "utf-8")
        (root / "run.mjs").write_text(_RUNNER, encoding="utf-8")
        done = subprocess.run(
            [node, "run.mjs"],
            cwd=root,
            input=json.dumps(list(events)),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    if done.returncode != 0:
        raise AssertionError(f"node exited {done.returncode}: {done.stderr.strip()}")
    results: list[dict[str, Any]] = json.loads(done.stdout)
    return results


def run_function(
    events: Iterable[Mapping[str, Any]],
    routes: str,
    default_region: str,
    failover_codes: str | Sequence[int] = "403,404,500,502,503,504",
    *,
    check: bool = True,
) -> list[dict[str, Any]]:
    """Render the function for this configuration (``check=False``: unchecked, as
    CloudFormation would substitute it) and run it once per event."""
    code = render(function_code(), routes, default_region, failover_codes, check=check)
    return run_code(code, events)
