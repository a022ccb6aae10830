"""Header numbers the CLI reads (`estimate`'s Content-Length, `check`'s Content-Length and
Age) are ASCII digits or nothing: `'²'.isdigit()` is true and `int('²')` raises, `int()`
takes `'1_000'`, `'+5'` and `' 7'`. A hostile or broken server leaves the number unknown,
never a traceback (issue 19)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from edgefill.edge_check import head
from edgefill.object_sizes import origin_sizes
from shared.edge_http import EdgeClient

# Each value is sent as it is (http.server encodes header values as Latin-1, which holds
# the superscripts; the wire carries the one byte 0xB2 for '²').
HOSTILE_NUMBERS = ["²", "¹²³", "1_000", "+5", "-5", "0x10", "1e3", "5 5"]


class _Server(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_HEAD(self) -> None:  # noqa: N802
        value = HOSTILE_NUMBERS[int(self.path.strip("/").split(".")[0])]
        self.send_response(200)
        self.send_header("Content-Length", value)
        self.send_header("Age", value)
        self.send_header("ETag", '"v1"')
        self.end_headers()


@pytest.fixture
def server() -> Iterator[int]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Server)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield int(httpd.server_address[1])
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.mark.parametrize("index", range(len(HOSTILE_NUMBERS)))
def test_estimate_leaves_a_non_ascii_length_unknown(server: int, index: int) -> None:
    # Given an origin whose Content-Length is not ASCII digits
    # When estimate asks it for the size
    [lookup] = origin_sizes(f"http://127.0.0.1:{server}", [f"/{index}.jpg"])
    # Then the size is unknown, with a reason, and nothing raised
    assert lookup.size is None
    assert "Content-Length" in lookup.problem


@pytest.mark.parametrize("index", range(len(HOSTILE_NUMBERS)))
def test_check_leaves_a_non_ascii_length_and_age_unknown(server: int, index: int) -> None:
    # Given an edge answering a HEAD with a Content-Length and an Age that are not ASCII
    client = EdgeClient(protocol="http", port=server)
    try:
        # When check records its answer
        answer = head(client, "127.0.0.1", "cdn.example.com", f"/{index}.jpg", "us-east-1", "gzip")
    finally:
        client.close()
    # Then the answer stands, its numbers unknown
    assert answer.error is None and answer.status == 200 and answer.version == '"v1"'
    assert answer.length is None and answer.age is None
