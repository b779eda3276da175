"""Lambda entry for the buffered routes: API Gateway REST proxy events into the FastAPI app.

The app and its lifespan start once per execution environment, at cold start. Mangum's own
lifespan mode would run startup and shutdown around every invocation, which would close the app's
stores and provider clients after the first request of a warm container; so Mangum runs with
lifespan off, and the lifespan state the app yielded is handed to each request as uvicorn would.
"""

from __future__ import annotations

import atexit
from typing import Any

from lockgate.app import create_app
from mangum import Mangum
from mangum.protocols import LifespanCycle
from mangum.types import Receive, Scope, Send


def _build() -> Mangum:
    app = create_app()

    async def with_lifespan_state(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope["state"] = lifespan.lifespan_state.copy()
        await app(scope, receive, send)

    adapter = Mangum(with_lifespan_state, lifespan="off")  # also sets up the event loop
    lifespan = LifespanCycle(app, "auto")
    lifespan.__enter__()  # startup now, during Lambda's init phase

    def shutdown() -> None:
        # Lambda usually freezes and discards the process without this; a local run exits
        # cleanly with it.
        if not lifespan.loop.is_closed():
            lifespan.__exit__(None, None, None)

    atexit.register(shutdown)
    return adapter


_adapter = _build()


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return _adapter(event, context)
