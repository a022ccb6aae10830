"""The lab's CloudFront POPs: origin group failover, the origin-request function, the cache."""

from __future__ import annotations

import concurrent.futures
import http.client
import socket
import ssl
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from edgefill.lab.aws import LabAws
from edgefill.lab.pop import (
    Distribution,
    Pop,
    PopSite,
    normalize_accept_encoding,
    start_pops,
)
from edgefill.lab.template_spec import TemplateSpec
from edgefill.lab.tls import LabCA
from shared.edge_http import EdgeError
from shared.edge_http2 import Http2EdgeClient
from tests.integration.test_lab_pollers import TEMPLATE

DOMAIN = "d111111abcdef8.cloudfront.net"
VIEWER_HOST = "cdn.example.com"
OBJECTS = {
    "/img/a%20b.jpg": b"\xff\xd8jpeg" * 1000,
    "/docs/caf%C3%A9.txt": "café\n".encode() * 10,
}


class TinyOrigin(ThreadingHTTPServer):
    """A full origin for these tests: fixed objects, per-path GET counts, one broken path."""

    daemon_threads = True

    def __init__(self) -> None:
        self.gets: Counter[str] = Counter()
        self.headers_seen: list[dict[str, str]] = []
        super().__init__(("127.0.0.1", 0), TinyOriginHandler)


class TinyOriginHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: TinyOrigin

    def log_message(self, *args: Any) -> None:
        pass

    def do_HEAD(self) -> None:  # noqa: N802
        body = OBJECTS.get(self.path)
        self.send_response(200 if body is not None else 404)
        self.send_header("Content-Length", str(len(body or b"")))
        self.end_headers()

    def do_GET(self) -> None:  # noqa: N802
        self.server.gets[self.path] += 1
        self.server.headers_seen.append({k.lower(): v for k, v in self.headers.items()})
        if self.path == "/short.bin":
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"x" * 10)
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        body = OBJECTS.get(self.path)
        if body is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("ETag", '"v1"')
        self.end_headers()
        self.wfile.write(body)


