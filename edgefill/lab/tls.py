"""The lab's certificate authority and a threaded HTTPS server built on it.

The CA is made fresh (trustme) for each lab; clients trust it through
``REQUESTS_CA_BUNDLE`` = ``LabCA.bundle_path``, exactly as production clients trust the
public CAs, so TLS verification stays on everywhere.
"""

from __future__ import annotations

import socket
import ssl
import tempfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import trustme


class LabCA:
    """A throw-away CA; ``server_context`` issues certificates for the names given."""

    def __init__(self, directory: Path | None = None) -> None:
        self._ca = trustme.CA(organization_name="edgefill lab")
        self._dir = Path(directory or tempfile.mkdtemp(prefix="edgefill-ca-"))
        self._dir.mkdir(parents=True, exist_ok=True)
        self.bundle_path = self._dir / "lab-ca.pem"
        self._ca.cert_pem.write_to_path(str(self.bundle_path))

    def server_context(
        self, *hostnames: str, alpn: tuple[str, ...] = ("h2", "http/1.1")
    ) -> ssl.SSLContext:
        """A TLS server context whose certificate covers ``hostnames`` (DNS names, IPs, ``*.x``).

        ALPN offers ``alpn``: by default HTTP/2 and HTTP/1.1, as CloudFront does
        (``TLSThreadingHTTPServer`` serves either); ``("http/1.1",)`` makes an edge
        without HTTP/2."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.set_alpn_protocols(list(alpn))
        self._ca.issue_cert(*hostnames).configure_cert(context)
        return context


class TLSThreadingHTTPServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer that speaks TLS; the handshake runs in the connection's own
    thread, so one slow or broken client cannot stall ``accept`` for everyone else."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        context: ssl.SSLContext | None,
    ) -> None:
        self.ssl_context = context  # None serves plain HTTP (EDGEFILL_PROTOCOL=http)
        super().__init__(address, handler)

    def finish_request(self, request: socket.socket, client_address: tuple[str, int]) -> None:  # type: ignore[override]
        # http.server writes the headers and the body in separate sends; with Nagle on, the
        # body of a small keep-alive response waits for the client's delayed ACK (~40 ms).
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.ssl_context is not None:
            try:
                request = self.ssl_context.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                return  # a client that fails the handshake (wrong SNI, no trust) is its own problem
            if request.selected_alpn_protocol() == "h2":
                self.serve_http2(request, client_address)
                return
        super().finish_request(request, client_address)

    def serve_http2(self, request: ssl.SSLSocket, client_address: tuple[str, int]) -> None:
        """Serve a connection whose ALPN chose ``h2``: each stream answered by the same
        handler class as HTTP/1.1 (``edgefill/lab/h2_server.py``)."""
        from edgefill.lab.h2_server import serve_h2

        serve_h2(request, client_address, self, self.RequestHandlerClass)  # type: ignore[arg-type]
