"""The request flow, over ports only: authenticate → route → execute with fallback → account.

Protocol routes (OpenAI, Anthropic) translate to the canonical request and back; everything
between is here, once, so both protocols share routing, fallback and accounting.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from lockgate.api.errors import GatewayError, from_provider_errors, invalid_api_key
from lockgate.chat import ChatChunk, ChatRequest, ChatResult, Usage
from lockgate.providers.errors import ProviderError
from lockgate.routing.fallback import FallbackExecutor, FallbackExhausted, LiveStream
from lockgate.routing.router import Route, Router
from lockgate.tenants.auth import Authenticator
from lockgate.tenants.keys import Tenant

log = logging.getLogger("lockgate.pipeline")


@dataclass(slots=True)
class RequestContext:
    """What happened to one request; the route turns it into response headers and a log line."""

    request_id: str
    tenant: Tenant | None = None
    alias: str | None = None
    tier: str | None = None
    tier_reason: str | None = None
    model: str | None = None
    attempts: int = 0
    usage: Usage = field(default_factory=Usage)
    outcome: str = "ok"

    def headers(self) -> dict[str, str]:
        headers = {"x-request-id": self.request_id}
        if self.tier:
            headers["x-lockgate-tier"] = self.tier
        if self.model:
            headers["x-lockgate-model"] = self.model
        if self.attempts:
            headers["x-lockgate-attempts"] = str(self.attempts)
        return headers


class Gateway:
    def __init__(self, auth: Authenticator, router: Router, executor: FallbackExecutor) -> None:
        self._auth = auth
        self.router = router
        self._executor = executor

    def authenticate(
        self, api_key: str | None, ctx: RequestContext, gateway_key_id: str | None = None
    ) -> Tenant:
        """The one place a caller is checked."""
        tenant = self._auth.tenant_for(api_key, gateway_key_id)
        if tenant is None:
            raise invalid_api_key()
        ctx.tenant = tenant
        return tenant

    async def complete(self, request: ChatRequest, ctx: RequestContext) -> ChatResult:
        route = self.router.route(request)
        _note_route(ctx, route)
        try:
            answer = await self._executor.complete(request, route)
        except FallbackExhausted as exc:
            ctx.outcome = "upstream_error"
            raise from_provider_errors(exc.errors) from None
        ctx.model, ctx.attempts = answer.target.key, answer.attempts
        ctx.usage = answer.result.usage
        return answer.result

    async def stream(self, request: ChatRequest, ctx: RequestContext) -> AsyncIterator[ChatChunk]:
        """Waits for the first chunk (fallback happens before it), then returns the stream.

        The returned iterator raises `GatewayError` if the upstream fails after the first
        chunk; usage is accounted when it ends, however it ends.
        """
        route = self.router.route(request)
        _note_route(ctx, route)
        try:
            live = await self._executor.open_stream(request, route)
        except FallbackExhausted as exc:
            ctx.outcome = "upstream_error"
            raise from_provider_errors(exc.errors) from None
        ctx.model, ctx.attempts = live.target.key, live.attempts
        return self._relay(live, ctx)

    async def _relay(self, live: LiveStream, ctx: RequestContext) -> AsyncIterator[ChatChunk]:
        completion_tokens = 0
        finished = False
        try:
            async for chunk in live:
                if chunk.text:
                    completion_tokens += 1
                if chunk.usage is not None:
                    ctx.usage = chunk.usage
                finished = chunk.finish_reason is not None
                yield chunk
        except ProviderError as exc:
            ctx.outcome = "stream_failed"
            raise GatewayError(
                502, f"Upstream stream failed: {exc.message}", type="upstream_error", code=exc.code
            ) from None
        finally:
            if ctx.usage.completion_tokens == 0:
                ctx.usage.completion_tokens = completion_tokens
            if ctx.outcome == "ok" and not finished:
                ctx.outcome = "client_disconnected"


def _note_route(ctx: RequestContext, route: Route) -> None:
    ctx.alias, ctx.tier = route.alias, route.tier
    if route.classification is not None:
        ctx.tier_reason = route.classification.explain()
