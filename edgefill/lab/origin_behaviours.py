"""Lab origin behaviours beyond faults of status and framing: conditional answers,
trickling bodies, the origin's identity (``Server``) and raw header bytes.

``edgefill/lab/origin.py`` calls these from its handler; the switches live on its
``Fault`` (``trickle``, ``server``, ``raw_headers``) so a test sets them the usual way:

    origin.fault("/slow.bin", trickle=2.0)                       # one byte every 2 s
    origin.fault("/slow.bin", trickle=2.0, trickle_after=6 << 20)  # fast, then 1 B / 2 s
    origin.fault("/s3.bin", server="AmazonS3", headers={"x-amz-request-id": "R1"})
    origin.fault("/odd.bin", raw_headers=((b"Content-Length", b"\\xb2"),))
    # and, for any object: If-None-Match / If-Modified-Since answer 304 when they match
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Mapping
from email.utils import parsedate_to_datetime
from typing import Any, Protocol


class _Writable(Protocol):
    def write(self, data: bytes, /) -> Any: ...

    def flush(self) -> Any: ...


def not_modified(request: Mapping[str, str], etag: str | None, last_modified: float) -> bool:
    """True when a conditional GET may be answered 304 (RFC 9110 §13.1.2, §13.1.3).

    ``If-None-Match`` (a list of entity tags or ``*``, compared weakly) decides when
    present; only without it is ``If-Modified-Since`` evaluated, to the second."""
    if_none_match = request.get("If-None-Match")
    if if_none_match is not None:
        if etag is None:
            return False
        wanted = [tag.strip() for tag in if_none_match.split(",")]
        return "*" in wanted or _weak(etag) in {_weak(tag) for tag in wanted}
    since = request.get("If-Modified-Since")
    if since is None:
        return False
    try:
        when = parsedate_to_datetime(since)
    except (TypeError, ValueError, IndexError, OverflowError):
        return False  # an invalid date is ignored, as RFC 9110 says
    if when.tzinfo is None:
        return False
    return int(last_modified) <= when.timestamp()


def _weak(tag: str) -> str:
    return tag[2:] if tag.startswith("W/") else tag


def trickle(
    wfile: _Writable,
    pieces: Iterator[bytes],
    interval: float,
    on_bytes: Callable[[int], None],
    *,
    after: int = 0,
    chunked: bool = False,
) -> int:
    """Write the first ``after`` body bytes at once, then the rest one byte at a time,
    ``interval`` seconds apart; returns the bytes sent.

    A client that gives up (a worker whose deadline passed) makes a later write fail,
    which ends the trickle."""
    sent = 0
    with contextlib.suppress(OSError):
        for piece in pieces:
            view = memoryview(piece)
            while view:
                fast = max(0, after - sent)
                take = min(len(view), fast) if fast else 1
                data = bytes(view[:take])
                view = view[take:]
                on_bytes(take)
                wfile.write(b"%x\r\n" % take + data + b"\r\n" if chunked else data)
                sent += take
                if not fast:
                    wfile.flush()
                    time.sleep(interval)
    return sent


def add_raw_headers(handler: Any, fault: Any) -> None:
    """Queue the fault's raw header lines on ``handler`` (a BaseHTTPRequestHandler after
    ``send_response``), byte for byte: values ``send_header`` would refuse or re-encode
    (non-ASCII digits, odd separators, repeated names)."""
    raw: tuple[tuple[bytes, bytes], ...] = getattr(fault, "raw_headers", ()) if fault else ()
    handler._headers_buffer.extend(name + b": " + value + b"\r\n" for name, value in raw)


def ends_by_closing(fault: Any) -> bool:
    """True when the body's end must be signalled by closing the connection: a length
    that lies (``length_delta``) or one the raw headers set."""
    return bool(fault and (fault.length_delta or frames_itself(fault)))


def frames_itself(fault: Any) -> bool:
    """True when the fault's raw headers carry their own Content-Length: the lab then
    sends none of its own and ends the body by closing the connection."""
    raw: tuple[tuple[bytes, bytes], ...] = getattr(fault, "raw_headers", ()) if fault else ()
    return any(name.lower() == b"content-length" for name, _ in raw)
