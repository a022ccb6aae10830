"""Backfill against moto in server mode and the lab origin: copies, fidelity, verification,
fault modes and safety rules. Every test ends with no multipart upload and no lease left."""

from __future__ import annotations

import gzip
import hashlib
import json
import threading
import time
from typing import Any

import pytest

from backfill_worker.flight.outcome import TransientFailure
from edgefill.lab.origin import LabOrigin
from shared.cache_control import http_date
from shared.messages import parse_time
from tests.integration.backfill_world import (
    BUCKET,
    MIB,
    FakeLambdaContext,
    backfill_at_once,
    keys,
    make_backfiller,
    message,
    sha256,
    stored,
)


@pytest.fixture
def prewarm_queue(sqs: Any) -> str:
    return str(sqs.create_queue(QueueName="edgefill-prewarm")["QueueUrl"])


def received_prewarm(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    response = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)
    return [json.loads(m["Body"]) for m in response.get("Messages", [])]


# ---------------------------------------------------------------- copies


def test_small_object_is_copied_with_its_headers_and_announced(
    bucket: Any, origin: LabOrigin, sqs: Any, prewarm_queue: str
) -> None:
    # Given a small object with representation headers under a non-ASCII name
    origin.put(
        "/img/ä b.jpg",
        b"\xff\xd8 jpeg bytes",
        content_type="image/jpeg",
        headers={
            "Cache-Control": "public, max-age=600",
            "Content-Disposition": 'inline; filename="a.jpg"',
            "Content-Language": "de",
            "Expires": "Wed, 21 Oct 2026 07:28:00 GMT",
        },
        last_modified=1_700_000_000,
    )
    worker = make_backfiller(bucket, origin, sqs, EDGEFILL_PREWARM_QUEUE_URL=prewarm_queue)
    # When its miss is backfilled
    outcome = worker.backfill(message("/img/%C3%A4%20b.jpg"), FakeLambdaContext())
    # Then the bytes and headers are in the bucket, with the origin's validators as metadata
    assert (outcome.status, outcome.key) == ("copied", "img/ä b.jpg")
    assert stored(bucket, "img/ä b.jpg") == b"\xff\xd8 jpeg bytes"
    head = bucket.head_object(Bucket=BUCKET, Key="img/ä b.jpg")
    assert head["ContentType"] == "image/jpeg"
    assert head["CacheControl"] == "public, max-age=600"
    assert head["ContentDisposition"] == 'inline; filename="a.jpg"'
    assert head["ContentLanguage"] == "de"
    assert head["ExpiresString"] == "Wed, 21 Oct 2026 07:28:00 GMT"
    fetched_at = head["Metadata"].pop("fetched-at")  # when the bytes were copied
    assert parse_time(fetched_at) is not None and fetched_at.endswith("Z")
    # (the origin's Date, from which the copy's age is known later: RFC 9111 §4.2.3)
    assert http_date(head["Metadata"].pop("origin-date")) is not None
    assert head["Metadata"] == {
        "origin-etag": origin.etag("/img/ä b.jpg"),
        "origin-last-modified": "Tue, 14 Nov 2023 22:13:20 GMT",
    }
    # And the origin got one identity GET with no viewer credentials
    (request,) = origin.counts("/img/ä b.jpg").requests
    assert request.method == "GET" and request.header("Accept-Encoding") == "identity"
    assert request.header("Cookie") is None and request.header("Authorization") is None
    # And a prewarm message went out
    assert received_prewarm(sqs, prewarm_queue) == [
        {"v": 1, "type": "prewarm", "paths": ["/img/%C3%A4%20b.jpg"], "source": "backfill"}
    ]


def test_with_query_forward_a_message_with_a_query_is_skipped_and_never_fetched(
    bucket: Any, origin: LabOrigin, sqs: Any, prewarm_queue: str
) -> None:
    # Given EDGEFILL_QUERY=forward (the query is part of the cache key) and a viewer's query
    origin.put("/app.js", b"js")
    worker = make_backfiller(
        bucket, origin, sqs, EDGEFILL_QUERY="forward", EDGEFILL_PREWARM_QUEUE_URL=prewarm_queue
    )
    # When its failover is backfilled
    outcome = worker.backfill(message("/app.js", query="v=2&w=3"), FakeLambdaContext())
    # Then it is skipped (permanent): one viewer's query never picks the path's object
    assert (outcome.status, outcome.reason) == ("skipped", "query")
    assert origin.all_requests() == [] and keys(bucket) == []
    assert received_prewarm(sqs, prewarm_queue) == []


