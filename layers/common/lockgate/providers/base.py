"""The `Provider` port: what the fallback executor needs from any upstream."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from lockgate.chat import ChatChunk, ChatRequest, ChatResult


class Provider(Protocol):
    """An upstream that answers canonical chat requests for the models it hosts.

    Adapters raise only `ProviderError`. `stream` yields chunks as they arrive and must not
    swallow a cut: when the upstream ends without a finish reason, the adapter yields nothing
    more and the executor notices the missing `finish_reason`.
    """

    name: str

    async def complete(self, request: ChatRequest, model: str) -> ChatResult: ...

    def stream(self, request: ChatRequest, model: str) -> AsyncIterator[ChatChunk]: ...

    async def aclose(self) -> None: ...
