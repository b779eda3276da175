"""The Python floor: a proxy that forwards every request to one upstream and does nothing else.

Whatever Lockgate adds on top of this figure is the price of its own work (auth, policy,
routing, accounting), not of being a Python proxy. aiohttp on both sides with uvloop is the
cheapest stack Python offers for this, so the floor is not flattered by a slow framework.

    python bench/passthrough.py --port 9000 --upstream http://127.0.0.1:8000
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator, Mapping

import uvloop
from aiohttp import ClientSession, TCPConnector, web

HOP_BY_HOP = frozenset({"host", "connection", "keep-alive", "content-length", "transfer-encoding"})
UPSTREAM = web.AppKey("upstream", str)
SESSION = web.AppKey("session", ClientSession)


def _headers(items: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in items.items() if k.lower() not in HOP_BY_HOP}


async def forward(request: web.Request) -> web.StreamResponse:
    """Send the request upstream as is; stream event streams chunk by chunk, buffer the rest."""
    url = request.app[UPSTREAM] + request.path_qs
    body = await request.read()
    session = request.app[SESSION]
    async with session.request(
        request.method, url, headers=_headers(request.headers), data=body
    ) as upstream:
        headers = _headers(upstream.headers)
        if upstream.content_type != "text/event-stream":
            return web.Response(status=upstream.status, body=await upstream.read(), headers=headers)
        response = web.StreamResponse(status=upstream.status, headers=headers)
        await response.prepare(request)
        async for chunk in upstream.content.iter_any():
            await response.write(chunk)
        await response.write_eof()
        return response


async def _session(app: web.Application) -> AsyncIterator[None]:
    connector = TCPConnector(limit=0, keepalive_timeout=60)
    async with ClientSession(connector=connector, auto_decompress=False) as session:
        app[SESSION] = session
        yield


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="e.g. http://127.0.0.1:8000")
    args = parser.parse_args()
    app = web.Application()
    app[UPSTREAM] = args.upstream.rstrip("/")
    app.cleanup_ctx.append(_session)
    app.router.add_route("*", "/{tail:.*}", forward)
    web.run_app(
        app,
        host="127.0.0.1",
        port=args.port,
        access_log=None,
        print=None,
        loop=uvloop.new_event_loop(),
    )


if __name__ == "__main__":
    main()