@pytest.mark.parametrize(
    ("mode", "query"), [("forward", ""), ("ignore", "v=2&w=3"), ("ignore", "")]
)
def test_the_path_is_copied_and_warmed_without_any_query(
    bucket: Any, origin: LabOrigin, sqs: Any, prewarm_queue: str, mode: str, query: str
) -> None:
    origin.put("/app.js", b"js")
    worker = make_backfiller(
        bucket, origin, sqs, EDGEFILL_QUERY=mode, EDGEFILL_PREWARM_QUEUE_URL=prewarm_queue
    )
    outcome = worker.backfill(message("/app.js", query=query), FakeLambdaContext())
    assert (outcome.status, outcome.key) == ("copied", "app.js")
    assert [request.query for request in origin.counts("/app.js").requests] == [""]
    assert received_prewarm(sqs, prewarm_queue)[0]["paths"] == ["/app.js"]
    assert keys(bucket) == ["app.js"]


def test_key_prefix_applies(bucket: Any, origin: LabOrigin) -> None:
    origin.put("/a.css", b"css")
    worker = make_backfiller(bucket, origin, EDGEFILL_KEY_PREFIX="site/")
    assert worker.backfill(message("/a.css")).key == "site/a.css"
    assert stored(bucket, "site/a.css") == b"css"


def test_existing_key_is_skipped_without_asking_the_origin(bucket: Any, origin: LabOrigin) -> None:
    bucket.put_object(Bucket=BUCKET, Key="here.txt", Body=b"already")
    origin.put("/here.txt", b"origin copy")
    outcome = make_backfiller(bucket, origin).backfill(message("/here.txt"))
    assert (outcome.status, outcome.reason) == ("skipped", "exists")
    assert origin.counts("/here.txt").requests == ()
    assert stored(bucket, "here.txt") == b"already"


def test_large_object_is_copied_by_parallel_ranges(bucket: Any, origin: LabOrigin) -> None:
    # Given a 12 MiB object on an origin that advertises ranges (5 MiB parts → 3 parts)
    size = 12 * MIB + 3
    origin.put_generated("/big.bin", size, seed=3)
    # When it is backfilled
    outcome = make_backfiller(bucket, origin).backfill(message("/big.bin"), FakeLambdaContext())
    # Then part 1 came from the first GET and the others by ranges, and the bytes match
    counts = origin.counts("/big.bin")
    assert (counts.full_gets, counts.ranged_gets) == (1, 2)
    assert outcome.size == size
    assert sha256(stored(bucket, "big.bin")) == origin.sha256("/big.bin")
    head = bucket.head_object(Bucket=BUCKET, Key="big.bin")
    assert head["ETag"].endswith('-3"')
    assert head["Metadata"]["origin-etag"] == origin.etag("/big.bin")
    ranges = sorted(
        (r.header("Range") or "" for r in counts.requests if r.header("Range")), key=len
    )
    assert ranges == [f"bytes={5 * MIB}-{10 * MIB - 1}", f"bytes={10 * MIB}-{size - 1}"]
    # And every request, ranged ones included, asked for the stored bytes and carried no
    # credentials
    for request in counts.requests:
        assert request.header("Accept-Encoding") == "identity"
        assert request.header("Cookie") is None and request.header("Authorization") is None


def test_origin_without_ranges_is_streamed_once(bucket: Any, origin: LabOrigin) -> None:
    origin.put_generated("/stream.bin", 11 * MIB, seed=4, etag="multipart")
    origin.fault("/stream.bin", no_ranges=True)
    make_backfiller(bucket, origin).backfill(message("/stream.bin"), FakeLambdaContext())
    counts = origin.counts("/stream.bin")
    assert (counts.full_gets, counts.ranged_gets) == (1, 0)
    assert sha256(stored(bucket, "stream.bin")) == origin.sha256("/stream.bin")


