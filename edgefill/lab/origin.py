"""The lab's full origin: a threaded HTTP(S) server with ranges, validators and faults.

It stands in for "any HTTP server, often far away" behind CloudFront's origin group. Tests
and the demo put objects on it (bytes, files on disk, or generated content of any size),
slow it down (latency, a bandwidth cap per connection), make it misbehave per path (5xx,
resets, short bodies, wrong lengths, no range support, gzip bodies, redirects, unsafe
headers), and read back what it saw (request headers, GETs by kind, HEADs, bytes sent).

Memory: bodies are streamed in chunks of at most ``CHUNK`` bytes from memory, disk or a
generator; a generated or file-backed object of hundreds of MiB is never held whole.

    with LabOrigin() as origin:
        origin.put("/img/ä b.jpg", b"...", content_type="image/jpeg")
        origin.put_generated("/big.bin", 512 * 1024**2)
        origin.fault("/img/ä b.jpg", status=503, times=2)   # fail twice, then serve
        requests.get(origin.url + origin.uri("/img/ä b.jpg"))
        origin.counts("/img/ä b.jpg").full_gets
"""

from __future__ import annotations

import contextlib
import functools
import gzip as gzip_module
import hashlib
import mimetypes
import os
import random
import re
import socket
import ssl
import struct
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote, unquote, urlsplit

from edgefill.lab import origin_behaviours
from edgefill.lab.tls import TLSThreadingHTTPServer

# Largest slice of a body written to the socket at once (and held in memory per response).
CHUNK: Final = 64 * 1024
# Generated content repeats one random block, stamped with (seed, offset) every CHUNK
# bytes so no two chunks of an object are equal: a copy that swaps or repeats parts
# is caught by its digest.
_BLOCK_SIZE: Final = 1024 * 1024
_STAMP = struct.Struct(">QQ")
# The part size S3 clients commonly use; multipart-style ETags are computed with it.
_MULTIPART_ETAG_PART: Final = 8 * 1024 * 1024
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")
# As shared/keys.py writes a key's canonical URI: "+" is always %2B (S3 reads a raw "+" as
# a space), so a lab path's URI is one the backfill accepts.
_SAFE_IN_PATH: Final = "/-._~!$&'()*,;=:@"


# ---------------------------------------------------------------- bodies


class _Body:
    """Random-access bytes of a known size."""

    size: int

    def chunks(self, start: int, end: int) -> Iterator[bytes]:
        """Bytes ``[start, end)`` in pieces of at most ``CHUNK``."""
        raise NotImplementedError


class _BytesBody(_Body):
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.size = len(data)

    def chunks(self, start: int, end: int) -> Iterator[bytes]:
        view = memoryview(self.data)
        for offset in range(start, end, CHUNK):
            yield bytes(view[offset : min(offset + CHUNK, end)])


class _FileBody(_Body):
    def __init__(self, path: Path) -> None:
        self.path = path
        self.size = path.stat().st_size

    def chunks(self, start: int, end: int) -> Iterator[bytes]:
        with self.path.open("rb") as handle:
            handle.seek(start)
            remaining = end - start
            while remaining > 0:
                piece = handle.read(min(CHUNK, remaining))
                if not piece:
                    raise OSError(f"{self.path} shrank while being served")
                remaining -= len(piece)
                yield piece


@functools.lru_cache(maxsize=64)
def _random_block(seed: int) -> bytes:
    return random.Random(seed).randbytes(_BLOCK_SIZE)


