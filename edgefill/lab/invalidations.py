"""CloudFront invalidations in the lab: the distribution lives in moto, the POPs obey.

The lab creates its distribution in moto (CreateDistribution), so the workers' and the
CLI's ``CreateInvalidation`` / ``GetInvalidation`` calls act on a real (emulated)
resource. moto marks an invalidation ``COMPLETED`` at once and knows nothing of the
lab's POPs, so the CloudFront endpoint the lab hands out (``AWS_ENDPOINT_URL_CLOUDFRONT``)
is this small proxy in front of moto:

- every request is forwarded to moto unchanged, and moto's answer is returned;
- a ``CreateInvalidation`` it forwards is remembered, and ``delay`` seconds later every
  POP drops the cached objects its paths name (``/*``-style wildcards included: a path
  ending in ``*`` is a prefix);
- until then, the invalidation's ``Status`` reads ``InProgress`` in every answer
  (create, get, list), and ``Completed`` afterwards, as CloudFront spells them.

So a prewarm that waits for its invalidation sees it in progress, then completed, and
warms edges that no longer hold the old copy.
"""

from __future__ import annotations

import contextlib
import heapq
import html
import re
import threading
import time
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final, Protocol
from urllib.parse import unquote

import requests

# How long the lab's POPs take to apply an invalidation (CloudFront: usually under a
# minute; the lab keeps the demo short).
DEFAULT_DELAY_SECONDS: Final = 1.0
_CREATED = re.compile(r"^/\d{4}-\d{2}-\d{2}/distribution/([A-Z0-9]+)/invalidation$")
_STATUS = re.compile(
    r"(<Id>(?P<id>[A-Z0-9]+)</Id>(?:<CreateTime>[^<]*</CreateTime>)?<Status>)[^<]*(</Status>)"
)
_PATH = re.compile(r"<Path>(.*?)</Path>", re.S)
_HOP_BY_HOP: Final = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-length",
    "content-encoding",
    "server",
    "date",
}


class InvalidatingPop(Protocol):
    """What the lab's POPs offer (``edgefill/lab/pop.py``)."""

    def invalidate(self, matches: Callable[[str], bool]) -> int: ...


def matcher(paths: Iterable[str]) -> Callable[[str], bool]:
    """Whether a cached path (as requested, query included) is named by ``paths``:
    exactly, or by prefix for a path ending in ``*``; compared percent-decoded."""
    exact: set[str] = set()
    prefixes: list[str] = []
    for path in paths:
        if path.endswith("*"):
            prefixes.append(unquote(path[:-1]))
        else:
            exact.add(unquote(path))

    def matches(cached: str) -> bool:
        plain = unquote(cached)
        return plain in exact or any(plain.startswith(prefix) for prefix in prefixes)

    return matches


