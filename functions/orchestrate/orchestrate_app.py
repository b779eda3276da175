"""The ASGI app behind the Lambda Web Adapter: run.sh has uvicorn call `create_app` at start.

Cold start: importing this module is free; the app (stores, provider clients, the embedding
model) is built when uvicorn calls the factory, in the init phase by design, since the adapter
forwards no request before GET /health answers.

Tenant identity arrives in the adapter's `x-amzn-request-context` header; `RequestContextGuard`
trusts it only on a loopback connection (the adapter's; run.sh binds 127.0.0.1), so a client
that reaches the app any other way cannot pose as another tenant.
"""

from __future__ import annotations

from typing import Any


def create_app() -> Any:
    from lockgate.app import create_app as build
    from lockgate.tenants.auth import RequestContextGuard

    return RequestContextGuard(build(), transport="web-adapter")