class _GeneratedBody(_Body):
    """Deterministic pseudo-random content of any size, produced on the fly."""

    def __init__(self, size: int, seed: int) -> None:
        self.size = size
        self.seed = seed
        self._block = _random_block(seed)

    def _chunk_at(self, index: int) -> bytes:
        # Chunk ``index`` covers [index*CHUNK, (index+1)*CHUNK); its first 16 bytes name it.
        begin = (index * CHUNK) % _BLOCK_SIZE
        stamp = _STAMP.pack(self.seed, index)
        return stamp + self._block[begin + len(stamp) : begin + CHUNK]

    def chunks(self, start: int, end: int) -> Iterator[bytes]:
        offset = start
        while offset < end:
            index = offset // CHUNK
            piece = self._chunk_at(index)
            skip = offset - index * CHUNK
            take = min(CHUNK - skip, end - offset)
            yield piece[skip : skip + take]
            offset += take


def generated_bytes(size: int, seed: int = 0) -> Iterator[bytes]:
    """The content ``put_generated(path, size, seed)`` serves, chunk by chunk (for digests)."""
    return _GeneratedBody(size, seed).chunks(0, size)


# ---------------------------------------------------------------- objects and faults


@dataclass
class _Object:
    body: _Body
    headers: dict[str, str]
    etag_style: str | None
    last_modified: float
    _digests: dict[str, str] = field(default_factory=dict)
    _gzipped: bytes | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def digest(self, kind: str) -> str:
        """``md5``, ``sha256`` or ``multipart`` (S3-style md5-of-md5s), computed once, lazily."""
        with self._lock:
            if kind not in self._digests:
                self._digests[kind] = _digest(self.body, kind)
            return self._digests[kind]

    def gzipped(self) -> bytes:
        with self._lock:
            if self._gzipped is None:
                if self.body.size > 64 * 1024 * 1024:
                    raise ValueError("gzip faults are for objects up to 64 MiB")
                raw = b"".join(self.body.chunks(0, self.body.size))
                self._gzipped = gzip_module.compress(raw, mtime=0)
            return self._gzipped


def _digest(body: _Body, kind: str) -> str:
    if kind == "multipart":
        part_digests = []
        for start in range(0, max(body.size, 1), _MULTIPART_ETAG_PART):
            part = hashlib.md5()
            for piece in body.chunks(start, min(start + _MULTIPART_ETAG_PART, body.size)):
                part.update(piece)
            part_digests.append(part.digest())
        return f"{hashlib.md5(b''.join(part_digests)).hexdigest()}-{len(part_digests)}"
    hasher = hashlib.new(kind)
    for piece in body.chunks(0, body.size):
        hasher.update(piece)
    return hasher.hexdigest()


# How long ago content ``put`` without ``last_modified`` was last modified (a day).
DEFAULT_CONTENT_AGE: Final = 86_400.0


@dataclass(frozen=True)
class Fault:
    """How the origin misbehaves for one path; ``times`` None means until cleared.

    ``status``: answer with this status and a tiny body (500, 503, 404, 410, ...).
    ``reset_after``: send the headers and this many body bytes, then reset the connection (RST).
    ``short_by``: declare the full Content-Length, send this many bytes fewer, then close.
    ``length_delta``: declare Content-Length = real length + delta, send the real bytes, close.
    ``no_ranges``: no ``Accept-Ranges``, ``Range`` ignored (always 200 with the whole body).
    ``chunked``: ``Transfer-Encoding: chunked`` and no Content-Length (length unknown upfront);
      with ``reset_after``/``short_by`` the chunked stream ends without its last chunk.
    ``gzip``: ``"always"`` serves the gzip-compressed bytes with ``Content-Encoding: gzip``;
      ``"negotiate"`` does so only when the request's Accept-Encoding allows gzip.
    ``redirect``: answer ``redirect_status`` with this Location (a path on this origin, or an
      absolute URL naming another host).
    ``headers``: response headers added to (or replacing) the object's own.
    ``latency``: seconds before the status line; ``bandwidth``: bytes/s cap for the body.
    ``trickle``, ``server``, ``raw_headers``: see ``edgefill/lab/origin_behaviours.py``.
    """

    status: int | None = None
    reset_after: int | None = None
    short_by: int | None = None
    length_delta: int | None = None
    no_ranges: bool = False
    chunked: bool = False
    gzip: str | None = None
    redirect: str | None = None
    redirect_status: int = 302
    headers: Mapping[str, str] = field(default_factory=dict)
    latency: float = 0.0
    bandwidth: int | None = None
    times: int | None = None
    trickle: float | None = None  # seconds between two body bytes
    trickle_after: int = 0  # body bytes sent at full speed before the trickle
    server: str | None = None  # the Server header, instead of the lab's own
    raw_headers: tuple[tuple[bytes, bytes], ...] = ()


