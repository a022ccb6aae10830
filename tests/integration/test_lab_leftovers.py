"""The lab's check that nothing is left listening after it stopped."""

from __future__ import annotations

import socket

from edgefill.lab.lab import still_listening


def test_a_server_still_listening_is_named() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        assert still_listening([("127.0.0.1", port)]) == [
            f"a server still listening on 127.0.0.1:{port}"
        ]
    assert still_listening([("127.0.0.1", port)]) == []


def test_a_closed_port_reused_by_an_outgoing_connection_is_not_a_leftover() -> None:
    # Given a lab server's port, closed, then taken by some process's outgoing connection
    # as its local end (what a busy machine does with a free port)
    with socket.create_server(("127.0.0.1", 0)) as other, socket.socket() as client:
        client.bind(("127.0.0.1", 0))
        port = client.getsockname()[1]
        client.connect(other.getsockname())
        # Then the check does not mistake it for the lab's server
        assert still_listening([("127.0.0.1", port)]) == []