def test_slow_origin_still_copies(bucket: Any, origin: LabOrigin) -> None:
    origin.put_generated("/slow.bin", 600_000)
    origin.fault("/slow.bin", latency=0.3, bandwidth=1_000_000)
    started = time.monotonic()
    make_backfiller(bucket, origin).backfill(message("/slow.bin"), FakeLambdaContext())
    assert time.monotonic() - started >= 0.8
    assert sha256(stored(bucket, "slow.bin")) == origin.sha256("/slow.bin")


def test_gzip_body_is_stored_as_served_with_its_encoding(bucket: Any, origin: LabOrigin) -> None:
    # Given an origin that stores the object gzip-compressed
    origin.put("/data.json", b'{"k": "v"}' * 500, content_type="application/json")
    origin.fault("/data.json", gzip="always")
    make_backfiller(bucket, origin).backfill(message("/data.json"), FakeLambdaContext())
    # Then the bucket holds the compressed bytes, not decoded, with Content-Encoding kept
    body = stored(bucket, "data.json")
    assert gzip.decompress(body) == b'{"k": "v"}' * 500
    assert bucket.head_object(Bucket=BUCKET, Key="data.json")["ContentEncoding"] == "gzip"


def test_negotiating_origin_serves_the_identity_representation(
    bucket: Any, origin: LabOrigin
) -> None:
    origin.put("/page.html", b"<p>plain</p>" * 100)
    origin.fault("/page.html", gzip="negotiate")
    make_backfiller(bucket, origin).backfill(message("/page.html"), FakeLambdaContext())
    assert stored(bucket, "page.html") == b"<p>plain</p>" * 100
    assert "ContentEncoding" not in bucket.head_object(Bucket=BUCKET, Key="page.html")


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_redirect_on_the_origin_host_is_not_followed(
    bucket: Any, origin: LabOrigin, status: int
) -> None:
    # Given a path that redirects to another path of the same origin
    origin.put("/new/logo.png", b"png")
    origin.fault("/logo.png", redirect="/new/logo.png", redirect_status=status)
    # When it is backfilled
    outcome = make_backfiller(bucket, origin).backfill(message("/logo.png"), FakeLambdaContext())
    # Then nothing is stored under the requested key and the target was never fetched
    assert (outcome.status, outcome.reason) == ("skipped", "redirect")
    assert origin.counts("/new/logo.png").requests == ()
    assert keys(bucket) == []


def test_redirect_cannot_carry_a_copy_past_the_filters(bucket: Any, origin: LabOrigin) -> None:
    # Given an included path redirecting into an excluded one
    origin.put("/private/report.pdf", b"internal")
    origin.fault("/img/report.pdf", redirect="/private/report.pdf")
    worker = make_backfiller(bucket, origin, EDGEFILL_EXCLUDE="/private/*")
    # Then the excluded path is never fetched, and nothing is stored
    assert worker.backfill(message("/img/report.pdf")).reason == "redirect"
    assert origin.counts("/private/report.pdf").requests == ()
    assert keys(bucket) == []


def test_redirect_to_another_host_is_refused(bucket: Any, origin: LabOrigin) -> None:
    with LabOrigin(host="127.0.0.2") as foreign:
        foreign.put("/x.png", b"elsewhere")
        origin.fault("/x.png", redirect=foreign.url + "/x.png")
        outcome = make_backfiller(bucket, origin).backfill(message("/x.png"))
        assert (outcome.status, outcome.reason) == ("skipped", "redirect")
        assert foreign.all_requests() == []
    assert keys(bucket) == []


# ---------------------------------------------------------------- permanent refusals


@pytest.mark.parametrize("status", [404, 410, 403])
def test_origin_4xx_is_permanent(bucket: Any, origin: LabOrigin, status: int) -> None:
    origin.put("/gone.txt", b"x")
    origin.fault("/gone.txt", status=status)
    outcome = make_backfiller(bucket, origin).backfill(message("/gone.txt"))
    assert (outcome.status, outcome.reason) == ("skipped", "origin")
    assert keys(bucket) == []


