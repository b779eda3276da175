"""Document collection routes: upload, list, inspect and delete a tenant's own documents.

Every route acts on the caller's tenant only; names are checked by the ingestion service so a
collection name can never reach into another tenant's namespace.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from lockgate.api.errors import GatewayError
from lockgate.api.http import api_key, gateway_key_id, json_response, read_body, request_id
from lockgate.pipeline import Gateway, RequestContext
from lockgate.rag.wiring import RagComponents
from lockgate.tenants.keys import Tenant


def documents_router(gateway: Gateway, max_body_bytes: int) -> APIRouter:
    router = APIRouter(prefix="/v1/collections")

    async def caller(request: Request) -> tuple[Tenant, RagComponents, RequestContext]:
        ctx = RequestContext(request_id(request))
        tenant = await gateway.authenticate(api_key(request), ctx, gateway_key_id(request))
        if gateway.rag is None:
            raise GatewayError(404, "Retrieval is not configured.", code="rag_unavailable")
        return tenant, gateway.rag, ctx

    @router.get("")
    async def list_collections(request: Request) -> Response:
        tenant, rag, ctx = await caller(request)
        infos = await rag.ingestion.list_collections(tenant.id)
        data = [{**dataclasses.asdict(i), "object": "collection"} for i in infos]
        return json_response({"object": "list", "data": data}, headers=ctx.headers())

    @router.get("/{collection}/documents")
    async def list_documents(request: Request, collection: str) -> Response:
        tenant, rag, ctx = await caller(request)
        records = await rag.ingestion.list_documents(tenant.id, collection)
        data = [_document(r) for r in records]
        return json_response({"object": "list", "data": data}, headers=ctx.headers())

    @router.post("/{collection}/documents")
    async def upload(request: Request, collection: str, filename: str) -> Response:
        """The body is the file itself; `filename` names it (and its format, by extension).
        Uploading the same name again replaces the document; the same bytes change nothing."""
        tenant, rag, ctx = await caller(request)
        content = await read_body(request, max_body_bytes)
        result = await rag.ingestion.ingest(
            tenant.id,
            collection,
            f"upload://{filename}",
            content,
            filename=filename,
            content_type=request.headers.get("content-type"),
            upload=True,
        )
        if result.outcome == "failed":
            raise GatewayError(
                503,
                f"Ingestion failed: {result.error}",
                type="upstream_error",
                code="ingest_failed",
                headers={"retry-after": "5"},
            )
        return json_response(dataclasses.asdict(result), 201, headers=ctx.headers())

    @router.delete("/{collection}/documents/{doc_id}")
    async def delete_document(request: Request, collection: str, doc_id: str) -> Response:
        tenant, rag, ctx = await caller(request)
        result = await rag.ingestion.delete_document(tenant.id, collection, doc_id)
        if result.outcome == "missing":
            raise GatewayError(404, f"No document {doc_id!r} in {collection!r}.", code="not_found")
        return json_response(dataclasses.asdict(result), headers=ctx.headers())

    @router.delete("/{collection}")
    async def delete_collection(request: Request, collection: str) -> Response:
        tenant, rag, ctx = await caller(request)
        deleted = await rag.ingestion.delete_collection(tenant.id, collection)
        return json_response({"deleted": deleted, "collection": collection}, headers=ctx.headers())

    return router


def _document(record: Any) -> dict[str, Any]:
    fields = dataclasses.asdict(record)
    fields["object"] = "document"
    return fields
