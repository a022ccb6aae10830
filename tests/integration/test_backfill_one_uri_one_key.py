"""The backfill against moto and the lab origin: one URI, one key, one origin resource.

A URI that S3 and the origin could read as different resources is skipped with reason
``non_canonical`` before any request; an accepted one is fetched at exactly the path of
the key it is written under."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from edgefill.lab.origin import LabOrigin
from shared.origin import OriginClient, OriginResponse
from tests.integration.backfill_world import (
    keys,
    make_backfiller,
    message,
    stored,
)


class RecordingOrigin(OriginClient):
    """The real client, remembering every URL it was asked to GET."""

    def __init__(self, origin_url: str) -> None:
        super().__init__(origin_url)
        self.urls: list[str] = []

    def get(self, url: str, *args: Any, **kwargs: Any) -> OriginResponse:
        self.urls.append(url)
        return super().get(url, *args, **kwargs)


@pytest.mark.parametrize(
    "uri", ["/img/a+b.jpg", "/img/a%2Fb.jpg", "/img/a%2fb.jpg", "/img/a%5Cb.jpg", "/img/a%3Bb.jpg"]
)
def test_non_canonical_uri_is_skipped_before_any_request(
    bucket: Any,
    origin: LabOrigin,
    uri: str,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given an origin serving every reading of the URI
    for path in ("/img/a+b.jpg", "/img/a b.jpg", "/img/a/b.jpg", "/img/a\\b.jpg", "/img/a;b.jpg"):
        origin.put(path, b"bytes of " + path.encode())
    capsys.readouterr()
    # When its failover is backfilled
    outcome = make_backfiller(bucket, origin).backfill(message(uri))
    # Then it is skipped as non-canonical (permanent), and nothing is fetched or stored
    assert (outcome.status, outcome.reason) == ("skipped", "non_canonical")
    assert origin.all_requests() == [] and keys(bucket) == []
    # And the log line and the Skipped metric both carry the reason
    skips = [r for r in caplog.records if r.getMessage() == "backfill skipped"]
    assert [getattr(r, "reason", None) for r in skips] == ["non_canonical"]
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "{" in line]
    assert [line["reason"] for line in emitted if "Skipped" in line] == ["non_canonical"]


def test_escaped_plus_is_the_key_with_a_plus_fetched_at_that_very_path(
    bucket: Any, origin: LabOrigin
) -> None:
    # Given an object whose name holds a plus, and a worker whose origin has a path prefix
    origin.put("/base/img/a+b.jpg", b"plus")
    origin.put("/base/img/a b.jpg", b"space")
    worker = make_backfiller(bucket, origin, EDGEFILL_ORIGIN_URL=origin.url + "/base")
    worker.origin = recording = RecordingOrigin(origin.url + "/base")
    # When the viewer's %2B URI is backfilled
    outcome = worker.backfill(message("/img/a%2Bb.jpg"))
    # Then the key holds the plus, the origin was asked for that very path, and the bytes
    # are the plus object's
    assert (outcome.status, outcome.key) == ("copied", "img/a+b.jpg")
    assert stored(bucket, "img/a+b.jpg") == b"plus"
    [url] = recording.urls
    prepared = requests.Request("GET", url).prepare()
    assert prepared.url is not None
    assert urlsplit(prepared.url).path == "/base/img/a%2Bb.jpg"
    assert [request.path for request in origin.all_requests()] == ["/base/img/a+b.jpg"]