@pytest.mark.parametrize(
    ("headers", "directive"),
    [
        ({"Cache-Control": "private, max-age=60"}, "Cache-Control: private"),
        ({"Cache-Control": "no-store"}, "Cache-Control: no-store"),
        ({"Cache-Control": "no-cache"}, "Cache-Control: no-cache"),
        ({"Cache-Control": "max-age=0"}, "Cache-Control: max-age=0"),
        ({"Cache-Control": "max-age=600, s-maxage=0"}, "Cache-Control: s-maxage=0"),
        ({"Pragma": "no-cache"}, "Pragma: no-cache"),
        ({"Vary": "Cookie"}, "Vary: Cookie"),
        ({"Vary": "*"}, "Vary: *"),
        ({"Set-Cookie": "session=abc; Path=/"}, "Set-Cookie"),
        ({"Set-Cookie2": "session=abc"}, "Set-Cookie2"),
    ],
)
def test_uncacheable_responses_are_never_stored(
    bucket: Any,
    origin: LabOrigin,
    headers: dict[str, str],
    directive: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    origin.put("/me.json", b'{"user": "alice"}')
    origin.fault("/me.json", headers=headers)
    outcome = make_backfiller(bucket, origin).backfill(message("/me.json"))
    assert (outcome.status, outcome.reason) == ("skipped", "uncacheable")
    assert keys(bucket) == []
    # And the log line names the directive
    skipped = [r for r in caplog.records if r.getMessage() == "backfill skipped"]
    assert [(r.reason, r.directive) for r in skipped] == [("uncacheable", directive)]


def test_oversize_object_is_skipped(bucket: Any, origin: LabOrigin) -> None:
    origin.put_generated("/huge.bin", 2000)
    worker = make_backfiller(bucket, origin, EDGEFILL_MAX_OBJECT_BYTES="1000")
    outcome = worker.backfill(message("/huge.bin"))
    assert (outcome.status, outcome.reason) == ("skipped", "oversize")
    assert keys(bucket) == []


def test_filters_skip_before_any_request(bucket: Any, origin: LabOrigin) -> None:
    origin.put("/private/report.pdf", b"pdf")
    worker = make_backfiller(
        bucket, origin, EDGEFILL_INCLUDE="/img/*,/private/*", EDGEFILL_EXCLUDE="/private/*"
    )
    outcome = worker.backfill(message("/private/report.pdf"))
    assert (outcome.status, outcome.reason) == ("skipped", "filtered")
    assert origin.all_requests() == [] and keys(bucket) == []


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("not json", "bad_message"),
        ('{"v": 2, "type": "backfill", "uri": "/a"}', "bad_message"),
        ('{"v": 1, "type": "backfill", "uri": 5}', "bad_message"),
        ('{"v": 1, "type": "backfill"}', "bad_message"),
        ('{"v": 1, "type": "backfill", "uri": "http://evil.example/a"}', "bad_message"),
        ('{"v": 1, "type": "backfill", "uri": "//evil.example/a"}', "bad_message"),
        ('{"v": 1, "type": "backfill", "uri": "/a\\r\\nHost: evil"}', "bad_message"),
        ('{"v": 1, "type": "backfill", "uri": "/a/../etc/passwd"}', "bad_key"),
        ('{"v": 1, "type": "backfill", "uri": "/a/%2e%2e/secret"}', "bad_key"),
        ('{"v": 1, "type": "backfill", "uri": "/a%00b"}', "bad_key"),
        ('{"v": 1, "type": "backfill", "uri": "/a%0d%0ab"}', "bad_key"),
        ('{"v": 1, "type": "backfill", "uri": "/_edgefill/leases/x"}', "bad_key"),
        ('{"v": 1, "type": "backfill", "uri": "/' + "k" * 1100 + '"}', "bad_key"),
    ],
)
def test_bad_messages_touch_neither_origin_nor_bucket(
    bucket: Any, origin: LabOrigin, body: str, reason: str
) -> None:
    outcome = make_backfiller(bucket, origin).backfill(body)
    assert (outcome.status, outcome.reason) == ("skipped", reason)
    assert origin.all_requests() == []
    assert keys(bucket) == []


