"""The HTTP edge of error handling: every exception a route lets out becomes a status and its
protocol's envelope here, in one place.

The core raises `GatewayError` (already classified) or its own domain errors (a bad collection
name, a document that cannot be ingested, an ingestion quota); `to_gateway_error` maps the
latter, and anything else is a bug: logged with the request id and where it happened — never
its message, which may quote the prompt — and answered 500 in the protocol's envelope.
"""

from __future__ import annotations

import logging
from typing import Any

from lockgate.errors import (
    GatewayError,
    bad_request,
    body_too_large,
    from_provider_errors,
    internal_error,
    invalid_api_key,
    model_not_found,
    where_it_failed,
)
from lockgate.rag.errors import DocumentError, DocumentTooLarge, IngestQuotaExceeded, InvalidName

__all__ = [
    "GatewayError",
    "bad_request",
    "body_too_large",
    "from_provider_errors",
    "invalid_api_key",
    "model_not_found",
    "openai_error_body",
    "to_gateway_error",
]

log = logging.getLogger("lockgate.errors")


def to_gateway_error(exc: BaseException, request_id: str) -> GatewayError:
    """The client-facing error for anything a route raised."""
    if isinstance(exc, GatewayError):
        return exc
    if isinstance(exc, InvalidName):
        return bad_request(str(exc), param=exc.kind, code="invalid_name")
    if isinstance(exc, DocumentTooLarge):
        return GatewayError(413, str(exc), code="document_too_large", param=exc.limit)
    if isinstance(exc, DocumentError):
        return bad_request(str(exc), code="invalid_document")
    if isinstance(exc, IngestQuotaExceeded):
        return GatewayError(
            429,
            str(exc),
            type="rate_limit_error",
            code="ingest_quota_exceeded",
            headers={"retry-after": str(max(1, round(exc.retry_after)))},
        )
    log.error(
        "unhandled error in request %s: %s",
        request_id,
        where_it_failed(exc),
        extra={"fields": {"request_id": request_id}},
    )
    return internal_error(request_id)


def openai_error_body(error: GatewayError) -> dict[str, Any]:
    return {
        "error": {
            "message": error.message,
            "type": error.type,
            "param": error.param,
            "code": error.code,
        }
    }
