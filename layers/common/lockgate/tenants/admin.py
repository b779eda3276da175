"""Admin routes for tenants and keys, guarded by the admin key (`LOCKGATE_ADMIN_KEY`).

Without an admin key configured the routes refuse everything: an install never exposes
administration by default. The key is compared in constant time; errors use the OpenAI error
envelope via `GatewayError`.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Any, TypeVar

import orjson
from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from lockgate.errors import GatewayError
from lockgate.stores.offload import offload
from lockgate.tenants.models import Budget, RateLimits, TenantRecord
from lockgate.tenants.service import Conflict, NotFound, TenantError, TenantService

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NewTenant(_Body):
    id: str
    name: str = ""
    tier: str = "standard"
    models: list[str] = Field(default_factory=list)
    limits: RateLimits | None = None
    key_limits: RateLimits | None = None
    budget: Budget | None = None


class TenantChanges(_Body):
    name: str | None = None
    tier: str | None = None
    models: list[str] | None = None
    limits: RateLimits | None = None
    key_limits: RateLimits | None = None
    budget: Budget | None = None


class NewKey(_Body):
    name: str = ""
    expires_in_s: float | None = Field(default=None, gt=0)
    limits: RateLimits | None = None


def _presented(request: Request) -> str | None:
    authorization = request.headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return request.headers.get("x-api-key")


def admin_guard(admin_key: str | None) -> Callable[[Request], None]:
    def check(request: Request) -> None:
        if not admin_key:
            raise GatewayError(
                403,
                "The admin API is disabled: set LOCKGATE_ADMIN_KEY to enable it.",
                type="permission_error",
                code="admin_disabled",
            )
        presented = _presented(request) or ""
        if not hmac.compare_digest(presented.encode(), admin_key.encode()):
            raise GatewayError(
                401,
                "Missing or wrong admin key.",
                type="authentication_error",
                code="invalid_admin_key",
            )

    return check


def admin_router(service: TenantService, admin_key: str | None) -> APIRouter:
    router = APIRouter(prefix="/admin", dependencies=[Depends(admin_guard(admin_key))])

    @router.get("/tenants")
    async def list_tenants() -> Response:
        tenants = await _call(service.list_tenants)
        return _json({"object": "list", "data": [_tenant(t) for t in tenants]})

    @router.post("/tenants")
    async def create_tenant(request: Request) -> Response:
        body = await _parse(request, NewTenant)
        created = await _call(
            lambda: service.create_tenant(
                body.id,
                name=body.name,
                tier=body.tier,
                models=body.models,
                limits=body.limits,
                key_limits=body.key_limits,
                budget=body.budget,
            )
        )
        return _json(_tenant(created), 201)

    @router.get("/tenants/{tenant_id}")
    async def get_tenant(tenant_id: str) -> Response:
        return _json(_tenant(await _call(lambda: service.get_tenant(tenant_id))))

    @router.patch("/tenants/{tenant_id}")
    async def update_tenant(tenant_id: str, request: Request) -> Response:
        body = await _parse(request, TenantChanges)
        changes = body.model_dump(exclude_unset=True)
        updated = await _call(lambda: service.update_tenant(tenant_id, **changes))
        return _json(_tenant(updated))

    @router.post("/tenants/{tenant_id}/keys")
    async def create_key(tenant_id: str, request: Request) -> Response:
        body = await _parse(request, NewKey)
        issued = await _call(
            lambda: service.create_key(
                tenant_id, name=body.name, expires_in_s=body.expires_in_s, limits=body.limits
            )
        )
        return _json({**issued.record.public(), "key": issued.key}, 201)

    @router.get("/tenants/{tenant_id}/keys")
    async def list_keys(tenant_id: str) -> Response:
        keys = await _call(lambda: service.list_keys(tenant_id))
        return _json({"object": "list", "data": [k.public() for k in keys]})

    @router.delete("/tenants/{tenant_id}/keys/{key_id}")
    async def revoke_key(tenant_id: str, key_id: str) -> Response:
        revoked = await _call(lambda: service.revoke_key(key_id, tenant_id=tenant_id))
        return _json(revoked.public())

    return router


def _tenant(record: TenantRecord) -> dict[str, Any]:
    return record.model_dump(mode="json")


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status, media_type="application/json")


async def _parse(request: Request, model: type[M]) -> M:
    try:
        return model.model_validate_json(await request.body())
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise GatewayError(400, f"{where}: {first['msg']}", param=where) from None


async def _call(work: Callable[[], T]) -> T:
    try:
        return await offload(work)
    except NotFound as exc:
        raise GatewayError(404, str(exc), code="not_found") from None
    except Conflict as exc:
        raise GatewayError(409, str(exc), code="conflict") from None
    except TenantError as exc:
        raise GatewayError(400, str(exc)) from None
