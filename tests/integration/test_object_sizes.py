"""Origin HEADs for sizes: hostile answers leave a size unknown, never followed elsewhere."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from edgefill.object_sizes import origin_sizes


class _Origin(BaseHTTPRequestHandler):
    seen: list[str] = []

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_HEAD(self) -> None:  # noqa: N802
        self.seen.append(self.path)
        if self.path == "/moved.jpg":
            self.send_response(301)
            self.send_header("Location", "http://127.0.0.2:9/elsewhere.jpg")
            self.send_header("Content-Length", "0")
        elif self.path == "/no-length.jpg":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
        elif self.path == "/bogus-length.jpg":
            self.send_response(200)
            self.send_header("Content-Length", "-5")
        else:
            self.send_response(200)
            self.send_header("Content-Length", "1234")
        self.end_headers()


@pytest.fixture
def origin() -> Iterator[str]:
    _Origin.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Origin)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def test_only_a_200_with_a_length_gives_a_size_and_redirects_are_not_followed(
    origin: str,
) -> None:
    uris = ["/ok.jpg", "/moved.jpg", "/no-length.jpg", "/bogus-length.jpg", "/ok.jpg"]
    found = origin_sizes(origin, uris)
    assert [lookup.size for lookup in found] == [1234, None, None, None, 1234]
    assert "301" in found[1].problem and "Content-Length" in found[2].problem
    # each distinct path asked once, and nothing else (the redirect's target never)
    assert sorted(_Origin.seen) == ["/bogus-length.jpg", "/moved.jpg", "/no-length.jpg", "/ok.jpg"]


def test_an_unreachable_origin_leaves_sizes_unknown() -> None:
    [lookup] = origin_sizes("http://127.0.0.1:9", ["/a.jpg"])
    assert lookup.size is None and "origin HEAD failed" in lookup.problem
