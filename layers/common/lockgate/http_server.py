"""uvicorn's httptools protocol, with a response's head and its first body bytes sent together.

uvicorn writes the status line and headers as soon as the app starts its response, and the body
in a second write: two packets, and two wake-ups for the client, for every buffered answer
(aiohttp's server, for one, sends them together). Here the head is held until the body follows,
which for a buffered response is in the same step of the loop, and is sent on the loop's next
turn at the latest, so a stream that waits for its first chunk still shows its headers.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class _HeldHead:
    """The connection's transport, holding back a response head until more bytes follow."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._head: bytes | None = None

    def write(self, data: bytes) -> None:
        if self._head is not None:
            data = self._head + data
            self._head = None
        elif data.startswith(b"HTTP/1.1 ") and data.endswith(b"\r\n\r\n"):
            self._head = data
            self._loop.call_soon(self.flush)
            return
        self._transport.write(data)

    def flush(self) -> None:
        if self._head is not None:
            head, self._head = self._head, None
            if not self._transport.is_closing():
                self._transport.write(head)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class HeadWithBodyProtocol(HttpToolsProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(_HeldHead(transport, self.loop))  # type: ignore[arg-type]
