"""The OpenAI provider adapter, through the official `openai` SDK on aiohttp.

Requests go through the SDK's client (auth, headers, SSE decoding, error mapping) with plain
JSON bodies and results: its typed request transform and response models cost more than the
rest of the gateway together, and nothing here needs them.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import openai
import orjson

from lockgate.chat import ChatChunk, ChatRequest, ChatResult
from lockgate.policy import OpenAIProviderConfig, Timeouts
from lockgate.providers import errors
from lockgate.providers.openai.translate import chunk_from, request_body, result_from

_PATH = "/chat/completions"
_Events = openai.AsyncStream[object]


class OpenAIProvider:
    def __init__(self, name: str, config: OpenAIProviderConfig, timeouts: Timeouts) -> None:
        self.name = name
        api_key = config.api_key or (os.environ.get(config.api_key_env or "") or None)
        self._client = openai.AsyncOpenAI(
            api_key=api_key or "unused",
            base_url=config.base_url,
            organization=config.organization,
            default_headers=config.headers or None,
            timeout=openai.Timeout(timeouts.total_s, connect=timeouts.connect_s),
            max_retries=0,
            http_client=openai.DefaultAioHttpClient(),
        )

    async def complete(self, request: ChatRequest, model: str) -> ChatResult:
        try:
            raw = await self._client.post(_PATH, body=request_body(request, model), cast_to=bytes)
            return result_from(orjson.loads(raw))
        except openai.APIError as exc:
            raise _translate(exc) from None
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            raise errors.malformed(type(exc).__name__) from None

    async def stream(self, request: ChatRequest, model: str) -> AsyncIterator[ChatChunk]:
        body = request_body(request, model)
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
        try:
            stream = await self._client.post(
                _PATH, body=body, cast_to=object, stream=True, stream_cls=_Events
            )
        except openai.APIError as exc:
            raise _translate(exc) from None
        finish: ChatChunk | None = None
        try:
            async with stream:
                async for event in stream:
                    chunk = chunk_from(event)  # type: ignore[arg-type]
                    if finish is not None:
                        finish.usage = chunk.usage or finish.usage
                        continue
                    if chunk.finish_reason:
                        finish = chunk
                        continue
                    if chunk.text or chunk.tool_calls:
                        yield chunk
        except openai.APIError as exc:
            raise _translate(exc) from None
        except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
            raise errors.malformed(type(exc).__name__) from None
        except Exception as exc:
            if finish is None:
                raise errors.connection_failed(type(exc).__name__) from None
        if finish is not None:
            yield finish

    async def aclose(self) -> None:
        await self._client.close()


def _translate(exc: openai.APIError) -> errors.ProviderError:
    if isinstance(exc, openai.APITimeoutError):
        return errors.timed_out("read")
    if isinstance(exc, openai.APIConnectionError):
        return errors.connection_failed(_upstream_message(exc))
    if isinstance(exc, openai.APIStatusError):
        headers = exc.response.headers
        retry_after = errors.parse_retry_after(headers.get("retry-after"))
        if retry_after is None and (ms := errors.parse_retry_after(headers.get("retry-after-ms"))):
            retry_after = ms / 1000
        return errors.from_status(exc.status_code, _upstream_message(exc), retry_after)
    return errors.ProviderError(
        f"upstream reported an error mid-stream: {_upstream_message(exc)}",
        kind=errors.ErrorKind.RETRYABLE,
        code="upstream_stream_error",
    )


def _upstream_message(exc: openai.APIError) -> str:
    body: Any = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return str(inner["message"])[:300]
    return exc.message[:300]