@dataclass(frozen=True)
class RequestSeen:
    """One request as the origin received it."""

    method: str
    path: str  # decoded, without the query
    query: str
    headers: tuple[tuple[str, str], ...]
    status: int
    at: float = 0.0  # when it arrived (time.time())

    def header(self, name: str) -> str | None:
        """The value of header ``name`` (case-insensitive), or None."""
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


@dataclass(frozen=True)
class PathCounts:
    """What the origin did for one path since the last ``reset_counts``."""

    full_gets: int = 0  # GETs answered 200 with a body
    ranged_gets: int = 0  # GETs answered 206
    heads: int = 0
    other: int = 0  # errors, redirects, 304s, 416s
    bytes_sent: int = 0  # body bytes written, all requests
    requests: tuple[RequestSeen, ...] = ()

    @property
    def body_gets(self) -> int:
        """GETs that transferred object bytes (full or ranged)."""
        return self.full_gets + self.ranged_gets


# ---------------------------------------------------------------- the server


class LabOrigin:
    """A full origin on ``host`` (default 127.0.0.1) and a free port; see the module doc."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        bandwidth: int | None = None,
        latency: float = 0.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._address = (host, port)
        self._ssl_context = ssl_context
        self.bandwidth = bandwidth  # bytes/s per connection, None = unlimited
        self.latency = latency  # seconds before every response
        self._objects: dict[str, _Object] = {}
        self._faults: dict[str, Fault] = {}
        self._counts: dict[str, _PathStats] = {}
        self._lock = threading.Lock()
        self._arrived: dict[str, int] = {}  # requests received per path, before any latency
        self._arrival = threading.Condition(self._lock)
        self._server: TLSThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle

    def start(self) -> LabOrigin:
        """Bind and serve in a background thread."""
        if self._server is not None:
            return self
        handler = type("_BoundHandler", (_OriginHandler,), {"origin": self})
        self._server = _OriginServer(self._address, handler, self._ssl_context)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"lab-origin-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the listening socket (idempotent)."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> LabOrigin:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the origin is not started")
        return int(self._server.server_address[1])

    @property
    def host(self) -> str:
        """``host:port`` as it appears in URLs."""
        return f"{self._address[0]}:{self.port}"

    @property
    def url(self) -> str:
        """``http(s)://host:port`` (no trailing slash)."""
        scheme = "https" if self._ssl_context is not None else "http"
        return f"{scheme}://{self.host}"

    @staticmethod
    def uri(path: str) -> str:
        """The percent-encoded URI of a decoded path (``/a b.jpg`` → ``/a%20b.jpg``)."""
        return quote(path, safe=_SAFE_IN_PATH)

    # -- content

    def put(
        self,
        path: str,
        data: bytes | str | os.PathLike[str],
        *,
        content_type: str | None = None,
        headers: Mapping[str, str] | None = None,
        etag: str | None = "md5",
        last_modified: float | None = None,
    ) -> None:
        """Serve ``data`` at decoded ``path``.

        ``data``: bytes, a str (UTF-8) or a path to a file, streamed from disk on each request.
        ``etag``: ``"md5"`` (quoted hex MD5), ``"multipart"`` (S3 multipart style,
        ``"<md5 of part md5s>-N"``), ``None`` (no ETag), or any other value used verbatim.
        ``headers``: further response headers (Cache-Control, Content-Disposition, ...).
        """
        if isinstance(data, str):
            body: _Body = _BytesBody(data.encode("utf-8"))
        elif isinstance(data, bytes | bytearray):
            body = _BytesBody(bytes(data))
        else:
            body = _FileBody(Path(data))
        self._store(path, body, content_type, headers, etag, last_modified)

    def put_generated(
        self,
        path: str,
        size: int,
        *,
        seed: int = 0,
        content_type: str | None = "application/octet-stream",
        headers: Mapping[str, str] | None = None,
        etag: str | None = "md5",
        last_modified: float | None = None,
    ) -> None:
        """Serve ``size`` deterministic pseudo-random bytes at ``path`` without storing them."""
        if size < 0:
            raise ValueError("size must be >= 0")
        body = _GeneratedBody(size, seed)
        self._store(path, body, content_type, headers, etag, last_modified)

    def put_directory(self, directory: os.PathLike[str], prefix: str = "/") -> list[str]:
        """Serve every file under ``directory`` at ``prefix`` + its relative path; returns paths."""
        root = Path(directory)
        paths = []
        for file in sorted(p for p in root.rglob("*") if p.is_file()):
            path = prefix.rstrip("/") + "/" + file.relative_to(root).as_posix()
            self.put(path, file)
            paths.append(path)
        return paths

    def delete(self, path: str) -> None:
        """Stop serving ``path`` (it answers 404 afterwards)."""
        with self._lock:
            self._objects.pop(path, None)

    def _store(
        self,
        path: str,
        body: _Body,
        content_type: str | None,
        headers: Mapping[str, str] | None,
        etag: str | None,
        last_modified: float | None,
    ) -> None:
        if not path.startswith("/"):
            raise ValueError(f"path must start with '/': {path!r}")
        merged = {
            "Content-Type": content_type
            or mimetypes.guess_type(path)[0]
            or "application/octet-stream"
        }
        merged.update(headers or {})
        obj = _Object(
            body=body,
            headers=merged,
            etag_style=etag,
            # Content put now was last modified a day ago by default, as real content
            # usually was: its heuristic lifetime (RFC 9111 §4.2.2, 10 % of that age) is
            # hours, so a lab sweep does not revalidate every copy of a scene each run.
            last_modified=(
                time.time() - DEFAULT_CONTENT_AGE if last_modified is None else last_modified
            ),
        )
        with self._lock:
            self._objects[path] = obj

    def size(self, path: str) -> int:
        """The stored length of ``path``."""
        return self._object(path).body.size

    def sha256(self, path: str) -> str:
        """Hex SHA-256 of the bytes stored at ``path`` (as served without gzip fault)."""
        return self._object(path).digest("sha256")

    def md5(self, path: str) -> str:
        """Hex MD5 of the bytes stored at ``path``."""
        return self._object(path).digest("md5")

    def etag(self, path: str) -> str | None:
        """The ETag header value served for ``path`` (quoted), or None."""
        return _etag_of(self._object(path))

    def read(self, path: str) -> bytes:
        """The whole stored body (for small objects in tests)."""
        body = self._object(path).body
        return b"".join(body.chunks(0, body.size))

    def _object(self, path: str) -> _Object:
        with self._lock:
            return self._objects[path]

    # -- faults

    def fault(self, path: str, **settings: Any) -> Fault:
        """Make ``path`` misbehave; keywords are ``Fault``'s fields. ``times=N`` applies the
        fault to the next N requests of that path, after which it clears itself."""
        new = Fault(**settings)
        if new.gzip not in (None, "always", "negotiate"):
            raise ValueError("gzip must be 'always' or 'negotiate'")
        with self._lock:
            self._faults[path] = new
        return new

    def clear_fault(self, path: str | None = None) -> None:
        """Remove the fault of ``path``, or every fault."""
        with self._lock:
            if path is None:
                self._faults.clear()
            else:
                self._faults.pop(path, None)

    def _take_fault(self, path: str) -> Fault | None:
        with self._lock:
            fault = self._faults.get(path)
            if fault is None or fault.times is None:
                return fault
            if fault.times <= 1:
                del self._faults[path]
            else:
                self._faults[path] = replace(fault, times=fault.times - 1)
            return fault

    # -- counters

    def counts(self, path: str) -> PathCounts:
        """Counters and requests seen for decoded ``path``."""
        with self._lock:
            stats = self._counts.get(path)
            return stats.snapshot() if stats else PathCounts()

    def all_requests(self) -> list[RequestSeen]:
        """Every request seen since the last ``reset_counts``, all paths."""
        with self._lock:
            seen = [r for stats in self._counts.values() for r in stats.requests]
        return seen

    def wait_for_request(self, path: str, count: int = 1, timeout: float = 10.0) -> None:
        """Block until ``count`` requests for ``path`` have arrived (counted on arrival,
        before latency or faults), so a test can act while a response is still pending."""
        with self._arrival:
            if not self._arrival.wait_for(lambda: self._arrived.get(path, 0) >= count, timeout):
                raise TimeoutError(f"{count} request(s) for {path!r} did not arrive in {timeout}s")

    def _arrive(self, path: str) -> None:
        with self._arrival:
            self._arrived[path] = self._arrived.get(path, 0) + 1
            self._arrival.notify_all()

    def reset_counts(self) -> None:
        """Forget every counter and request seen."""
        with self._lock:
            self._counts.clear()
            self._arrived.clear()

    def _record(self, seen: RequestSeen, kind: str) -> None:
        with self._lock:
            stats = self._counts.setdefault(seen.path, _PathStats())
            stats.kinds[kind] = stats.kinds.get(kind, 0) + 1
            stats.requests.append(seen)

    def _add_bytes(self, path: str, count: int) -> None:
        with self._lock:
            self._counts.setdefault(path, _PathStats()).bytes_sent += count