# ---------------------------------------------------------------- transient failures


def test_origin_5xx_is_retried_then_succeeds(bucket: Any, origin: LabOrigin) -> None:
    origin.put("/flaky.txt", b"eventually")
    origin.fault("/flaky.txt", status=503, times=1)
    worker = make_backfiller(bucket, origin)
    with pytest.raises(TransientFailure, match="503"):
        worker.backfill(message("/flaky.txt"), FakeLambdaContext())
    assert keys(bucket) == []  # and the lease is gone, so the retry may proceed
    assert worker.backfill(message("/flaky.txt"), FakeLambdaContext()).status == "copied"


@pytest.mark.parametrize("size", [3 * MIB, 12 * MIB])
def test_reset_mid_body_leaves_nothing(bucket: Any, origin: LabOrigin, size: int) -> None:
    origin.put_generated("/reset.bin", size)
    origin.fault("/reset.bin", reset_after=MIB, times=1)
    with pytest.raises(TransientFailure):
        make_backfiller(bucket, origin).backfill(message("/reset.bin"), FakeLambdaContext())
    assert keys(bucket) == []


@pytest.mark.parametrize("size", [2 * MIB, 12 * MIB])
def test_short_body_leaves_nothing(bucket: Any, origin: LabOrigin, size: int) -> None:
    origin.put_generated("/short.bin", size)
    origin.fault("/short.bin", short_by=1000, no_ranges=True)
    with pytest.raises(TransientFailure):
        make_backfiller(bucket, origin).backfill(message("/short.bin"), FakeLambdaContext())
    assert keys(bucket) == []


def test_length_longer_than_body_is_truncation(bucket: Any, origin: LabOrigin) -> None:
    origin.put_generated("/long.bin", 100_000)
    origin.fault("/long.bin", length_delta=+500)
    with pytest.raises(TransientFailure, match="origin"):
        make_backfiller(bucket, origin).backfill(message("/long.bin"), FakeLambdaContext())
    assert keys(bucket) == []


@pytest.mark.parametrize("size", [100_000, 11 * MIB])
def test_length_shorter_than_body_fails_the_md5(bucket: Any, origin: LabOrigin, size: int) -> None:
    # Given an origin whose Content-Length undercounts: the client sees a "complete" body
    origin.put_generated("/cut.bin", size)
    origin.fault("/cut.bin", length_delta=-500, no_ranges=True, server="AmazonS3")
    # Then the MD5 from its S3 ETag catches the loss
    with pytest.raises(TransientFailure, match="md5"):
        make_backfiller(bucket, origin).backfill(message("/cut.bin"), FakeLambdaContext())
    assert keys(bucket) == []


def test_content_md5_mismatch_is_caught(bucket: Any, origin: LabOrigin) -> None:
    origin.put("/m.txt", b"payload", etag=None)
    wrong = "1B2M2Y8AsgTpgAmY7PhCfg=="  # MD5 of the empty string
    origin.fault("/m.txt", headers={"Content-MD5": wrong})
    with pytest.raises(TransientFailure, match="md5"):
        make_backfiller(bucket, origin).backfill(message("/m.txt"), FakeLambdaContext())
    assert keys(bucket) == []


def test_object_changing_between_ranges_is_caught(bucket: Any, origin: LabOrigin) -> None:
    origin.put_generated("/v.bin", 11 * MIB)
    origin.fault("/v.bin", headers={"ETag": '"version-1"'}, times=1)  # only the first GET
    with pytest.raises(TransientFailure, match="ETag changed"):
        make_backfiller(bucket, origin).backfill(message("/v.bin"), FakeLambdaContext())
    assert keys(bucket) == []


def test_s3_errors_are_transient(s3: Any, origin: LabOrigin) -> None:
    # Given no bucket at all: HEAD says "missing", the lease write fails
    origin.put("/a.txt", b"a")
    with pytest.raises(TransientFailure, match="s3"):
        make_backfiller(s3, origin).backfill(message("/a.txt"), FakeLambdaContext())
    assert origin.all_requests() == []


