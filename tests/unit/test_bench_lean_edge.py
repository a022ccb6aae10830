"""The prewarm bench's HTTP/2 edge (bench/bench_prewarm.py ``LeanHttp2Edge``) speaks valid
HTTP/2 to h2's own client state machine, the one the engine uses: the bench's figures are
only as good as its edges' answers, and the edge is frames joined by hand.

Bytes go between the two state machines directly (no sockets): what the client sends is
fed to the edge in pieces, as TCP may cut it, and the edge's answers are fed back."""

from __future__ import annotations

import h2.config
import h2.connection
import h2.events
import pytest

from bench.bench_prewarm import BODY, LeanHttp2Edge


def client() -> h2.connection.H2Connection:
    connection = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    connection.initiate_connection()
    return connection


def request(connection: h2.connection.H2Connection, path: str) -> int:
    stream = connection.get_next_available_stream_id()
    headers = [(":method", "GET"), (":scheme", "https"), (":authority", "cdn.example")]
    connection.send_headers(stream, [*headers, (":path", path)], end_stream=True)
    return stream


def feed_in_pieces(edge: LeanHttp2Edge, data: bytes, size: int) -> tuple[list[int], bytes]:
    streams: list[int] = []
    replies = b""
    for at in range(0, len(data), size):
        got, reply, done = edge.receive(data[at : at + size])
        assert not done
        streams += got
        replies += reply
    return streams, replies


@pytest.mark.parametrize("piece", [7, 9, 100, 1 << 20], ids=lambda n: f"{n}-byte reads")
def test_every_request_of_a_flight_gets_a_complete_valid_answer(piece: int) -> None:
    # Given h2's client with three requests after its preface and SETTINGS
    h2_client = client()
    sent = [request(h2_client, f"/file-{n}.js") for n in range(3)]
    edge = LeanHttp2Edge("NRT20-P2")
    events = h2_client.receive_data(edge.preface())
    assert any(isinstance(e, h2.events.RemoteSettingsChanged) for e in events)
    assert h2_client.remote_settings.max_concurrent_streams == LeanHttp2Edge.MAX_STREAMS
    # When the edge reads the client's bytes however TCP cut them, and answers the flight
    streams, acks = feed_in_pieces(edge, h2_client.data_to_send(), piece)
    assert streams == sent
    events = h2_client.receive_data(acks + edge.answers(streams))
    # Then each stream has its 200, the POP's headers and the whole body, and ends
    by_stream: dict[int, list[h2.events.Event]] = {}
    for event in events:
        if hasattr(event, "stream_id"):
            by_stream.setdefault(event.stream_id, []).append(event)
    assert any(isinstance(e, h2.events.SettingsAcknowledged) for e in events)
    for stream in sent:
        response, data, ended = by_stream[stream]
        assert isinstance(response, h2.events.ResponseReceived)
        assert dict(response.headers) == {
            b":status": b"200",
            b"content-length": str(len(BODY)).encode(),
            b"x-cache": b"Miss from cloudfront",
            b"x-amz-cf-pop": b"NRT20-P2",
        }
        assert isinstance(data, h2.events.DataReceived) and data.data == BODY
        assert isinstance(ended, h2.events.StreamEnded)


def test_ping_is_acknowledged_and_goaway_ends_the_connection() -> None:
    h2_client = client()
    edge = LeanHttp2Edge("IAD89-C1")
    edge.receive(h2_client.data_to_send())
    h2_client.receive_data(edge.preface())
    h2_client.ping(b"12345678")
    _, reply, done = edge.receive(h2_client.data_to_send())
    events = h2_client.receive_data(reply)
    assert not done
    assert [e.ping_data for e in events if isinstance(e, h2.events.PingAckReceived)] == [
        b"12345678"
    ]
    h2_client.close_connection()
    assert edge.receive(h2_client.data_to_send())[2] is True


def test_not_http2_and_a_window_too_small_fail_loudly() -> None:
    # A client that is not speaking HTTP/2 is refused
    with pytest.raises(OSError, match="preface"):
        LeanHttp2Edge("IAD89-C1").receive(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    # And answers beyond the client's connection window (65 535 bytes until it grows it)
    # are never sent: the bench stops instead
    h2_client = client()
    edge = LeanHttp2Edge("IAD89-C1")
    streams = [request(h2_client, f"/big-{n}") for n in range(7)]
    assert edge.receive(h2_client.data_to_send())[0] == streams
    with pytest.raises(OSError, match="flow-control window"):
        edge.answers(streams)
