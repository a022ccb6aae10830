"""The origin adapter against the lab origin: redirects returned, never followed; the
only headers a caller may add; error statuses classified."""

from __future__ import annotations

import pytest

from edgefill.lab.origin import LabOrigin
from shared.origin import OriginClient, OriginError


def test_a_redirect_is_returned_not_followed(origin: LabOrigin) -> None:
    origin.put("/target.txt", b"t")
    origin.fault("/old.txt", redirect="/target.txt", redirect_status=301)
    response = OriginClient(origin.url).get(origin.url + "/old.txt")
    try:
        assert response.status == 301
        assert response.headers["Location"].endswith("/target.txt")
    finally:
        response.close()
    assert origin.counts("/target.txt").requests == ()


def test_a_conditional_get_may_answer_304(origin: LabOrigin) -> None:
    origin.put("/c.txt", b"c", etag='"v1"')
    client = OriginClient(origin.url)
    response = client.get(origin.url + "/c.txt", conditional={"If-None-Match": '"v1"'})
    assert response.status == 304
    response.close()
    changed = client.get(origin.url + "/c.txt", conditional={"If-None-Match": '"v0"'})
    assert changed.status == 200 and changed.read(10) == b"c"
    changed.close()


def test_a_range_may_answer_206(origin: LabOrigin) -> None:
    origin.put("/r.txt", b"0123456789", etag='"v1"')
    response = OriginClient(origin.url).get(
        origin.url + "/r.txt", None, {"Range": "bytes=2-4", "If-Range": '"v1"'}
    )
    assert response.status == 206 and response.read(10) == b"234"
    response.close()


def test_no_other_header_can_be_added(origin: LabOrigin) -> None:
    with pytest.raises(ValueError, match="may be added"):
        OriginClient(origin.url).get(origin.url + "/x", conditional={"Cookie": "a=b"})
    assert origin.all_requests() == []


@pytest.mark.parametrize(
    ("status", "permanent"), [(404, True), (410, True), (403, True), (429, False), (503, False)]
)
def test_error_statuses_are_classified(origin: LabOrigin, status: int, permanent: bool) -> None:
    origin.fault("/e.txt", status=status)
    with pytest.raises(OriginError) as error:
        OriginClient(origin.url).get(origin.url + "/e.txt")
    assert (error.value.status, error.value.permanent, error.value.kind) == (
        status,
        permanent,
        "origin",
    )
