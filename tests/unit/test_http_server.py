"""The server protocol `lockgate serve` and the orchestrate Lambda run: uvicorn's own, fed a
request, writing to a transport that records each write (one write is one packet on the wire)."""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn
from lockgate.http_server import HeadWithBodyProtocol
from uvicorn.server import ServerState

BODY = b'{"answer": 42}'


class RecordingTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 5000), "sockname": ("127.0.0.1", 8000)}.get(name, default)


async def serve_once(app: Any) -> RecordingTransport:
    config = uvicorn.Config(app, log_config=None, lifespan="off")
    protocol = HeadWithBodyProtocol(config, ServerState(), {}, asyncio.get_running_loop())
    transport = RecordingTransport()
    protocol.connection_made(transport)
    protocol.data_received(b"GET / HTTP/1.1\r\nhost: example\r\n\r\n")
    await asyncio.sleep(0.2)
    return transport


async def test_a_buffered_response_goes_out_in_one_write() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        headers = [(b"content-type", b"application/json"), (b"content-length", b"14")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": BODY})

    transport = await serve_once(app)
    assert len(transport.writes) == 1
    assert transport.writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert transport.writes[0].endswith(b"\r\n\r\n" + BODY)


async def test_a_stream_shows_its_head_before_its_first_chunk_arrives() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        headers = [(b"content-type", b"text/event-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await asyncio.sleep(0.05)  # the upstream's first token is late
        await send({"type": "http.response.body", "body": b"data: 1\n\n", "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    transport = await serve_once(app)
    head, *chunks = transport.writes
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and head.endswith(b"\r\n\r\n")
    assert b"".join(chunks) == b"9\r\ndata: 1\n\n\r\n0\r\n\r\n"