class RecordingEdge:
    """Stands in for the edge function: records events, strips x-edgefill-* headers."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        with self.lock:
            self.events.append(event)
        request = event["Records"][0]["cf"]["request"]
        custom = request["origin"].get("custom")
        if custom:
            custom["customHeaders"] = {
                k: v for k, v in custom["customHeaders"].items() if not k.startswith("x-edgefill-")
            }
        return request


@pytest.fixture
def pop_lab(tmp_path: Path, moto_server: str) -> Iterator[dict[str, Any]]:
    aws = LabAws(TemplateSpec.from_text(TEMPLATE), endpoint_url=moto_server)
    aws.start()
    origin = TinyOrigin()
    threading.Thread(target=origin.serve_forever, args=(0.05,), daemon=True).start()
    ca = LabCA(tmp_path / "ca")
    edge = RecordingEdge()
    distribution = Distribution(
        distribution_id="E2EXAMPLE",
        domain=DOMAIN,
        viewer_hosts=(DOMAIN, VIEWER_HOST),
        bucket=aws.bucket,
        bucket_region="us-east-1",
        origin_url=f"http://127.0.0.1:{origin.server_address[1]}",
        origin_custom_headers=(("x-edgefill-queue", aws.queue("BackfillQueue").url),),
    )
    sites = [
        PopSite("NRT20-P2", "ap-northeast-1", "127.0.0.21"),
        PopSite("FRA56-P1", "eu-central-1", "127.0.0.22"),
    ]
    pops = start_pops(
        sites,
        distribution,
        ca.server_context(DOMAIN, VIEWER_HOST),
        aws.client("s3"),
        edge,
        tmp_path / "cache",
    )
    yield {"aws": aws, "origin": origin, "edge": edge, "pops": pops, "ca": ca}
    for pop in pops:
        pop.stop()
    origin.shutdown()
    origin.server_close()
    aws.stop()


def get(
    pop: Pop, ca: LabCA, path: str, host: str = VIEWER_HOST, encoding: str | None = None
) -> tuple[int, dict[str, str], bytes]:
    context = ssl.create_default_context(cafile=str(ca.bundle_path))
    raw = socket.create_connection((pop.site.address, pop.port), timeout=10)
    tls = context.wrap_socket(raw, server_hostname=host)
    connection = http.client.HTTPSConnection(host, pop.port, context=context)
    connection.sock = tls
    headers = {"Host": host}
    if encoding is not None:
        headers["Accept-Encoding"] = encoding
    connection.request("GET", path, headers=headers)
    response = connection.getresponse()
    body = response.read()
    connection.close()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, body


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("br, gzip", "br+gzip"),
        ("gzip, deflate, br;q=0.5", "br+gzip"),
        ("gzip", "gzip"),
        ("br", "br"),
        ("deflate", "identity"),
        (None, "identity"),
        ("gzip;q=0, br", "br"),
    ],
)
def test_accept_encoding_is_normalized_as_cloudfront_does(
    header: str | None, expected: str
) -> None:
    assert normalize_accept_encoding(header) == expected


def test_missing_object_fails_over_and_is_then_a_hit(pop_lab: dict[str, Any]) -> None:
    # Given an object the bucket lacks and the full origin has
    pop, ca, edge = pop_lab["pops"][0], pop_lab["ca"], pop_lab["edge"]
    # When a viewer asks twice
    status, headers, body = get(pop, ca, "/img/a%20b.jpg", encoding="gzip, br")
    status2, headers2, body2 = get(pop, ca, "/img/a%20b.jpg", encoding="br,gzip")
    # Then the first is a miss served by the secondary, the second a hit, same bytes
    assert (status, headers["x-cache"], headers["x-amz-cf-pop"]) == (
        200,
        "Miss from cloudfront",
        "NRT20-P2",
    )
    assert body == OBJECTS["/img/a%20b.jpg"]
    assert (status2, headers2["x-cache"], body2) == (200, "Hit from cloudfront", body)
    assert pop_lab["origin"].gets["/img/a%20b.jpg"] == 1
    # And the function saw one s3 event and one custom event carrying the queue header
    origins = [e["Records"][0]["cf"]["request"]["origin"] for e in edge.events]
    assert list(origins[0]) == ["s3"] and list(origins[1]) == ["custom"]
    queue_url = pop_lab["aws"].queue("BackfillQueue").url
    assert origins[1]["custom"]["customHeaders"] == {}  # stripped by the function in place
    request = edge.events[1]["Records"][0]["cf"]["request"]
    assert request["uri"] == "/img/a%20b.jpg" and request["method"] == "GET"
    assert request["headers"]["host"][0]["value"] == VIEWER_HOST
    assert edge.events[1]["Records"][0]["cf"]["config"]["eventType"] == "origin-request"
    del queue_url
    # And no x-edgefill header reached the origin
    assert not any(k.startswith("x-edgefill") for k in pop_lab["origin"].headers_seen[0])
    assert pop_lab["origin"].headers_seen[0]["accept-encoding"] == "br,gzip"


def test_custom_header_reaches_the_origin_when_the_function_keeps_it(
    pop_lab: dict[str, Any],
) -> None:
    # Given a function that returns the request untouched
    pop = pop_lab["pops"][0]
    pop._edge_handler = lambda event, context: event["Records"][0]["cf"]["request"]
    # When a viewer misses
    get(pop, pop_lab["ca"], "/docs/caf%C3%A9.txt")
    # Then CloudFront's rule applies: origin custom headers are sent to the origin
    assert pop_lab["origin"].headers_seen[0]["x-edgefill-queue"].endswith("BackfillQueue")


def test_object_in_the_bucket_is_served_by_the_primary(pop_lab: dict[str, Any]) -> None:
    aws, pop = pop_lab["aws"], pop_lab["pops"][1]
    aws.client("s3").put_object(
        Bucket=aws.bucket, Key="docs/café.txt", Body=b"from s3", ContentType="text/plain"
    )
    status, headers, body = get(pop, pop_lab["ca"], "/docs/caf%C3%A9.txt", host=DOMAIN)
    assert (status, body, headers["content-type"]) == (200, b"from s3", "text/plain")
    assert headers["x-amz-cf-pop"] == "FRA56-P1"
    assert pop_lab["origin"].gets["/docs/caf%C3%A9.txt"] == 0
    # The POP stores the object once its last byte is written, which may be just after
    # the viewer has read it.
    deadline = time.monotonic() + 5
    while pop.stats.stored == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert pop.stats.failovers == 0 and pop.stats.stored == 1


def test_cache_is_keyed_by_encoding_and_pop(pop_lab: dict[str, Any]) -> None:
    first, second = pop_lab["pops"]
    ca = pop_lab["ca"]
    assert get(first, ca, "/img/a%20b.jpg", encoding="gzip")[1]["x-cache"].startswith("Miss")
    assert get(first, ca, "/img/a%20b.jpg")[1]["x-cache"].startswith("Miss")
    assert get(second, ca, "/img/a%20b.jpg", encoding="gzip")[1]["x-cache"].startswith("Miss")
    assert get(first, ca, "/img/a%20b.jpg", encoding="gzip")[1]["x-cache"].startswith("Hit")
    assert first.cached(VIEWER_HOST, "/img/a%20b.jpg", "identity")
    assert not first.cached(VIEWER_HOST, "/img/a%20b.jpg", "br")


def test_concurrent_misses_at_one_pop_collapse_into_one_fetch(pop_lab: dict[str, Any]) -> None:
    pop, ca = pop_lab["pops"][0], pop_lab["ca"]
    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        results = list(pool.map(lambda _: get(pop, ca, "/img/a%20b.jpg"), range(20)))
    assert all(body == OBJECTS["/img/a%20b.jpg"] for _, _, body in results)
    assert pop_lab["origin"].gets["/img/a%20b.jpg"] == 1
    assert sum(h["x-cache"].startswith("Miss") for _, h, _ in results) == 1


def test_a_short_origin_body_is_cut_for_the_viewer_and_not_cached(
    pop_lab: dict[str, Any],
) -> None:
    pop, ca = pop_lab["pops"][0], pop_lab["ca"]
    with pytest.raises(http.client.IncompleteRead):
        get(pop, ca, "/short.bin")
    assert not pop.cached(VIEWER_HOST, "/short.bin", "identity")
    assert pop.stats.not_stored == 1


def test_an_object_missing_everywhere_is_an_uncached_error(pop_lab: dict[str, Any]) -> None:
    pop, ca = pop_lab["pops"][0], pop_lab["ca"]
    status, headers, _ = get(pop, ca, "/nothing.txt")
    assert status == 404 and headers["x-cache"] == "Error from cloudfront"
    assert not pop.cached(VIEWER_HOST, "/nothing.txt", "identity")


def test_a_function_that_raises_gives_502(pop_lab: dict[str, Any]) -> None:
    pop = pop_lab["pops"][0]

    def broken(event: dict[str, Any], context: Any) -> Any:
        raise ValueError("bug")

    pop._edge_handler = broken
    status, headers, body = get(pop, pop_lab["ca"], "/img/a%20b.jpg")
    assert status == 502 and b"bug" in body


def test_pops_share_one_port_on_distinct_addresses(pop_lab: dict[str, Any]) -> None:
    first, second = pop_lab["pops"]
    assert first.port == second.port
    assert first.site.address != second.site.address


def test_a_head_miss_fails_over_with_method_head_and_is_not_cached(
    pop_lab: dict[str, Any],
) -> None:
    # Given an object only the full origin has / When a viewer sends HEAD
    pop, ca = pop_lab["pops"][0], pop_lab["ca"]
    context = ssl.create_default_context(cafile=str(ca.bundle_path))
    connection = http.client.HTTPSConnection(VIEWER_HOST, pop.port, context=context)
    connection.sock = context.wrap_socket(
        socket.create_connection((pop.site.address, pop.port)), server_hostname=VIEWER_HOST
    )
    connection.request("HEAD", "/img/a%20b.jpg", headers={"Host": VIEWER_HOST})
    response = connection.getresponse()
    assert response.read() == b""
    connection.close()
    # Then the length is the object's, the function saw HEAD on both attempts, nothing cached
    assert response.status == 200
    assert response.getheader("Content-Length") == str(len(OBJECTS["/img/a%20b.jpg"]))
    methods = [e["Records"][0]["cf"]["request"]["method"] for e in pop_lab["edge"].events]
    assert methods == ["HEAD", "HEAD"]
    assert not pop.cached(VIEWER_HOST, "/img/a%20b.jpg", "identity")


# ---- HTTP/2 viewers (issue 23): the same POP behaviour on both protocols ---------------
def h2_client(pop: Pop, ca: LabCA) -> Http2EdgeClient:
    return Http2EdgeClient(port=pop.port, ca_bundle=str(ca.bundle_path))


def test_over_http2_a_miss_fails_over_and_is_then_a_hit_for_http1_too(
    pop_lab: dict[str, Any],
) -> None:
    # Given an object only the full origin has, and a viewer speaking HTTP/2
    pop, ca = pop_lab["pops"][0], pop_lab["ca"]
    client = h2_client(pop, ca)
    try:
        # When it asks twice over HTTP/2
        first = client.get(pop.site.address, VIEWER_HOST, "/img/a%20b.jpg", "gzip", 10**6)
        second = client.get(pop.site.address, VIEWER_HOST, "/img/a%20b.jpg", "gzip", 10**6)
    finally:
        client.close()
    # Then the POP answered over h2: a miss from the secondary, then a hit, same bytes
    assert (first.protocol, first.status, first.headers["X-Cache"]) == (
        "h2",
        200,
        "Miss from cloudfront",
    )
    assert first.headers["X-Amz-Cf-Pop"] == "NRT20-P2" and first.complete
    assert first.body == second.body == OBJECTS["/img/a%20b.jpg"]
    assert second.headers["X-Cache"] == "Hit from cloudfront"
    assert pop_lab["origin"].gets["/img/a%20b.jpg"] == 1
    # And the origin-request function ran with the viewer's host, as for HTTP/1.1
    request = pop_lab["edge"].events[1]["Records"][0]["cf"]["request"]
    assert request["headers"]["host"][0]["value"] == VIEWER_HOST
    # And an HTTP/1.1 viewer finds the same cached object
    assert get(pop, ca, "/img/a%20b.jpg", encoding="gzip")[1]["x-cache"].startswith("Hit")


def test_over_http2_concurrent_misses_on_one_connection_collapse_into_one_fetch(
    pop_lab: dict[str, Any],
) -> None:
    pop, ca = pop_lab["pops"][0], pop_lab["ca"]
    client = h2_client(pop, ca)
    try:
        with concurrent.futures.ThreadPoolExecutor(20) as pool:
            results = list(
                pool.map(
                    lambda _: client.get(pop.site.address, VIEWER_HOST, "/img/a%20b.jpg", None),
                    range(20),
                )
            )
    finally:
        client.close()
    assert all(r.status == 200 and r.complete for r in results)
    assert {r.protocol for r in results} == {"h2"} and client.h2_connections == 1
    assert pop_lab["origin"].gets["/img/a%20b.jpg"] == 1
    assert sum(r.headers["X-Cache"].startswith("Miss") for r in results) == 1


def test_over_http2_a_short_origin_body_resets_the_stream_and_is_not_cached(
    pop_lab: dict[str, Any],
) -> None:
    pop, ca = pop_lab["pops"][0], pop_lab["ca"]
    client = h2_client(pop, ca)
    try:
        with pytest.raises(EdgeError) as error:
            client.get(pop.site.address, VIEWER_HOST, "/short.bin", None)
        # And the connection carries on for the next request
        after = client.get(pop.site.address, VIEWER_HOST, "/docs/caf%C3%A9.txt", None)
    finally:
        client.close()
    assert "body ended after" in error.value.reason and error.value.retryable
    assert not pop.cached(VIEWER_HOST, "/short.bin", "identity")
    assert after.status == 200 and after.protocol == "h2" and client.h2_connections == 1


def test_over_http2_a_host_the_pop_certificate_does_not_name_is_refused_before_a_stream(
    pop_lab: dict[str, Any],
) -> None:
    pop, ca = pop_lab["pops"][0], pop_lab["ca"]
    requests_before = pop.stats.requests
    client = h2_client(pop, ca)
    try:
        with pytest.raises(EdgeError) as error:
            client.get(pop.site.address, "evil.example", "/img/a%20b.jpg", None)
    finally:
        client.close()
    assert "TLS failed" in error.value.reason and not error.value.retryable
    assert pop.stats.requests == requests_before and client.h2_connections == 0