# ---------------------------------------------------------------- races


@pytest.mark.parametrize("size", [MIB, 11 * MIB])
def test_object_appearing_during_the_copy_is_kept(
    bucket: Any, origin: LabOrigin, size: int
) -> None:
    # Given a slow origin, and another writer that puts the key while the copy runs
    origin.put_generated("/race.bin", size)
    origin.fault("/race.bin", latency=0.5)
    outcomes: list[Any] = []
    worker = make_backfiller(bucket, origin)
    copier = threading.Thread(
        target=lambda: outcomes.append(worker.backfill(message("/race.bin"), FakeLambdaContext()))
    )
    copier.start()
    origin.wait_for_request("/race.bin")  # both HEAD checks are behind the copy now
    bucket.put_object(Bucket=BUCKET, Key="race.bin", Body=b"winner")
    # When the copy completes with IfNoneMatch='*'
    copier.join()
    # Then the existing object wins and counts as success
    assert [(o.status, o.reason) for o in outcomes] == [("skipped", "appeared")]
    assert stored(bucket, "race.bin") == b"winner"


def test_sixteen_concurrent_records_make_one_copy(bucket: Any, origin: LabOrigin) -> None:
    # Given a missing key on a slow origin and 16 workers receiving its miss at once
    origin.put_generated("/hot.bin", 2 * MIB, seed=9)
    origin.fault("/hot.bin", latency=0.3)
    workers = [make_backfiller(bucket, origin) for _ in range(16)]
    outcomes = backfill_at_once(workers, message("/hot.bin"))
    # Then exactly one origin body GET, one object, identical bytes
    assert origin.counts("/hot.bin").body_gets == 1
    assert sorted(o.status for o in outcomes) == ["copied"] + ["skipped"] * 15
    assert {o.reason for o in outcomes if o.status == "skipped"} <= {"leased", "exists"}
    assert keys(bucket) == ["hot.bin"]
    assert sha256(stored(bucket, "hot.bin")) == origin.sha256("/hot.bin")


def test_live_lease_means_someone_else_copies(bucket: Any, origin: LabOrigin) -> None:
    from backfill_worker.flight.lease import lease_key

    origin.put("/l.txt", b"l")
    lease = lease_key("l.txt")
    body = json.dumps({"v": 1, "owner": "other", "expiresAt": time.time() + 600})
    bucket.put_object(Bucket=BUCKET, Key=lease, Body=body.encode())
    outcome = make_backfiller(bucket, origin).backfill(message("/l.txt"), FakeLambdaContext())
    assert (outcome.status, outcome.reason) == ("skipped", "leased")
    assert origin.all_requests() == []
    bucket.delete_object(Bucket=BUCKET, Key=lease)


@pytest.mark.parametrize("body", [b'{"expiresAt": 1}', b"garbage"])
def test_expired_or_unreadable_lease_is_taken_over(
    bucket: Any, origin: LabOrigin, body: bytes
) -> None:
    from backfill_worker.flight.lease import lease_key

    origin.put("/e.txt", b"e")
    bucket.put_object(Bucket=BUCKET, Key=lease_key("e.txt"), Body=body)
    outcome = make_backfiller(bucket, origin).backfill(message("/e.txt"), FakeLambdaContext())
    assert outcome.status == "copied"
    assert stored(bucket, "e.txt") == b"e"


def test_lease_holds_owner_and_deadline(bucket: Any, origin: LabOrigin) -> None:
    from backfill_worker.flight.lease import lease_key

    # Given a copy in progress (slow origin)
    origin.put("/d.txt", b"d")
    origin.fault("/d.txt", latency=0.5)
    context = FakeLambdaContext(timeout_seconds=120)
    worker = make_backfiller(bucket, origin)
    copier = threading.Thread(target=worker.backfill, args=(message("/d.txt"), context))
    copier.start()
    # When its lease is read while the origin request is pending
    origin.wait_for_request("/d.txt")
    raw = bucket.get_object(Bucket=BUCKET, Key=lease_key("d.txt"))["Body"].read()
    copier.join()
    lease = json.loads(raw)
    # Then it names the invocation, and lasts its remaining time plus the margin, not forever
    assert lease["owner"] == context.aws_request_id and lease["key"] == "d.txt"
    assert time.time() + 100 < lease["expiresAt"] < time.time() + 120 + 61


