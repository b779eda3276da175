"""`/v1/embeddings`: alias → targets in order, with the tenant's limits and accounting.

Embeddings are one short call with nothing to stream or cache, so the flow is small: admit
against the tenant's allowances, try each target until one answers, settle the token estimate
with the provider's count and record the usage under the alias and target.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Protocol

from lockgate.errors import bad_request, from_provider_errors, model_not_found
from lockgate.limits.tokens import estimate_text_tokens
from lockgate.pipeline import RequestContext, TenantControls
from lockgate.policy import Policy
from lockgate.providers.embeddings import EmbeddingProvider, Embeddings
from lockgate.providers.errors import ErrorKind, ProviderError

MAX_INPUTS = 2048
"""Inputs per request, OpenAI's own limit."""


class EmbeddingsRequest(Protocol):
    """What a call asks for, whichever wire it came in on."""

    @property
    def model(self) -> str: ...

    @property
    def inputs(self) -> list[str] | list[list[int]]: ...

    @property
    def dimensions(self) -> int | None: ...


class EmbeddingsService:
    def __init__(
        self,
        policy: Policy,
        providers: Mapping[str, EmbeddingProvider],
        controls: TenantControls | None = None,
    ) -> None:
        self._policy = policy
        self.providers = dict(providers)
        """By provider name; tracing wraps them in place."""
        self._controls = controls

    @property
    def model_names(self) -> list[str]:
        return list(self._policy.embeddings)

    async def embed(self, request: EmbeddingsRequest, ctx: RequestContext) -> Embeddings:
        alias = self._policy.embeddings.get(request.model)
        if alias is None:
            raise model_not_found(request.model, self.model_names)
        inputs = request.inputs
        if not inputs or len(inputs) > MAX_INPUTS:
            raise bad_request(f"input must hold 1 to {MAX_INPUTS} items", param="input")
        if any(isinstance(item, str) and not item for item in inputs):
            raise bad_request("input must not contain empty strings", param="input")
        ctx.alias, ctx.tier = request.model, "embeddings"
        estimate = sum(
            estimate_text_tokens(item) if isinstance(item, str) else len(item) for item in inputs
        )
        controls, tenant = self._controls, ctx.tenant
        admission = None
        if controls is not None and tenant is not None:
            await controls.directory.check_model(tenant.id, request.model)
            admission = await controls.limiter.check(tenant, tenant.key_id, estimate)
            ctx.extra_headers.update(admission.headers)
            admission.check_model(request.model)
        result: Embeddings | None = None
        try:
            result = await self._first_answer(request, ctx)
            ctx.usage.prompt_tokens = result.prompt_tokens
            return result
        finally:
            if controls is not None and tenant is not None and admission is not None:
                await controls.limiter.settle(admission, result.prompt_tokens if result else 0)
                if result is not None:
                    await controls.ledger.record(
                        tenant_id=tenant.id,
                        key_id=tenant.key_id,
                        alias=request.model,
                        target=ctx.model,
                        prompt_tokens=result.prompt_tokens,
                        completion_tokens=0,
                    )

    async def _first_answer(self, request: EmbeddingsRequest, ctx: RequestContext) -> Embeddings:
        failures: list[ProviderError] = []
        for target in self._policy.embeddings[request.model].targets:
            ctx.attempts += 1
            waited = time.perf_counter()
            try:
                result = await self.providers[target.provider].embed(
                    request.inputs, target.model, request.dimensions
                )
            except ProviderError as exc:
                failures.append(exc)
                if exc.kind is ErrorKind.REQUEST:
                    break
                continue
            finally:
                ctx.upstream_s += time.perf_counter() - waited
            if len(result.vectors) != len(request.inputs):
                failures.append(ProviderError("wrong number of vectors", kind=ErrorKind.RETRYABLE))
                continue
            ctx.model = target.key
            return result
        ctx.outcome = "upstream_error"
        raise from_provider_errors(failures)
