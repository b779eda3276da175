"""One Responses API request as the app's `Wire`, with its conversation state.

Chat completions and messages are stateless, so their wires are singletons. A Responses turn
reads the conversation it continues before it can be translated, and writes the conversation
it ends after the answer is known, so each request gets its own wire object.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

from lockgate.api import responses as wire
from lockgate.api.errors import GatewayError, openai_error_body
from lockgate.chat import ChatChunk, ChatMessage, ChatRequest, ChatResult
from lockgate.stores.responses import ResponseStore, ResponseTooLarge

log = logging.getLogger("lockgate.responses")


def previous_not_found(response_id: str) -> GatewayError:
    return GatewayError(
        400,
        f"Previous response with id '{response_id}' not found.",
        param="previous_response_id",
        code="previous_response_not_found",
    )


class ResponsesTurn:
    path = wire.PATH

    def __init__(
        self,
        request: wire.ResponsesRequest,
        chat: ChatRequest,
        history: list[ChatMessage],
        store: ResponseStore,
        tenant_id: str,
        ttl_s: float,
    ) -> None:
        self.request = request
        self.chat = chat
        self._history = history
        self._store = store
        self._tenant_id = tenant_id
        self._ttl_s = ttl_s
        self._encoder: wire.ResponsesStreamEncoder | None = None

    @classmethod
    async def open(
        cls, body: bytes, store: ResponseStore, tenant_id: str, ttl_s: float
    ) -> ResponsesTurn:
        request = wire.parse_request(body)
        history: list[ChatMessage] = []
        if request.previous_response_id:
            record = await store.get(tenant_id, request.previous_response_id)
            if record is None:
                raise previous_not_found(request.previous_response_id)
            history = [ChatMessage.model_validate(m) for m in record["messages"]]
        chat = wire.to_chat_request(request, history)
        return cls(request, chat, history, store, tenant_id, ttl_s)

    def parse(self, body: bytes) -> ChatRequest:
        return self.chat

    def body(self, result: ChatResult, model: str) -> dict[str, Any]:
        shell = wire.ResponseShell(self.request, model)
        return shell.body(
            "completed",
            wire.output_items(result),
            result.usage,
            result.finish_reason,
            result.sources,
        )

    def encoder(self, chat: ChatRequest, model: str) -> wire.ResponsesStreamEncoder:
        self._encoder = wire.ResponsesStreamEncoder(wire.ResponseShell(self.request, model))
        return self._encoder

    def error_body(self, error: GatewayError) -> dict[str, Any]:
        return openai_error_body(error)

    async def remember(self, response: dict[str, Any]) -> None:
        """Keeps the conversation up to this response, for follow-ups by its id."""
        if not self.request.store or response.get("status") == "failed":
            return
        messages = [*self._history, *wire.input_messages(self.request)]
        messages.append(wire.assistant_message(response["output"]))
        record = {
            "messages": [m.model_dump(exclude_none=True) for m in messages],
            "response": response,
        }
        try:
            await self._store.put(self._tenant_id, response["id"], record, self._ttl_s)
        except ResponseTooLarge as exc:
            log.warning("response %s not stored: %s", response["id"], exc)

    async def remembering(self, chunks: AsyncIterator[ChatChunk]) -> AsyncIterator[ChatChunk]:
        """The stream, then the conversation stored once the final event has been encoded."""
        async for chunk in chunks:
            yield chunk
        if self._encoder is not None and self._encoder.final is not None:
            await self.remember(self._encoder.final)


async def stored_response(store: ResponseStore, tenant_id: str, response_id: str) -> dict[str, Any]:
    record = await store.get(tenant_id, response_id)
    if record is None:
        raise GatewayError(404, f"Response with id '{response_id}' not found.", code="not_found")
    response: dict[str, Any] = record["response"]
    return response
