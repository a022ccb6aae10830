"""The lab's full origin: content, validators, ranges, counters and every fault mode."""

from __future__ import annotations

import gzip
import hashlib
import socket
import time
from pathlib import Path

import pytest
import requests
from urllib3.exceptions import ProtocolError

from edgefill.lab.origin import LabOrigin, generated_bytes


def raw_get(url: str, **headers: str) -> requests.Response:
    return requests.get(url, headers=headers, stream=True, timeout=10)


def test_serves_bytes_with_validators_and_fidelity_headers(origin: LabOrigin) -> None:
    # Given an object with its own headers under a non-ASCII name
    origin.put(
        "/img/ä b.jpg",
        b"jpeg bytes",
        content_type="image/jpeg",
        headers={"Cache-Control": "max-age=60", "Content-Disposition": "inline"},
        last_modified=1_700_000_000,
    )
    # When a client GETs its percent-encoded URI
    response = requests.get(origin.url + origin.uri("/img/ä b.jpg"), timeout=5)
    # Then the body, the quoted MD5 ETag and every header come back
    assert origin.uri("/img/ä b.jpg") == "/img/%C3%A4%20b.jpg"
    assert response.status_code == 200
    assert response.content == b"jpeg bytes"
    assert response.headers["ETag"] == f'"{hashlib.md5(b"jpeg bytes").hexdigest()}"'
    assert response.headers["Content-Type"] == "image/jpeg"
    assert response.headers["Cache-Control"] == "max-age=60"
    assert response.headers["Content-Disposition"] == "inline"
    assert response.headers["Accept-Ranges"] == "bytes"
    assert response.headers["Last-Modified"] == "Tue, 14 Nov 2023 22:13:20 GMT"
    assert origin.counts("/img/ä b.jpg").full_gets == 1


def test_head_ranges_and_416(origin: LabOrigin) -> None:
    origin.put("/r.txt", b"0123456789")
    url = origin.url + "/r.txt"
    head = requests.head(url, timeout=5)
    assert head.headers["Content-Length"] == "10" and head.content == b""
    middle = requests.get(url, headers={"Range": "bytes=2-4"}, timeout=5)
    assert middle.status_code == 206 and middle.content == b"234"
    assert middle.headers["Content-Range"] == "bytes 2-4/10"
    assert requests.get(url, headers={"Range": "bytes=-3"}, timeout=5).content == b"789"
    assert requests.get(url, headers={"Range": "bytes=7-"}, timeout=5).content == b"789"
    too_far = requests.get(url, headers={"Range": "bytes=10-"}, timeout=5)
    assert too_far.status_code == 416 and too_far.headers["Content-Range"] == "bytes */10"
    counts = origin.counts("/r.txt")
    assert (counts.heads, counts.ranged_gets, counts.full_gets, counts.other) == (1, 3, 0, 1)
    assert counts.bytes_sent == 9 + len("range not satisfiable\n")


def test_generated_and_file_objects_stream_identical_bytes(
    origin: LabOrigin, tmp_path: Path
) -> None:
    # Given a 3 MiB generated object and a file on disk
    size = 3 * 1024 * 1024 + 17
    origin.put_generated("/gen.bin", size, seed=7)
    file = tmp_path / "f.bin"
    file.write_bytes(b"".join(generated_bytes(size, seed=7)))
    origin.put("/file.bin", file)
    # Then both serve the same bytes, ranges included, and the digests agree
    full = requests.get(origin.url + "/gen.bin", timeout=10).content
    assert len(full) == size
    assert (
        hashlib.sha256(full).hexdigest() == origin.sha256("/gen.bin") == origin.sha256("/file.bin")
    )
    assert requests.get(origin.url + "/file.bin", timeout=10).content == full
    ranged = requests.get(
        origin.url + "/gen.bin", headers={"Range": "bytes=65530-1048600"}, timeout=10
    )
    assert ranged.content == full[65530:1048601]
    # And chunks are stamped, so no two 64 KiB pieces repeat
    assert full[:65536] != full[1048576 : 1048576 + 65536]


def test_multipart_style_and_absent_etags(origin: LabOrigin) -> None:
    origin.put_generated("/mp.bin", 9 * 1024 * 1024, etag="multipart")
    origin.put("/none.bin", b"x", etag=None)
    assert requests.head(origin.url + "/mp.bin", timeout=5).headers["ETag"].endswith('-2"')
    assert "ETag" not in requests.head(origin.url + "/none.bin", timeout=5).headers


def test_status_fault_fails_first_n_requests_then_serves(origin: LabOrigin) -> None:
    origin.put("/flaky", b"ok")
    origin.fault("/flaky", status=503, times=2)
    codes = [requests.get(origin.url + "/flaky", timeout=5).status_code for _ in range(3)]
    assert codes == [503, 503, 200]
    origin.fault("/flaky", status=410)
    assert requests.get(origin.url + "/flaky", timeout=5).status_code == 410
    origin.clear_fault("/flaky")
    assert requests.get(origin.url + "/flaky", timeout=5).status_code == 200
    assert requests.get(origin.url + "/missing", timeout=5).status_code == 404


def test_reset_mid_body_raises_connection_error(origin: LabOrigin) -> None:
    origin.put_generated("/reset.bin", 4 * 1024 * 1024)
    origin.fault("/reset.bin", reset_after=100_000)
    response = raw_get(origin.url + "/reset.bin")
    with pytest.raises(ProtocolError, match="reset"):
        for _ in response.raw.stream(65536, decode_content=False):
            pass
    assert origin.counts("/reset.bin").bytes_sent <= 100_000


