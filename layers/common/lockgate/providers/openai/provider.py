"""The OpenAI provider adapter, through the official `openai` SDK on aiohttp."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import openai

from lockgate.chat import ChatChunk, ChatRequest, ChatResult
from lockgate.policy import OpenAIProviderConfig, Timeouts
from lockgate.providers import errors
from lockgate.providers.openai.translate import chunk_from, request_arguments, result_from


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
            completion = await self._client.chat.completions.create(
                **request_arguments(request, model)
            )
        except openai.APIError as exc:
            raise _translate(exc) from None
        except (ValueError, TypeError) as exc:
            raise errors.malformed(type(exc).__name__) from None
        if not completion.choices:
            raise errors.malformed("no choices in the completion")
        return result_from(completion)

    async def stream(self, request: ChatRequest, model: str) -> AsyncIterator[ChatChunk]:
        arguments = request_arguments(request, model)
        try:
            stream = await self._client.chat.completions.create(
                **arguments, stream=True, stream_options={"include_usage": True}
            )
        except openai.APIError as exc:
            raise _translate(exc) from None
        finish: ChatChunk | None = None
        try:
            async with stream:
                async for event in stream:
                    chunk = chunk_from(event)
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
        except errors.ProviderError:
            raise
        except (ValueError, TypeError) as exc:
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
    return errors.malformed(_upstream_message(exc))


def _upstream_message(exc: openai.APIError) -> str:
    body: Any = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return str(inner["message"])[:300]
    return exc.message[:300]
