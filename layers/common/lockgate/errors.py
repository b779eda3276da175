"""The errors a client can see, raised in the core and rendered at the HTTP edge.

A `GatewayError` says what went wrong and how the client should take it (its status class, an
error code, the parameter at fault); the protocol routes (`lockgate.api.errors`) turn it into
OpenAI's or Anthropic's envelope, and map the core's other domain errors (bad names, bad
documents) onto it in one table. Nothing here knows about a wire format.
"""

from __future__ import annotations

import traceback

from lockgate.providers.errors import ErrorKind, ProviderError


class GatewayError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.headers = headers or {}


def bad_request(message: str, *, param: str | None = None, code: str | None = None) -> GatewayError:
    return GatewayError(400, message, param=param, code=code)


def invalid_api_key() -> GatewayError:
    return GatewayError(
        401,
        "Missing or unknown API key. Send it as 'Authorization: Bearer <key>' or 'x-api-key'.",
        type="authentication_error",
        code="invalid_api_key",
    )


def model_not_found(model: str, known: list[str]) -> GatewayError:
    return GatewayError(
        404,
        f"The model {model!r} does not exist. Available: {', '.join(known)}.",
        param="model",
        code="model_not_found",
    )


def body_too_large(limit: int) -> GatewayError:
    return GatewayError(
        413,
        f"Request body is larger than the limit of {limit} bytes.",
        code="request_too_large",
    )


def internal_error(request_id: str) -> GatewayError:
    """What a client sees of a bug: a 500 naming the request, so the log line can be found."""
    return GatewayError(
        500,
        f"The gateway failed on this request (request id {request_id}); it has been logged.",
        type="server_error",
        code="internal_error",
    )


UNAVAILABLE_RETRY_AFTER_S = 1
"""The Retry-After of a 503 when no upstream named a wait: soon, but not in a tight loop."""


def from_provider_errors(errors: list[ProviderError]) -> GatewayError:
    """The client-facing error once every target has failed.

    A request the upstream rejected as malformed is the client's to fix (400); when every
    attempt ran out of time, 504; when upstreams are only rate limiting or overloaded, 503 with
    the shortest Retry-After any of them asked for (one second when none did); anything else —
    a cut connection, a malformed answer, refused credentials everywhere — is a bad gateway.
    """
    if not errors:
        return GatewayError(
            503,
            "No upstream target is available.",
            type="upstream_error",
            code="no_target",
            headers={"retry-after": str(UNAVAILABLE_RETRY_AFTER_S)},
        )
    last = errors[-1]
    if last.kind is ErrorKind.REQUEST:
        status = last.status if last.status and 400 <= last.status < 500 else 400
        return GatewayError(
            status, f"Upstream rejected the request: {last.message}", code=last.code
        )
    summary = "; ".join(dict.fromkeys(e.message for e in errors))
    if all(e.code == "unsupported_feature" for e in errors):
        return GatewayError(
            400, f"No target of this model can take the request: {summary}", code=errors[-1].code
        )
    message = f"All upstream targets failed after {len(errors)} attempt(s): {summary}"
    if all(e.code.startswith("timeout") for e in errors):
        return GatewayError(504, message, type="upstream_error", code="upstream_timeout")
    waits = [e.retry_after for e in errors if e.retry_after is not None]
    if all(e.status in (429, 503, 529) for e in errors):
        wait = max(1, round(min(waits))) if waits else UNAVAILABLE_RETRY_AFTER_S
        return GatewayError(
            503,
            message,
            type="upstream_error",
            code="upstream_unavailable",
            headers={"retry-after": str(wait)},
        )
    return GatewayError(502, message, type="upstream_error", code="upstream_error")


def where_it_failed(exc: BaseException) -> str:
    """An exception for a log line: its type and the frames it passed through, never its
    message — messages of foreign exceptions quote their input (pydantic's `input_value`, a
    JSON encoder's value), and the input is the caller's prompt."""
    frames = traceback.extract_tb(exc.__traceback__)[-6:][::-1]
    path = " < ".join(
        f"{f.name} ({f.filename.rsplit('/', 1)[-1]}:{f.lineno})" for f in frames[::-1]
    )
    return f"{type(exc).__name__} at {path}" if path else type(exc).__name__
