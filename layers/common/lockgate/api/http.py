"""Request parsing shared by the protocol routes: key, request id, bounded body, validation."""

from __future__ import annotations

import os
import re
from typing import TypeVar

import orjson
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from lockgate.api.errors import GatewayError, bad_request, body_too_large

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
_HEADERS = "lockgate.headers"

M = TypeVar("M", bound=BaseModel)


def headers_of(request: Request) -> dict[str, str]:
    """The request's headers in one dict, built once per request: the routes ask for several,
    mostly absent, and a miss in Starlette's `Headers` walks the raw list and raises. A
    repeated header reads as its first value, as `Headers.get` has it."""
    scope = request.scope
    found: dict[str, str] | None = scope.get(_HEADERS)
    if found is None:
        found = {}
        for name, value in scope["headers"]:
            key = name.decode("latin-1").lower()
            if key not in found:
                found[key] = value.decode("latin-1")
        scope[_HEADERS] = found
    return found


def request_id(request: Request) -> str:
    """The caller's id when it is a sane token, so traces join up; a fresh one otherwise."""
    given = headers_of(request).get("x-request-id")
    if given and _REQUEST_ID.match(given):
        return given
    return os.urandom(16).hex()


def api_key(request: Request) -> str | None:
    """The key from `Authorization: Bearer` (OpenAI SDK) or `x-api-key` (Anthropic SDK)."""
    headers = headers_of(request)
    authorization = headers.get("authorization")
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    return headers.get("x-api-key") or None


def gateway_key_id(request: Request) -> str | None:
    """The API Gateway key id of this invocation: from the Lambda event (Mangum) or from the
    request context the Lambda Web Adapter forwards. Only an `ApiGatewayAuthenticator` trusts it."""
    event = request.scope.get("aws.event")
    context = event.get("requestContext") if isinstance(event, dict) else None
    if context is None and (forwarded := headers_of(request).get("x-amzn-request-context")):
        try:
            context = orjson.loads(forwarded)
        except orjson.JSONDecodeError:
            return None
    identity = context.get("identity") if isinstance(context, dict) else None
    key_id = identity.get("apiKeyId") if isinstance(identity, dict) else None
    return key_id if isinstance(key_id, str) and key_id else None


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refusing as soon as it is known to exceed the limit (before reading it all
    when Content-Length says so)."""
    declared = headers_of(request).get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise body_too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise body_too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def parse(model: type[M], body: bytes) -> M:
    if not body:
        raise bad_request("The request body is empty; send a JSON object.")
    if b"NaN" in body or b"Infinity" in body:
        _refuse_non_finite(body)
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        raise _invalid(exc) from None


def _refuse_non_finite(body: bytes) -> None:
    """`NaN` and `Infinity` are not JSON, though pydantic's parser accepts them: in a
    pass-through field they would reach cache keys and upstream encoders, which fail on them.
    Only bodies that contain the words are parsed again, strictly (they may just be text)."""
    try:
        orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise bad_request(
            f"The request body is not valid JSON (NaN and Infinity are not JSON numbers): {exc}"
        ) from None


def _invalid(exc: ValidationError) -> GatewayError:
    first = exc.errors()[0]
    if first["type"] in ("json_invalid", "json_type"):
        return bad_request(f"The request body is not valid JSON: {first['msg']}")
    if first["type"] == "model_type" and not first["loc"]:
        return bad_request("The request body must be a JSON object.")
    param = ".".join(str(part) for part in first["loc"]) or None
    count = exc.error_count()
    more = f" (and {count - 1} more problem{'s' if count > 2 else ''})" if count > 1 else ""
    return bad_request(f"Invalid request: {param}: {first['msg']}{more}", param=param)


def json_response(
    body: object, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(orjson.dumps(body), status, headers, media_type="application/json")
