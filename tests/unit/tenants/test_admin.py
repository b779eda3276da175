"""The admin routes through a real ASGI app, with the error handler the gateway app uses."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from lockgate.api.errors import GatewayError, openai_error_body
from lockgate.stores.embedded.keys import SqliteKeyStore
from lockgate.stores.embedded.tenants import SqliteTenantStore
from lockgate.tenants.admin import admin_router
from lockgate.tenants.auth import KeyStoreAuthenticator
from lockgate.tenants.service import TenantService
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

ADMIN = "admin-" + "x" * 40


def app_with(service: TenantService, admin_key: str | None) -> FastAPI:
    app = FastAPI()

    @app.exception_handler(GatewayError)
    async def render(_: Request, exc: GatewayError) -> Response:
        return JSONResponse(openai_error_body(exc), exc.status, exc.headers)

    app.include_router(admin_router(service, admin_key))
    return app


@pytest.fixture
def keys(tmp_path: Path) -> SqliteKeyStore:
    return SqliteKeyStore(tmp_path / "a.db")


@pytest.fixture
async def admin(tmp_path: Path, keys: SqliteKeyStore) -> AsyncIterator[httpx.AsyncClient]:
    service = TenantService(SqliteTenantStore(tmp_path / "a.db"), keys)
    transport = httpx.ASGITransport(app=app_with(service, ADMIN))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://gw", headers={"authorization": f"Bearer {ADMIN}"}
    ) as client:
        yield client


async def test_tenant_and_key_administration(
    admin: httpx.AsyncClient, keys: SqliteKeyStore
) -> None:
    created = await admin.post(
        "/admin/tenants",
        json={"id": "acme", "tier": "free", "budget": {"monthly_tokens": 1000}},
    )
    assert created.status_code == 201 and created.json()["budget"]["monthly_tokens"] == 1000
    assert (await admin.post("/admin/tenants", json={"id": "acme"})).status_code == 409
    updated = await admin.patch("/admin/tenants/acme", json={"limits": {"requests_per_minute": 9}})
    assert updated.json()["limits"]["requests_per_minute"] == 9
    assert updated.json()["tier"] == "free"

    issued = (await admin.post("/admin/tenants/acme/keys", json={"name": "ci"})).json()
    assert issued["key"].startswith("lg-") and "key_hash" not in issued
    assert KeyStoreAuthenticator(keys).tenant_for(issued["key"], None) is not None
    listed = (await admin.get("/admin/tenants/acme/keys")).json()["data"]
    assert [k["key_id"] for k in listed] == [issued["key_id"]]
    assert issued["key"] not in str(listed)

    revoked = await admin.delete(f"/admin/tenants/acme/keys/{issued['key_id']}")
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    assert KeyStoreAuthenticator(keys).tenant_for(issued["key"], None) is None
    missing = await admin.delete(f"/admin/tenants/other/keys/{issued['key_id']}")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


async def test_bad_bodies_get_openai_style_errors(admin: httpx.AsyncClient) -> None:
    bad = await admin.post("/admin/tenants", json={"id": "acme", "tier": "gold"})
    assert bad.status_code == 400 and "unknown tier 'gold'" in bad.json()["error"]["message"]
    typo = await admin.post("/admin/tenants", json={"id": "acme", "limts": {}})
    assert typo.status_code == 400 and typo.json()["error"]["param"] == "limts"
    assert (await admin.get("/admin/tenants/nobody")).status_code == 404


async def test_admin_key_is_required(tmp_path: Path, keys: SqliteKeyStore) -> None:
    service = TenantService(SqliteTenantStore(tmp_path / "a.db"), keys)
    guarded = httpx.ASGITransport(app=app_with(service, ADMIN))
    async with httpx.AsyncClient(transport=guarded, base_url="http://gw") as client:
        assert (await client.get("/admin/tenants")).status_code == 401
        wrong = await client.get("/admin/tenants", headers={"x-api-key": ADMIN[:-1] + "y"})
        assert wrong.status_code == 401
        assert wrong.json()["error"]["code"] == "invalid_admin_key"
        ok = await client.get("/admin/tenants", headers={"x-api-key": ADMIN})
        assert ok.status_code == 200
    disabled = httpx.ASGITransport(app=app_with(service, None))
    async with httpx.AsyncClient(transport=disabled, base_url="http://gw") as client:
        refused = await client.get("/admin/tenants", headers={"x-api-key": ""})
        assert refused.status_code == 403 and "LOCKGATE_ADMIN_KEY" in refused.text
