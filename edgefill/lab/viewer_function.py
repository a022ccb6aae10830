"""The distribution's CloudFront Function (viewer request), executed by Node.js for the lab.

The lab's POPs run the deployed file, ``edge_viewer_request/select_origin.js``, rendered
with ``shared.edge_routing.render`` exactly as ``Fn::Sub`` renders it in the template, so
the lab's routing is the deployed routing. One long-lived ``node`` process per lab runs it
(starting one per request would cost 40 ms each); it speaks one JSON line per request on
stdin and answers one on stdout, in order.

The runner gives the code what ``cloudfront-js-2.0`` gives it: a fresh global context with
no Node API (``vm.createContext``), its ``import cf from 'cloudfront';`` bound to a stand-in
module whose ``createRequestOriginGroup`` and ``selectRequestOriginById`` record the choice
for the request being handled, and a time limit per request. What CloudFront does when a
function fails, the lab does (chosen from AWS's "HTTP 503 status code" page):

- the function throws, returns no request, or calls a helper with bad arguments: the
  viewer gets 503 (``FunctionExecutionError``), nothing is fetched;
- it runs past ``timeout_ms`` (CloudFront's limit is on compute utilization; the lab's is
  wall time, generous for loopback): 503 (``FunctionThrottledError``);
- the node process dies: the request it was answering gets 503; the next request starts
  a new process.

Only the origin choice of the returned request is used; the lab's POPs do not apply other
changes a function makes to the request (edgefill's makes none).
"""

from __future__ import annotations

import json
import re
import secrets
import select
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qsl

from edgefill.lab.pop import ViewerRequestError

# The time one request may take inside the function before the lab answers 503.
DEFAULT_TIMEOUT_MS: Final = 200
# How long the Python side waits for node's answer line (node enforces timeout_ms itself;
# this only catches a process that stopped answering).
_ANSWER_SECONDS: Final = 5.0
# The one import a cloudfront-js-2.0 function may have that matters here.
_IMPORT: Final = re.compile(r"""^\s*import\s+(\w+)\s+from\s+['"]cloudfront['"]\s*;?\s*$""", re.M)

_RUNNER: Final = r"""
'use strict';
const vm = require('node:vm');
const fs = require('node:fs');
const readline = require('node:readline');
const [codePath, importName, timeoutText] = process.argv.slice(2);
const timeout = Number(timeoutText);
let chosen = null;
function fail(message) { throw new TypeError(message); }
function codes(criteria) {
  const list = criteria && criteria.statusCodes;
  if (!Array.isArray(list) || list.length === 0 ||
      !list.every((c) => Number.isInteger(c) && c >= 400 && c <= 599)) {
    fail('failoverCriteria.statusCodes must be a non-empty array of 4xx/5xx codes');
  }
  return list.slice();
}
const standin = Object.freeze({
  createRequestOriginGroup(params) {
    if (!params || !Array.isArray(params.originIds) || params.originIds.length !== 2 ||
        !params.originIds.every((id) => typeof id === 'string' && id.length > 0)) {
      fail('createRequestOriginGroup: originIds must be two origin IDs');
    }
    chosen = {originIds: params.originIds.slice(), statusCodes: codes(params.failoverCriteria)};
  },
  selectRequestOriginById(id) {
    if (typeof id !== 'string' || id.length === 0) fail('selectRequestOriginById: an origin ID');
    chosen = {originIds: [id], statusCodes: []};
  },
});
const context = vm.createContext({[importName]: standin, console: {log() {}}});
const code = fs.readFileSync(codePath, 'utf8');
vm.runInContext(code + '\n;globalThis.__handler = handler;', context, {filename: 'function.js'});
const invoke = new vm.Script('__answer = JSON.stringify(__handler(JSON.parse(__event)));');
const lines = readline.createInterface({input: process.stdin});
lines.on('line', (line) => {
  chosen = null;
  let answer;
  try {
    context.__event = line;
    invoke.runInContext(context, {timeout});
    const request = JSON.parse(context.__answer === undefined ? 'null' : context.__answer);
    if (request === null || typeof request !== 'object') {
      answer = {error: 'FunctionExecutionError', detail: 'the handler returned no request'};
    } else {
      answer = {request, origin: chosen};
    }
  } catch (error) {
    const timedOut = error && error.code === 'ERR_SCRIPT_EXECUTION_TIMEOUT';
    answer = {
      error: timedOut ? 'FunctionThrottledError' : 'FunctionExecutionError',
      detail: String(error && error.message || error).slice(0, 300),
    };
  }
  process.stdout.write(JSON.stringify(answer) + '\n');
});
"""


