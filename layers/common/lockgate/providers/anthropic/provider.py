"""The Anthropic provider adapter: the Messages API over the shared pooled HTTP client.

The wire details the official SDK used to supply are here: bearer auth, `anthropic-version`
headers, the error envelope, `error` events inside a 200 stream. Nothing retries inside the
adapter: the gateway's executor owns retry, backoff and fallback, and a hidden retry would double
the wait and hide the attempt from the headers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from lockgate.chat import ChatChunk, ChatRequest, ChatResult
from lockgate.policy import AnthropicProviderConfig, Timeouts
from lockgate.providers import errors, http
from lockgate.providers.anthropic.stream import StreamTranslator
from lockgate.providers.anthropic.translate import request_arguments, result_from

ERROR_TYPE_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}
"""An `error` event inside a 200 stream carries no status of its own; its type names one."""

DEFAULT_BASE_URL = "https://api.anthropic.com"
API_VERSION = "2026-10-21"
_PATH = "/v1/messages"
_MAX_MESSAGE = 300
_STREAM_EVENTS = frozenset(
    {
        "message_start",
        "message_delta",
        "message_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
    }
)


class AnthropicProvider:
    def __init__(self, name: str, config: AnthropicProviderConfig, timeouts: Timeouts) -> None:
        self.name = name
        self._config = config
        self._api_key = config.api_key or "unused"
        base_url = config.base_url or DEFAULT_BASE_URL
        headers = {"authorization": f"Bearer {self._api_key}", "anthropic-version": API_VERSION}
        self._http = http.HttpUpstream(base_url, headers, timeouts)

    def _call(self, request: ChatRequest, model: str) -> tuple[dict[str, Any], dict[str, str]]:
        """The request body, and the headers its pass-through fields need (`anthropic-beta`)."""
        arguments = request_arguments(request, model, self._config.default_max_tokens)
        extra = arguments.pop("extra_body", None) or {}
        headers = arguments.pop("extra_headers", None) or {}
        return {**arguments, **extra}, headers

    async def complete(self, request: ChatRequest, model: str) -> ChatResult:
        reply = await self._http.post(_PATH, *self._call(request, model))
        if reply.status >= 400:
            raise self._status_error(reply.status, reply.body, reply.headers)
        try:
            return result_from(Fields.of(http.decode(reply.body)))
        except (ValueError, TypeError, KeyError, IndexError, AttributeError):
            raise errors.malformed("the response did not match the Messages schema") from None

    async def stream(self, request: ChatRequest, model: str) -> AsyncIterator[ChatChunk]:
        body, headers = self._call(request, model)
        body["stream"] = True
        response = await self._http.open_stream(_PATH, body, headers)
        if response.status >= 400:
            reply = await http.read_error(response)
            raise self._status_error(reply.status, reply.body, reply.headers)
        translator = StreamTranslator()
        events = http.events(response)
        try:
            async for event in events:
                chunk = self._chunk(event, translator, response.headers)
                if chunk is not None:
                    yield chunk
                    if translator.finished:
                        return
        except errors.ProviderError:
            raise
        except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
            raise errors.malformed(type(exc).__name__) from None
        except TimeoutError:
            raise errors.timed_out("read") from None
        except Exception:  # the transport failed mid-body
            raise errors.stream_cut() from None
        finally:
            await events.aclose()
            response.close()  # a no-op once the body was read and the connection released

    def _chunk(
        self, event: http.Event, translator: StreamTranslator, headers: Any
    ) -> ChatChunk | None:
        if event.name == "error":  # the upstream failed after its 200: the type names a status
            raise self._status_error(200, event.data, headers)
        if event.name not in _STREAM_EVENTS:
            return None  # pings, and event types this gateway does not know yet
        data = http.decode(event.data)
        if not isinstance(data, dict):
            raise TypeError("event is not a JSON object")
        return translator.feed(data)

    def _status_error(self, status: int, body: bytes, headers: Any) -> errors.ProviderError:
        error_type, detail = _error_fields(body)
        if status < 400:
            status = ERROR_TYPE_STATUS.get(error_type or "", 500)
        detail = detail or error_type or f"Error code: {status}"
        message = self._redact(f"anthropic {status}: {detail}")
        return errors.from_status(status, message, retry_after=http.retry_after(headers))

    def _redact(self, text: str) -> str:
        """Upstream messages can echo request headers; the key must never reach a log."""
        if self._api_key and len(self._api_key) > 3:
            text = text.replace(self._api_key, "[redacted]")
        return text[:_MAX_MESSAGE]

    async def aclose(self) -> None:
        await self._http.aclose()


def _error_fields(body: bytes) -> tuple[str | None, str | None]:
    """(error.type, error.message) from the error envelope, or (None, the body as text)."""
    text = body.decode("utf-8", "replace").strip()
    try:
        envelope = http.decode(text) if text else None
    except ValueError:
        return None, text or None
    error = envelope.get("error") if isinstance(envelope, dict) else None
    if not isinstance(error, dict):
        return None, text or None
    error_type = error.get("type") if isinstance(error.get("type"), str) else None
    message = error.get("message") if isinstance(error.get("message"), str) else None
    return error_type, message


class Fields(dict[str, Any]):
    """A JSON object whose keys also read as attributes, nested objects too: the shape the
    Messages translation reads, without building the SDK's typed models."""

    @classmethod
    def of(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return cls(value)
        if isinstance(value, list):
            return [cls.of(item) for item in value]
        return value

    def __getattr__(self, name: str) -> Any:
        try:
            return Fields.of(self[name])
        except KeyError:
            raise AttributeError(name) from None
