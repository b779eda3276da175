"""RequestContextGuard: who may hand the app an API Gateway identity.

Unit level, on the ASGI scope (a client's address is what uvicorn and Mangum put there). The
end-to-end refusals (401 in the OpenAI envelope) through Mangum and through the forwarding the
Web Adapter does run from the built artifacts in tests/artifacts.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from lockgate.tenants.auth import RequestContextGuard

FORGED = json.dumps({"identity": {"apiKeyId": "key-globex"}})


async def echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers with the request-context header it was given, or null."""
    headers = dict(scope["headers"])
    body = json.dumps(headers.get(b"x-amzn-request-context", b"").decode() or None).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


async def seen(transport: str, peer: str) -> str | None:
    guard = RequestContextGuard(echo, transport=transport)  # type: ignore[arg-type]
    asgi = httpx.ASGITransport(app=guard, client=(peer, 41000))
    async with httpx.AsyncClient(transport=asgi, base_url="http://app") as client:
        response = await client.get("/v1/models", headers={"x-amzn-request-context": FORGED})
    value: str | None = response.json()
    return value


async def test_the_adapters_loopback_connection_keeps_the_header() -> None:
    assert await seen("web-adapter", "127.0.0.1") == FORGED
    assert await seen("web-adapter", "::1") == FORGED


@pytest.mark.parametrize("peer", ["203.0.113.9", "10.0.0.7", "testclient"])
async def test_any_other_peer_of_the_web_app_loses_it(peer: str) -> None:
    assert await seen("web-adapter", peer) is None


@pytest.mark.parametrize("peer", ["127.0.0.1", "203.0.113.9"])
async def test_behind_mangum_the_header_is_always_dropped(peer: str) -> None:
    """The identity is the Lambda event's; a header can only be the client's."""
    assert await seen("lambda-event", peer) is None
