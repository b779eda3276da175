"""Gateway errors and the OpenAI error envelope.

Every failure a client can see is a `GatewayError`; routes render it in their protocol's
envelope, so the status code and message are decided once, where the failure is understood.
"""

from __future__ import annotations

from typing import Any

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

    def openai_body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }


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


def from_provider_errors(errors: list[ProviderError]) -> GatewayError:
    """The client-facing error once every target has failed.

    A request the upstream rejected as malformed is the client's to fix (400); timeouts are
    504; when upstreams are only rate limiting or overloaded, 503 with the shortest Retry-After
    any of them asked for; anything else is a bad gateway (502).
    """
    if not errors:
        return GatewayError(
            503, "No upstream target is available.", type="upstream_error", code="no_target"
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
        headers = {"retry-after": str(max(1, round(min(waits))))} if waits else {}
        return GatewayError(
            503, message, type="upstream_error", code="upstream_unavailable", headers=headers
        )
    return GatewayError(502, message, type="upstream_error", code="upstream_error")
