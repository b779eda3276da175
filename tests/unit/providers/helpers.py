"""What the provider adapter tests share: a declared tool and a way to hold a response open."""

from __future__ import annotations

import asyncio
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


async def until_client_leaves(request: web.Request, disconnected: asyncio.Event) -> None:
    """Holds a response open until the client drops the connection (at most 5 s), then sets
    `disconnected`."""
    for _ in range(500):
        if request.transport is None or request.transport.is_closing():
            disconnected.set()
            return
        await asyncio.sleep(0.01)
