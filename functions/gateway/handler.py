"""Lambda entry for the buffered routes: API Gateway REST proxy events into the FastAPI app.

Cold start: importing this module does nothing but define the handler; the app, its stores,
provider clients and the embedding model are built by the first invocation. A failure there is
then one request's 5xx with a log line, not an init error that Lambda retries by restarting the
container, and the import stays well under the init phase's budget.

The app and its lifespan start once per execution environment. Mangum's own lifespan mode would
run startup and shutdown around every invocation, which would close the app's stores and provider
clients after the first request of a warm container; so Mangum runs with lifespan off, and the
lifespan state the app yielded is handed to each request as uvicorn would.

Tenant identity is the API key id in the event's request context, never a header: the
RequestContextGuard drops an `x-amzn-request-context` header, which here can only come from the
client.
"""

from __future__ import annotations

import atexit
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mangum import Mangum

_adapter: Mangum | None = None
_drain: Callable[[], None] | None = None


def _build() -> tuple[Mangum, Callable[[], None]]:
    from lockgate.app import create_app
    from lockgate.tenants.auth import RequestContextGuard
    from mangum import Mangum
    from mangum.protocols import LifespanCycle
    from mangum.types import Receive, Scope, Send

    app = create_app()
    guarded = RequestContextGuard(app, transport="lambda-event")

    async def with_lifespan_state(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope["state"] = lifespan.lifespan_state.copy()
        await guarded(scope, receive, send)

    adapter = Mangum(with_lifespan_state, lifespan="off")  # also sets up the event loop
    lifespan = LifespanCycle(app, "auto")
    lifespan.__enter__()

    def shutdown() -> None:
        # Lambda usually freezes and discards the process without this; a local run exits
        # cleanly with it.
        if not lifespan.loop.is_closed():
            lifespan.__exit__(None, None, None)

    def drain() -> None:
        lifespan.loop.run_until_complete(app.state.container.drain())

    atexit.register(shutdown)
    return adapter, drain


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    global _adapter, _drain
    if _adapter is None or _drain is None:
        _adapter, _drain = _build()
    try:
        return _adapter(event, context)
    finally:
        # The usage of an answer is recorded after it is sent; Lambda may freeze the
        # environment as soon as the handler returns, so it is recorded first.
        _drain()