def test_md5_of_ranged_copy_is_checked(bucket: Any, origin: LabOrigin) -> None:
    # Given an S3 ETag claiming a different MD5 than the bytes: every range matches it
    origin.put_generated("/lie.bin", 11 * MIB, etag=f'"{hashlib.md5(b"other").hexdigest()}"')
    origin.fault("/lie.bin", server="AmazonS3")
    with pytest.raises(TransientFailure, match="md5"):
        make_backfiller(bucket, origin).backfill(message("/lie.bin"), FakeLambdaContext())
    assert keys(bucket) == []


# ---------------------------------------------------------------- unknown length, edges


@pytest.mark.parametrize(("size", "mode"), [(300_000, "single"), (12 * MIB + 5, "streamed")])
def test_chunked_body_of_unknown_length_is_copied(
    bucket: Any, origin: LabOrigin, size: int, mode: str
) -> None:
    origin.put_generated("/chunked.bin", size, seed=5)
    origin.fault("/chunked.bin", chunked=True)
    outcome = make_backfiller(bucket, origin).backfill(message("/chunked.bin"), FakeLambdaContext())
    assert (outcome.status, outcome.size) == ("copied", size)
    assert sha256(stored(bucket, "chunked.bin")) == origin.sha256("/chunked.bin")
    assert origin.counts("/chunked.bin").body_gets == 1


def test_chunked_body_growing_past_the_limit_is_abandoned(bucket: Any, origin: LabOrigin) -> None:
    # Given a body with no declared length that turns out larger than the limit
    origin.put_generated("/endless.bin", 16 * MIB)
    origin.fault("/endless.bin", chunked=True)
    worker = make_backfiller(bucket, origin, EDGEFILL_MAX_OBJECT_BYTES=str(7 * MIB))
    outcome = worker.backfill(message("/endless.bin"), FakeLambdaContext())
    # Then it is skipped as oversize once the limit is crossed, and the upload is aborted
    assert (outcome.status, outcome.reason) == ("skipped", "oversize")
    assert keys(bucket) == []


def test_truncated_chunked_body_is_transient(bucket: Any, origin: LabOrigin) -> None:
    origin.put_generated("/tc.bin", 12 * MIB)
    origin.fault("/tc.bin", chunked=True, reset_after=6 * MIB)
    with pytest.raises(TransientFailure):
        make_backfiller(bucket, origin).backfill(message("/tc.bin"), FakeLambdaContext())
    assert keys(bucket) == []


def test_origin_timeout_is_transient(bucket: Any, origin: LabOrigin) -> None:
    from shared.origin import OriginClient

    origin.put("/stall.txt", b"late")
    origin.fault("/stall.txt", latency=1.0)
    worker = make_backfiller(bucket, origin)
    worker.origin = OriginClient(origin.url, read_timeout=0.2)
    with pytest.raises(TransientFailure, match="origin"):
        worker.backfill(message("/stall.txt"), FakeLambdaContext())
    assert keys(bucket) == []


def test_redirect_loop_costs_one_request(bucket: Any, origin: LabOrigin) -> None:
    origin.fault("/loop", redirect="/loop")
    outcome = make_backfiller(bucket, origin).backfill(message("/loop"))
    assert (outcome.status, outcome.reason) == ("skipped", "redirect")
    assert origin.counts("/loop").other == 1


def test_empty_object_is_copied(bucket: Any, origin: LabOrigin) -> None:
    origin.put("/empty.txt", b"")
    assert make_backfiller(bucket, origin).backfill(message("/empty.txt")).status == "copied"
    assert stored(bucket, "empty.txt") == b""


