"""The Anthropic provider adapter, through the official `anthropic` SDK on aiohttp.

The SDK's own retries are off: the gateway's executor owns retry, backoff and fallback, and a
hidden retry inside the SDK would double the wait and hide the attempt from the headers.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from typing import Any

import anthropic
import httpx2
import pydantic

from lockgate.chat import ChatChunk, ChatRequest, ChatResult
from lockgate.policy import AnthropicProviderConfig, Timeouts
from lockgate.providers import errors
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

_MAX_MESSAGE = 300


class AnthropicProvider:
    def __init__(self, name: str, config: AnthropicProviderConfig, timeouts: Timeouts) -> None:
        self.name = name
        self._config = config
        self._api_key = config.api_key or os.environ.get(config.api_key_env or "") or "unused"
        self._client = anthropic.AsyncAnthropic(
            api_key=self._api_key,
            base_url=config.base_url,
            timeout=anthropic.Timeout(timeouts.total_s, connect=timeouts.connect_s),
            max_retries=0,
            http_client=anthropic.DefaultAioHttpClient(),
        )

    def _arguments(self, request: ChatRequest, model: str) -> dict[str, Any]:
        return request_arguments(request, model, self._config.default_max_tokens)

    async def complete(self, request: ChatRequest, model: str) -> ChatResult:
        arguments = self._arguments(request, model)
        try:
            message = await self._client.messages.create(**arguments)
        except anthropic.APIError as exc:
            raise self._translate(exc) from None
        return result_from(message)

    async def stream(self, request: ChatRequest, model: str) -> AsyncIterator[ChatChunk]:
        arguments = self._arguments(request, model)
        try:
            events = await self._client.messages.create(**arguments, stream=True)
        except anthropic.APIError as exc:
            raise self._translate(exc) from None
        translator = StreamTranslator()
        async with events, aclosing(self._chunks(events, translator)) as chunks:
            async for chunk in chunks:
                yield chunk
                if translator.finished:
                    return

    async def _chunks(
        self, events: AsyncIterator[Any], translator: StreamTranslator
    ) -> AsyncGenerator[ChatChunk, None]:
        """Chunks from the SDK's event stream, with every failure mapped onto the taxonomy."""
        try:
            async for event in events:
                chunk = translator.feed(event)
                if chunk is not None:
                    yield chunk
        except anthropic.APIError as exc:
            raise self._translate(exc) from None
        except httpx2.TimeoutException:
            raise errors.timed_out("read") from None
        except httpx2.TransportError:
            raise errors.stream_cut() from None
        except (json.JSONDecodeError, pydantic.ValidationError, UnicodeDecodeError) as exc:
            raise errors.malformed(type(exc).__name__) from None

    def _translate(self, exc: anthropic.APIError) -> errors.ProviderError:
        if isinstance(exc, anthropic.APIStatusError):
            return self._status_error(exc)
        if isinstance(exc, anthropic.APITimeoutError):
            return errors.timed_out("read")
        if isinstance(exc, anthropic.APIConnectionError):
            cause = exc.__cause__
            return errors.connection_failed(type(cause).__name__ if cause else "connection error")
        if isinstance(exc, anthropic.APIResponseValidationError):
            return errors.malformed("the response did not match the Messages schema")
        return errors.malformed(type(exc).__name__)

    def _status_error(self, exc: anthropic.APIStatusError) -> errors.ProviderError:
        status = exc.status_code
        error_type = exc.type if isinstance(exc.type, str) else None
        if status < 400:
            status = ERROR_TYPE_STATUS.get(error_type or "", 500)
        detail = exc.api_message or error_type or exc.message
        message = self._redact(f"anthropic {status}: {detail}")
        return errors.from_status(status, message, retry_after=retry_after(exc.response))

    def _redact(self, text: str) -> str:
        """Upstream messages can echo request headers; the key must never reach a log."""
        if self._api_key and len(self._api_key) > 3:
            text = text.replace(self._api_key, "[redacted]")
        return text[:_MAX_MESSAGE]

    async def aclose(self) -> None:
        await self._client.close()


def retry_after(response: httpx2.Response) -> float | None:
    """Seconds from `retry-after-ms` (finer, when Anthropic sends it) or `retry-after`."""
    milliseconds = errors.parse_retry_after(response.headers.get("retry-after-ms"))
    if milliseconds is not None:
        return milliseconds / 1000
    return errors.parse_retry_after(response.headers.get("retry-after"))