def test_short_body_and_wrong_length(origin: LabOrigin) -> None:
    origin.put("/short", b"a" * 1000)
    origin.fault("/short", short_by=10)
    response = raw_get(origin.url + "/short")
    assert response.headers["Content-Length"] == "1000"
    received = b""
    with pytest.raises(Exception):  # noqa: B017,PT011 - urllib3 raises ProtocolError/IncompleteRead
        received = response.raw.read(decode_content=False, enforce_content_length=True)
    assert len(received) < 1000
    origin.fault("/short", length_delta=-100)
    response = raw_get(origin.url + "/short")
    assert response.headers["Content-Length"] == "900"
    assert len(response.raw.read(decode_content=False)) == 900


def test_no_ranges_ignores_range(origin: LabOrigin) -> None:
    origin.put("/nr", b"0123456789")
    origin.fault("/nr", no_ranges=True)
    response = requests.get(origin.url + "/nr", headers={"Range": "bytes=0-1"}, timeout=5)
    assert response.status_code == 200 and response.content == b"0123456789"
    assert "Accept-Ranges" not in response.headers


def test_gzip_always_and_negotiated(origin: LabOrigin) -> None:
    origin.put("/g.txt", b"hello " * 1000)
    origin.fault("/g.txt", gzip="always")
    response = raw_get(origin.url + "/g.txt", **{"Accept-Encoding": "identity"})
    stored = response.raw.read(decode_content=False)
    assert response.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(stored) == b"hello " * 1000
    assert response.headers["ETag"] == f'"{hashlib.md5(stored).hexdigest()}"'
    origin.fault("/g.txt", gzip="negotiate")
    plain = raw_get(origin.url + "/g.txt", **{"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in plain.headers
    assert plain.raw.read(decode_content=False) == b"hello " * 1000


def test_redirects_and_unsafe_headers(origin: LabOrigin) -> None:
    origin.put("/target", b"t")
    origin.fault("/old", redirect="/target", redirect_status=301)
    origin.fault("/away", redirect="http://127.0.0.2:9/x")
    moved = requests.get(origin.url + "/old", allow_redirects=False, timeout=5)
    assert moved.status_code == 301 and moved.headers["Location"] == origin.url + "/target"
    away = requests.get(origin.url + "/away", allow_redirects=False, timeout=5)
    assert away.headers["Location"] == "http://127.0.0.2:9/x"
    origin.fault("/target", headers={"Set-Cookie": "s=1", "Cache-Control": "private"})
    unsafe = requests.get(origin.url + "/target", timeout=5)
    assert unsafe.headers["Set-Cookie"] == "s=1" and unsafe.headers["Cache-Control"] == "private"


def test_bandwidth_cap_and_latency(origin: LabOrigin) -> None:
    origin.put_generated("/slow.bin", 400_000)
    origin.fault("/slow.bin", bandwidth=1_000_000, latency=0.2)
    started = time.monotonic()
    assert len(requests.get(origin.url + "/slow.bin", timeout=10).content) == 400_000
    assert time.monotonic() - started >= 0.55  # 0.2 s latency + 0.4 s of pacing, loosely


def test_records_request_headers(origin: LabOrigin) -> None:
    origin.put("/h", b"h")
    requests.get(origin.url + "/h?v=2", headers={"Accept-Encoding": "identity"}, timeout=5)
    (seen,) = origin.counts("/h").requests
    assert seen.query == "v=2" and seen.header("accept-encoding") == "identity"
    assert seen.header("Cookie") is None
    origin.reset_counts()
    assert origin.counts("/h").requests == ()


def test_directory_and_stop_releases_port(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "page.html").write_text("<p>hi</p>")
    with LabOrigin() as server:
        assert server.put_directory(tmp_path) == ["/sub/page.html"]
        response = requests.get(server.url + "/sub/page.html", timeout=5)
        assert response.headers["Content-Type"] == "text/html"
        port = server.port
    with socket.socket() as probe, pytest.raises(ConnectionRefusedError):
        probe.connect(("127.0.0.1", port))  # nobody listens any more


def test_chunked_transfer_without_length(origin: LabOrigin) -> None:
    origin.put_generated("/c.bin", 200_000)
    origin.fault("/c.bin", chunked=True)
    response = raw_get(origin.url + "/c.bin")
    assert "Content-Length" not in response.headers
    assert response.headers["Transfer-Encoding"] == "chunked"
    assert hashlib.sha256(response.raw.read()).hexdigest() == origin.sha256("/c.bin")
    origin.fault("/c.bin", chunked=True, short_by=1000)
    truncated = raw_get(origin.url + "/c.bin")
    with pytest.raises(ProtocolError):
        truncated.raw.read()


def test_conditional_get_answers_304_and_counts_it_apart(origin: LabOrigin) -> None:
    origin.put("/v.css", b"body{}")
    etag = origin.etag("/v.css") or ""
    response = requests.get(origin.url + "/v.css", headers={"If-None-Match": etag}, timeout=5)
    assert response.status_code == 304 and response.content == b""
    counts = origin.counts("/v.css")
    assert (counts.full_gets, counts.heads, counts.other) == (0, 0, 1)


def test_redirect_keeps_its_query(origin: LabOrigin) -> None:
    origin.fault("/old", redirect="/new path?v=1")
    response = requests.get(origin.url + "/old", allow_redirects=False, timeout=5)
    assert response.headers["Location"] == origin.url + "/new%20path?v=1"
