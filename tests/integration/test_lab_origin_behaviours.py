"""The lab origin's behaviours for faithful-copy tests: conditional answers, custom
ETags, trickling bodies, a custom Server, raw header bytes and arbitrary headers."""

from __future__ import annotations

import http.client
import socket
import time
from email.utils import formatdate

import pytest
import requests

from edgefill.lab.origin import LabOrigin
from edgefill.lab.origin_behaviours import not_modified

MODIFIED = 1_700_000_000


def get(origin: LabOrigin, path: str, **headers: str) -> requests.Response:
    return requests.get(origin.url + path, headers=headers, timeout=10, allow_redirects=False)


# ---------------------------------------------------------------- conditional answers


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"If-None-Match": '"v1"'}, 304),
        ({"If-None-Match": '"v0", "v1"'}, 304),
        ({"If-None-Match": 'W/"v1"'}, 304),  # weak comparison, as RFC 9110 says for GET
        ({"If-None-Match": "*"}, 304),
        ({"If-None-Match": '"v2"'}, 200),
        ({"If-Modified-Since": formatdate(MODIFIED, usegmt=True)}, 304),
        ({"If-Modified-Since": formatdate(MODIFIED + 60, usegmt=True)}, 304),
        ({"If-Modified-Since": formatdate(MODIFIED - 1, usegmt=True)}, 200),
        ({"If-Modified-Since": "yesterday"}, 200),  # invalid: ignored
        # If-None-Match decides when both are present
        ({"If-None-Match": '"v2"', "If-Modified-Since": formatdate(MODIFIED, usegmt=True)}, 200),
        ({}, 200),
    ],
)
def test_conditional_gets_are_answered_304_when_they_match(
    origin: LabOrigin, headers: dict[str, str], status: int
) -> None:
    origin.put("/c.txt", b"current", etag='"v1"', last_modified=MODIFIED)
    response = get(origin, "/c.txt", **headers)
    assert response.status_code == status
    if status == 304:
        assert response.content == b"" and response.headers["ETag"] == '"v1"'
        assert origin.counts("/c.txt").other == 1
    else:
        assert response.content == b"current"


def test_a_304_needs_an_etag_to_match() -> None:
    assert not not_modified({"If-None-Match": "*"}, None, MODIFIED)


def test_custom_etags_are_served_verbatim(origin: LabOrigin) -> None:
    for etag in ('W/"weak-1"', '"abc-3"', "unquoted"):
        origin.put("/e.bin", b"e", etag=etag)
        assert get(origin, "/e.bin").headers["ETag"] == etag


# ---------------------------------------------------------------- trickling bodies


def test_a_trickling_body_sends_one_byte_per_interval(origin: LabOrigin) -> None:
    # Given a body sent 1000 bytes at once, then one byte every 0.2 s
    origin.put("/t.bin", b"x" * 1003)
    origin.fault("/t.bin", trickle=0.2, trickle_after=1000)
    started = time.monotonic()
    response = requests.get(origin.url + "/t.bin", stream=True, timeout=5)
    # When the client reads it all
    body = response.raw.read()
    # Then every byte came, the last three about 0.2 s apart, and none hit a read timeout
    assert body == b"x" * 1003
    assert 0.4 < time.monotonic() - started < 3
    assert origin.counts("/t.bin").bytes_sent == 1003


def test_a_trickle_ends_when_the_client_leaves(origin: LabOrigin) -> None:
    origin.put("/left.bin", b"y" * 100)
    origin.fault("/left.bin", trickle=0.05)
    with socket.create_connection(("127.0.0.1", origin.port), timeout=5) as sock:
        sock.sendall(b"GET /left.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.recv(4096)
    time.sleep(0.5)
    assert origin.counts("/left.bin").bytes_sent < 100


# ---------------------------------------------------------------- headers


def test_the_origin_can_pass_for_s3(origin: LabOrigin) -> None:
    origin.put("/s3.bin", b"s3")
    origin.fault(
        "/s3.bin",
        server="AmazonS3",
        headers={"x-amz-request-id": "4442587FB7D0A2F9", "Content-MD5": "abc"},
    )
    response = get(origin, "/s3.bin")
    assert response.headers["Server"] == "AmazonS3"  # one Server header, not the lab's too
    assert response.headers["x-amz-request-id"] == "4442587FB7D0A2F9"
    assert response.headers["Content-MD5"] == "abc"
    assert get(origin, "/other").headers["Server"].startswith("edgefill-lab-origin/")


@pytest.mark.parametrize(
    "headers",
    [
        {"Cache-Control": "no-cache"},
        {"Vary": "Cookie"},
        {"Content-Security-Policy": "default-src 'self'"},
        {"Set-Cookie2": "a=b"},
        {"Pragma": "no-cache"},
    ],
)
def test_arbitrary_headers_are_served(origin: LabOrigin, headers: dict[str, str]) -> None:
    origin.put("/h.html", b"<p>", content_type="text/html")
    origin.fault("/h.html", headers=headers)
    response = get(origin, "/h.html")
    for name, value in headers.items():
        assert response.headers[name] == value


def test_raw_header_bytes_reach_the_client_verbatim(origin: LabOrigin) -> None:
    # Given a Content-Length in a byte that latin-1 decodes to a superscript two
    origin.put("/raw.bin", b"0123456789")
    origin.fault("/raw.bin", raw_headers=((b"Content-Length", b"\xb2"), (b"X-Odd", b"a\xe9b")))
    connection = http.client.HTTPConnection("127.0.0.1", origin.port, timeout=5)
    connection.request("GET", "/raw.bin")
    response = connection.getresponse()
    # Then the client sees exactly those values, and the body ends with the connection
    assert response.getheader("Content-Length") == "²"
    assert response.getheader("X-Odd") == "aéb"
    assert response.read() == b"0123456789"
    connection.close()
