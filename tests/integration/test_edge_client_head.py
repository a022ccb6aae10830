"""``EdgeClient.head`` hands its keep-alive connection back ready for the next request,
even while the finished response object is still alive (another thread's check may take
the connection at once). A flaky CI run showed ``ResponseNotReady('Request-sent')``."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from urllib3.connectionpool import HTTPConnectionPool

from shared.edge_http import EdgeClient


class _Edge(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as CloudFront

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_HEAD(self) -> None:  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Length", "1234")
        self.send_header("ETag", '"v1"')
        self.end_headers()


@pytest.fixture
def edge() -> Iterator[int]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Edge)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield int(httpd.server_address[1])
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def test_given_a_live_head_response_when_its_connection_is_reused_then_the_next_head_works(
    edge: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given every response object kept alive (as a thread still holding it would)
    kept: list[Any] = []
    original = HTTPConnectionPool.urlopen

    def keeping(self: HTTPConnectionPool, *args: Any, **kwargs: Any) -> Any:
        response = original(self, *args, **kwargs)
        kept.append(response)
        return response

    monkeypatch.setattr(HTTPConnectionPool, "urlopen", keeping)
    client = EdgeClient(protocol="http", port=edge)
    # When three HEADs go to the same edge one after the other
    answers = [client.head("127.0.0.1", "cdn.example.com", "/a", None) for _ in range(3)]
    # Then each is answered, over one kept-alive connection
    assert [a.status for a in answers] == [200, 200, 200]
    assert answers[0].content_length == 1234
    assert client.connections == 1
    assert len(kept) == 3
    client.close()
