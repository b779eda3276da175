"""What the provider adapter tests share: a local aiohttp server and a declared tool."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web

TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]


@asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[str]:
    """The app on a free port of 127.0.0.1, on the running loop; yields its base URL."""
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def until_client_leaves(request: web.Request, disconnected: asyncio.Event) -> None:
    """Holds a response open until the client drops the connection (at most 5 s), then sets
    `disconnected`."""
    for _ in range(500):
        if request.transport is None or request.transport.is_closing():
            disconnected.set()
            return
        await asyncio.sleep(0.01)