@dataclass
class _PathStats:
    kinds: dict[str, int] = field(default_factory=dict)
    bytes_sent: int = 0
    requests: list[RequestSeen] = field(default_factory=list)

    def snapshot(self) -> PathCounts:
        return PathCounts(
            full_gets=self.kinds.get("full", 0),
            ranged_gets=self.kinds.get("ranged", 0),
            heads=self.kinds.get("head", 0),
            other=self.kinds.get("other", 0),
            bytes_sent=self.bytes_sent,
            requests=tuple(self.requests),
        )


def _etag_of(obj: _Object) -> str | None:
    if obj.etag_style is None:
        return None
    if obj.etag_style in ("md5", "multipart"):
        return f'"{obj.digest(obj.etag_style)}"'
    return obj.etag_style


class _OriginServer(TLSThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that hang up (a worker abandoning a body, a reset test) are routine here.
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)


class _Pacer:
    """Token pacing: never more than ``rate`` bytes/s averaged from the first byte."""

    def __init__(self, rate: int | None) -> None:
        self.rate = rate
        self.sent = 0
        self.started = time.monotonic()

    def chunk_size(self) -> int:
        if not self.rate:
            return CHUNK
        # About 100 writes a second keeps the pace smooth without busy looping.
        return max(1024, min(CHUNK, self.rate // 100))

    def wait(self, count: int) -> None:
        self.sent += count
        if self.rate:
            ahead = self.sent / self.rate - (time.monotonic() - self.started)
            if ahead > 0:
                time.sleep(ahead)


class _OriginHandler(BaseHTTPRequestHandler):
    origin: LabOrigin  # set on the bound subclass
    protocol_version = "HTTP/1.1"
    server_version = "edgefill-lab-origin/1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        return  # tests and the demo read counters, not access logs

    def version_string(self) -> str:
        return getattr(self, "_server_name", None) or super().version_string()

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self._serve(head=False)

    def do_HEAD(self) -> None:  # noqa: N802
        self._serve(head=True)

    def _serve(self, head: bool) -> None:
        split = urlsplit(self.path)
        path = unquote(split.path, errors="replace")
        seen = _Seen(self, path, split.query)
        self.origin._arrive(path)
        fault = self.origin._take_fault(path)
        self._server_name = fault.server if fault else None
        latency = self.origin.latency + (fault.latency if fault else 0.0)
        if latency:
            time.sleep(latency)
        if fault and fault.status is not None:
            return self._plain(seen, fault.status, f"injected {fault.status}\n", head, fault)
        if fault and fault.redirect is not None:
            target, mark, query = fault.redirect.partition("?")
            location = fault.redirect
            if "://" not in target:
                location = self.origin.url + LabOrigin.uri(target) + mark + query
            return self._plain(
                seen, fault.redirect_status, "moved\n", head, fault, {"Location": location}
            )
        try:
            obj = self.origin._object(path)
        except KeyError:
            return self._plain(seen, 404, "not found\n", head, fault)
        self._serve_object(seen, obj, fault, head)

    def _serve_object(self, seen: _Seen, obj: _Object, fault: Fault | None, head: bool) -> None:
        body: _Body = obj.body
        headers = dict(obj.headers)
        etag = _etag_of(obj)
        gzip_mode = fault.gzip if fault else None
        accepts_gzip = "gzip" in (self.headers.get("Accept-Encoding") or "").lower()
        if gzip_mode == "always" or (gzip_mode == "negotiate" and accepts_gzip):
            compressed = obj.gzipped()
            body = _BytesBody(compressed)
            headers["Content-Encoding"] = "gzip"
            etag = f'"{hashlib.md5(compressed).hexdigest()}"'
        if gzip_mode == "negotiate":
            headers["Vary"] = "Accept-Encoding"
        if etag is not None:
            headers["ETag"] = etag
        headers["Last-Modified"] = formatdate(obj.last_modified, usegmt=True)
        ranges = not (fault and fault.no_ranges)
        if ranges:
            headers["Accept-Ranges"] = "bytes"
        if fault:
            headers.update(fault.headers)
        if origin_behaviours.not_modified(dict(self.headers), etag, obj.last_modified):
            return self._send(seen, 304, headers, None, 0, 0, head=head, fault=fault)
        start, end, status = 0, body.size, 200
        wanted = self.headers.get("Range") if ranges else None
        if wanted:
            parsed = _parse_range(wanted, body.size)
            if isinstance(parsed, str):
                headers["Content-Range"] = f"bytes */{body.size}"
                return self._plain(seen, 416, "range not satisfiable\n", head, fault, headers)
            if parsed is not None:
                start, end = parsed
                status = 206
                headers["Content-Range"] = f"bytes {start}-{end - 1}/{body.size}"
        self._send(seen, status, headers, body, start, end, head=head, fault=fault)

    def _plain(
        self,
        seen: _Seen,
        status: int,
        text: str,
        head: bool,
        fault: Fault | None,
        extra: Mapping[str, str] | None = None,
    ) -> None:
        headers = {"Content-Type": "text/plain; charset=utf-8", **(extra or {})}
        if fault:
            headers.update(fault.headers)
        data = _BytesBody(text.encode())
        # Errors are answered in full even under body faults: the fault is the status.
        self._send(seen, status, headers, data, 0, data.size, head=head, fault=None)

    def _send(
        self,
        seen: _Seen,
        status: int,
        headers: Mapping[str, str],
        body: _Body | None,
        start: int,
        end: int,
        *,
        head: bool,
        fault: Fault | None,
    ) -> None:
        length = end - start
        declared = length + (fault.length_delta if fault and fault.length_delta else 0)
        chunked = bool(fault and fault.chunked) and status in (200, 206)
        self.send_response(status)
        for name, value in headers.items():
            if name.lower() != "content-length":
                self.send_header(name, value)
        origin_behaviours.add_raw_headers(self, fault)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        elif status != 304 and not origin_behaviours.frames_itself(fault):
            self.send_header("Content-Length", str(max(declared, 0)))
        if status not in (200, 206):
            kind = "other"
        else:
            kind = "head" if head else ("full" if status == 200 else "ranged")
        # Recorded before the headers leave: a client that has its answer finds it counted.
        self.origin._record(seen.finish(status), kind)
        self.end_headers()
        if head or body is None:
            return
        limit = length
        if fault and fault.reset_after is not None:
            limit = min(limit, fault.reset_after)
        if fault and fault.short_by is not None:
            limit = max(0, length - fault.short_by)
        sent = self._write_body(seen.path, body, start, start + limit, fault, chunked)
        if fault and fault.reset_after is not None and sent >= limit and limit < length:
            self._reset_connection()
        elif chunked and sent == length:
            with contextlib.suppress(OSError):
                self.wfile.write(b"0\r\n\r\n")
        elif chunked or sent < declared or origin_behaviours.ends_by_closing(fault):
            # The client waits for bytes that never come: closing ends its read early.
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_WR)

    def _write_body(
        self, path: str, body: _Body, start: int, end: int, fault: Fault | None, chunked: bool
    ) -> int:
        if fault and fault.trickle:
            pieces = body.chunks(start, end)
            count = functools.partial(self.origin._add_bytes, path)
            return origin_behaviours.trickle(
                self.wfile, pieces, fault.trickle, count, after=fault.trickle_after, chunked=chunked
            )
        pacer = _Pacer(fault.bandwidth if fault and fault.bandwidth else self.origin.bandwidth)
        step = pacer.chunk_size()
        sent = 0
        try:
            for offset in range(start, end, CHUNK):
                for piece in body.chunks(offset, min(offset + CHUNK, end)):
                    for cut in range(0, len(piece), step):
                        part = piece[cut : cut + step]
                        # Counted before the write: a client that has read every byte
                        # must find every byte counted.
                        self.origin._add_bytes(path, len(part))
                        try:
                            if chunked:
                                self.wfile.write(b"%x\r\n" % len(part) + part + b"\r\n")
                            else:
                                self.wfile.write(part)
                        except OSError:
                            self.origin._add_bytes(path, -len(part))
                            raise
                        sent += len(part)
                        pacer.wait(len(part))
        except OSError:
            self.close_connection = True  # the client went away; nothing more to say
        return sent

    def _reset_connection(self) -> None:
        # SO_LINGER with a zero timeout turns close() into a TCP RST: the client sees
        # "connection reset by peer" mid-body, as on a flaky long-haul path.
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.wfile.flush()
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()


class _Seen:
    """Collects one request's facts until its status is known."""

    def __init__(self, handler: BaseHTTPRequestHandler, path: str, query: str) -> None:
        self.method = handler.command
        self.path = path
        self.query = query
        self.headers = tuple((k, v) for k, v in handler.headers.items())
        self.at = time.time()

    def finish(self, status: int) -> RequestSeen:
        return RequestSeen(self.method, self.path, self.query, self.headers, status, self.at)


def _parse_range(value: str, size: int) -> tuple[int, int] | str | None:
    """``(start, end)`` half-open for one satisfiable range, ``"unsatisfiable"``, or None
    when the header is not a single byte range (then the whole body is served, as RFC 9110
    allows)."""
    match = _RANGE.fullmatch(value.strip())
    if not match or (not match.group(1) and not match.group(2)):
        return None
    first, last = match.group(1), match.group(2)
    if not first:  # suffix range: the last N bytes
        count = int(last)
        if count == 0:
            return "unsatisfiable"
        return max(0, size - count), size
    start = int(first)
    end = size if not last else min(int(last) + 1, size)
    if last and int(last) < start:
        return None
    if start >= size:
        return "unsatisfiable"
    return start, end