class LabInvalidations:
    """The lab's CloudFront endpoint: a proxy to moto that applies invalidations."""

    def __init__(
        self,
        moto_url: str,
        pops: Callable[[], Iterable[InvalidatingPop]],
        delay: float = DEFAULT_DELAY_SECONDS,
        host: str = "127.0.0.1",
    ) -> None:
        self.moto_url = moto_url.rstrip("/")
        self.pops = pops
        self.delay = delay
        self._lock = threading.Condition()
        self._pending: dict[str, list[str]] = {}  # invalidation ID → paths, not yet applied
        self._due: list[tuple[float, str]] = []  # (when, invalidation ID), a heap
        self.applied: list[tuple[str, list[str], int]] = []  # (ID, paths, objects dropped)
        self._stopped = False
        self._session = requests.Session()
        self._session.trust_env = False
        self._server = ThreadingHTTPServer((host, 0), _ProxyHandler)
        self._server.daemon_threads = True
        self._server.invalidations = self  # type: ignore[attr-defined]
        self._threads: list[threading.Thread] = []

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://{host}:{port}"

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> LabInvalidations:
        for name, target in (
            ("lab-cloudfront", lambda: self._server.serve_forever(poll_interval=0.1)),
            ("lab-invalidations", self._apply_when_due),
        ):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            self._lock.notify_all()
        self._server.shutdown()
        self._server.server_close()
        for thread in self._threads:
            thread.join(5)
        self._threads = []
        self._session.close()

    def in_progress(self) -> list[str]:
        with self._lock:
            return list(self._pending)

    # ---- what the proxy calls ------------------------------------------------------
    def status_of(self, invalidation_id: str) -> str:
        with self._lock:
            return "InProgress" if invalidation_id in self._pending else "Completed"

    def created(self, invalidation_id: str, paths: list[str]) -> None:
        with self._lock:
            self._pending[invalidation_id] = paths
            heapq.heappush(self._due, (time.monotonic() + self.delay, invalidation_id))
            self._lock.notify_all()

    def forward(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        response = self._session.request(
            method, self.moto_url + path, headers=headers, data=body, timeout=30
        )
        content = response.content
        kept = {k: v for k, v in response.headers.items() if k.lower() not in _HOP_BY_HOP}
        if "/invalidation" in path and response.status_code < 300:
            text = content.decode("utf-8")
            route = _CREATED.match(path.partition("?")[0])
            if method == "POST" and route is not None:
                found = _STATUS.search(text)
                if found is not None:
                    paths = [html.unescape(p) for p in _PATH.findall(text)]
                    self.created(found.group("id"), paths)
            text = _STATUS.sub(
                lambda m: f"{m.group(1)}{self.status_of(m.group('id'))}{m.group(3)}", text
            )
            content = text.encode("utf-8")
        return response.status_code, kept, content

    # ---- applying ------------------------------------------------------------------
    def _apply_when_due(self) -> None:
        while True:
            with self._lock:
                while not self._stopped and (not self._due or self._due[0][0] > time.monotonic()):
                    wait = self._due[0][0] - time.monotonic() if self._due else None
                    self._lock.wait(wait)
                if self._stopped:
                    return
                _, invalidation_id = heapq.heappop(self._due)
                paths = self._pending.get(invalidation_id, [])
            matches = matcher(paths)
            dropped = 0
            for pop in self.pops():
                with contextlib.suppress(Exception):  # a stopping POP must not stop the lab
                    dropped += pop.invalidate(matches)
            with self._lock:
                self._pending.pop(invalidation_id, None)
                self.applied.append((invalidation_id, paths, dropped))


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Any

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        return

    def _relay(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
        try:
            status, kept, content = self.server.invalidations.forward(
                self.command, self.path, headers, body
            )
        except requests.RequestException as error:
            status, kept, content = 502, {}, str(error).encode()
        self.send_response(status)
        for name, value in kept.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)

    do_GET = do_POST = do_PUT = do_DELETE = _relay  # noqa: N815 - stdlib naming


def create_lab_distribution(cloudfront: Any, origin_domain: str, aliases: list[str]) -> str:
    """The lab's distribution in moto; returns its ID."""
    response = cloudfront.create_distribution(
        DistributionConfig={
            "CallerReference": f"edgefill-lab-{time.time_ns()}",
            "Comment": "edgefill lab",
            "Enabled": True,
            "Aliases": {"Quantity": len(aliases), "Items": aliases},
            "Origins": {
                "Quantity": 1,
                "Items": [
                    {
                        "Id": "full-origin",
                        "DomainName": origin_domain,
                        "CustomOriginConfig": {
                            "HTTPPort": 80,
                            "HTTPSPort": 443,
                            "OriginProtocolPolicy": "http-only",
                        },
                    }
                ],
            },
            "DefaultCacheBehavior": {
                "TargetOriginId": "full-origin",
                "ViewerProtocolPolicy": "redirect-to-https",
                "CachePolicyId": "658327ea-f89d-4fab-a63d-7e88639e58f6",
            },
        }
    )
    return str(response["Distribution"]["Id"])