class ViewerFunctionError(RuntimeError):
    """The function failed for one request; ``kind`` is CloudFront's error name."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


@dataclass(frozen=True, slots=True)
class OriginChoice:
    """What the function chose: one origin ID, or an origin group's two with its failover
    status codes."""

    origin_ids: tuple[str, ...]
    failover_statuses: frozenset[int]


def node_path() -> str:
    """The ``node`` executable, or a ``RuntimeError`` saying how to get one."""
    found = shutil.which("node")
    if found is None:
        raise RuntimeError(
            "node (Node.js 18 or later) is not on PATH: the lab runs the CloudFront Function "
            "with it; install it (apt-get install nodejs, or https://nodejs.org)"
        )
    return found


class ViewerFunction:
    """One node process running ``code`` (a rendered function); ``run(event)`` per request.
    Thread-safe: requests are answered one at a time, as node is single-threaded anyway."""

    def __init__(self, code: str, timeout_ms: int = DEFAULT_TIMEOUT_MS) -> None:
        match = _IMPORT.search(code)
        if match is None:
            raise ValueError("the function does not import the cloudfront module")
        self.import_name = match.group(1)
        self.code = _IMPORT.sub("", code, count=1)
        self.timeout_ms = timeout_ms
        self._directory = Path(tempfile.mkdtemp(prefix="edgefill-function-"))
        (self._directory / "function.js").write_text(self.code, encoding="utf-8")
        (self._directory / "runner.cjs").write_text(_RUNNER, encoding="utf-8")
        self._lock = threading.Lock()
        self._process: subprocess.Popen[str] | None = None
        self.invocations = 0
        self.errors: dict[str, int] = {}

    def start(self) -> ViewerFunction:
        with self._lock:
            self._spawn()
        return self

    def stop(self) -> None:
        with self._lock:
            self._kill()
        shutil.rmtree(self._directory, ignore_errors=True)

    def __enter__(self) -> ViewerFunction:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def run(self, event: dict[str, Any]) -> tuple[dict[str, Any], OriginChoice | None]:
        """The request the function returned and its origin choice (None: the cache
        behaviour's own target stays). Raises ``ViewerFunctionError``."""
        line = json.dumps(event, separators=(",", ":"))
        with self._lock:
            self.invocations += 1
            try:
                answer = self._exchange(line)
            except ViewerFunctionError as error:
                self.errors[error.kind] = self.errors.get(error.kind, 0) + 1
                raise
        return answer

    # ---- inside the lock ---------------------------------------------------------
    def _spawn(self) -> None:
        if self._process is not None and self._process.poll() is None:
            return
        self._process = subprocess.Popen(
            [
                node_path(),
                str(self._directory / "runner.cjs"),
                str(self._directory / "function.js"),
                self.import_name,
                str(self.timeout_ms),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )

    def _kill(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        for stream in (process.stdin, process.stdout, process.stderr):
            if stream is not None:
                stream.close()
        process.kill()
        process.wait(5)

    def _exchange(self, line: str) -> tuple[dict[str, Any], OriginChoice | None]:
        self._spawn()
        process = self._process
        assert process is not None and process.stdin is not None and process.stdout is not None
        try:
            process.stdin.write(line + "\n")
            process.stdin.flush()
        except OSError as error:
            self._died(f"cannot write to node: {error}")
        # One request, one answer line, written whole: once the pipe is readable, the line
        # is there (nothing else is ever buffered ahead of it).
        readable, _, _ = select.select([process.stdout], [], [], _ANSWER_SECONDS)
        line = process.stdout.readline() if readable else ""
        if not line:
            self._died("node stopped answering")
        answer = json.loads(line)
        if "error" in answer:
            raise ViewerFunctionError(str(answer["error"]), str(answer.get("detail", "")))
        request = answer.get("request")
        if not isinstance(request, dict):
            raise ViewerFunctionError("FunctionExecutionError", "the handler returned no request")
        origin = answer.get("origin")
        if origin is None:
            return request, None
        return request, OriginChoice(
            tuple(origin["originIds"]), frozenset(int(c) for c in origin["statusCodes"])
        )

    def _died(self, why: str) -> None:
        detail = why
        process = self._process
        if process is not None and process.poll() is not None and process.stderr is not None:
            detail += f" (exit {process.returncode}: {process.stderr.read()[-300:].strip()})"
        self._kill()
        raise ViewerFunctionError("FunctionExecutionError", detail)


def viewer_request_event(
    viewer: dict[str, Any], country: str, domain: str, distribution_id: str
) -> dict[str, Any]:
    """The viewer-request event CloudFront gives a function, for a lab POP's ``viewer``
    (its client_ip, method, uri, query, headers); ``country`` "" adds no country header."""
    headers = {name: {"value": value} for name, value in viewer["headers"].items()}
    if country:
        headers["cloudfront-viewer-country"] = {"value": country}
    return {
        "version": "1.0",
        "context": {
            "distributionDomainName": domain,
            "distributionId": distribution_id,
            "eventType": "viewer-request",
            "requestId": secrets.token_urlsafe(30),
        },
        "viewer": {"ip": viewer["client_ip"]},
        "request": {
            "method": viewer["method"],
            "uri": viewer["uri"],
            "querystring": {
                name: {"value": value}
                for name, value in parse_qsl(viewer["query"], keep_blank_values=True)
            },
            "headers": headers,
            "cookies": {},
        },
    }


def choose_group(
    function: ViewerFunction,
    viewer: dict[str, Any],
    country: str,
    domain: str,
    distribution_id: str,
    regions: Collection[str],
) -> tuple[str, str, frozenset[int]] | None:
    """Run the function for ``viewer``: (bucket region, full-origin region, failover codes)
    of the origin group it built, None when it left the static group in place. A failure,
    or an origin the distribution (``bucket-R``/``full-R`` for each of ``regions``) lacks,
    raises ``ViewerRequestError`` (503), as CloudFront answers."""
    try:
        _, choice = function.run(viewer_request_event(viewer, country, domain, distribution_id))
    except ViewerFunctionError as error:
        raise ViewerRequestError(503, f"{error.kind}: {error.detail}") from None
    if choice is None:
        return None
    ids = choice.origin_ids
    known = {f"{kind}-{region}" for region in regions for kind in ("bucket", "full")}
    unknown = [origin_id for origin_id in ids if origin_id not in known]
    if unknown:
        raise ViewerRequestError(
            503, f"FunctionExecutionError: origin {unknown[0]!r} is not in the distribution"
        )
    if len(ids) != 2 or not ids[0].startswith("bucket-") or not ids[1].startswith("full-"):
        raise ViewerRequestError(
            503, f"the lab's POPs serve an origin group [bucket-R, full-R], not {list(ids)}"
        )
    return ids[0].removeprefix("bucket-"), ids[1].removeprefix("full-"), choice.failover_statuses