def test_unsendable_prewarm_does_not_fail_the_copied_record(
    bucket: Any, origin: LabOrigin, sqs: Any, moto: str
) -> None:
    # Given a prewarm queue URL that names no queue
    origin.put("/p.txt", b"p")
    missing = f"{moto}/123456789012/no-such-queue"
    worker = make_backfiller(bucket, origin, sqs, EDGEFILL_PREWARM_QUEUE_URL=missing)
    # Then the copy still succeeds: a retry would find the object and never prewarm it
    assert worker.backfill(message("/p.txt"), FakeLambdaContext()).status == "copied"
    assert stored(bucket, "p.txt") == b"p"


def test_every_part_carries_the_crc32_of_its_bytes(
    bucket: Any, origin: LabOrigin, moto: str
) -> None:
    # moto stores but does not verify additional checksums, so the requests are inspected
    # on their way out: S3 verifies exactly this header against the bytes received.
    import boto3

    from shared.object_store import crc32_base64

    seen: list[tuple[str, str | None, str]] = []

    def inspect(request: Any, **_: Any) -> None:
        if request.method == "PUT" and "/_edgefill/" not in request.url:
            body = request.body
            if hasattr(body, "getvalue"):  # botocore wraps a bytes body in BytesIO
                body = body.getvalue()
            header = request.headers.get("x-amz-checksum-crc32")
            text = header.decode() if isinstance(header, bytes) else header
            seen.append((request.url, text, crc32_base64(body)))

    client = boto3.client("s3", region_name="us-east-1", endpoint_url=moto)
    client.meta.events.register("before-send.s3.PutObject", inspect)
    client.meta.events.register("before-send.s3.UploadPart", inspect)
    origin.put_generated("/parts.bin", 11 * MIB + 1)
    origin.put("/one.txt", b"single")
    worker = make_backfiller(client, origin)
    worker.backfill(message("/parts.bin"), FakeLambdaContext())
    worker.backfill(message("/one.txt"), FakeLambdaContext())
    assert len(seen) == 4  # three parts and one single PUT
    for _url, header, actual in seen:
        assert isinstance(header, str) and header == actual


def test_https_origin_is_verified_with_the_configured_ca_bundle(
    bucket: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    from edgefill.lab.tls import LabCA

    ca = LabCA(tmp_path)
    with LabOrigin(ssl_context=ca.server_context("127.0.0.1")) as secure:
        secure.put("/s.txt", b"over tls")
        # Without the lab CA the certificate is not trusted: a transient failure, no copy
        monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
        with pytest.raises(TransientFailure, match="origin"):
            make_backfiller(bucket, secure).backfill(message("/s.txt"), FakeLambdaContext())
        # With it (as in the lab and as with public CAs in production) the copy succeeds
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca.bundle_path))
        worker = make_backfiller(bucket, secure)
        assert secure.url.startswith("https://")
        assert worker.backfill(message("/s.txt"), FakeLambdaContext()).status == "copied"
    assert stored(bucket, "s.txt") == b"over tls"


def test_copy_near_the_invocation_deadline_is_abandoned_cleanly(
    bucket: Any, origin: LabOrigin
) -> None:
    # Given a slow multipart copy and an invocation with little time left
    origin.put_generated("/late.bin", 16 * MIB)
    origin.fault("/late.bin", bandwidth=4_000_000)
    worker = make_backfiller(bucket, origin)
    worker.deadline_reserve_seconds = 2.0
    context = FakeLambdaContext(timeout_seconds=3.0)  # no new part after 1 s
    # When the deadline passes mid-copy
    with pytest.raises(TransientFailure, match="deadline"):
        worker.backfill(message("/late.bin"), context)
    # Then the upload was aborted and the lease released before Lambda would kill it
    assert context.get_remaining_time_in_millis() > 0
    assert keys(bucket) == []


def test_redirect_carrying_credentials_is_refused(bucket: Any, origin: LabOrigin) -> None:
    # Following it would make the client send an Authorization header to the origin
    origin.put("/target.txt", b"t")
    origin.fault("/cred.txt", redirect=f"http://user:secret@{origin.host}/target.txt")
    outcome = make_backfiller(bucket, origin).backfill(message("/cred.txt"))
    assert (outcome.status, outcome.reason) == ("skipped", "redirect")
    assert origin.counts("/target.txt").requests == ()
    assert all(r.header("Authorization") is None for r in origin.all_requests())
