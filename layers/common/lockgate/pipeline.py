"""The request flow, over ports only: authenticate → route → cache → execute with fallback →
store and account.

Protocol routes (OpenAI, Anthropic) translate to the canonical request and back; everything
between is here, once, so both protocols share routing, caching, fallback and accounting.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from lockgate.cache.service import CachedAnswer, CacheService
from lockgate.chat import ChatChunk, ChatRequest, ChatResult, Usage
from lockgate.errors import GatewayError, from_provider_errors, invalid_api_key
from lockgate.limits.limiter import Admission, Limiter
from lockgate.limits.tokens import estimate_tokens
from lockgate.limits.usage import UsageLedger
from lockgate.policy import Policy, RagBinding
from lockgate.providers.errors import ProviderError
from lockgate.rag.extractive import extractive_answer, is_weak
from lockgate.rag.model import RetrievedChunk, Sources
from lockgate.rag.prompt import (
    DONT_KNOW,
    context_tokens,
    dont_know_result,
    grounded_request,
    retrieval_query,
    sources,
)
from lockgate.rag.wiring import RagComponents
from lockgate.routing.fallback import FallbackExecutor, FallbackExhausted, LiveStream
from lockgate.routing.remote import RemoteExecutor
from lockgate.routing.router import Route, Router
from lockgate.safety.guard import InjectionGuard
from lockgate.safety.limits import check_input_limits
from lockgate.safety.redaction import redact_request
from lockgate.stores.offload import SharedReads, offload
from lockgate.tenants.auth import Authenticator
from lockgate.tenants.directory import RecentCallers, TenantDirectory, caller_key
from lockgate.tenants.keys import Tenant

log = logging.getLogger("lockgate.pipeline")

REPLAY_WORDS = 4
"""Words per chunk when a cached answer is replayed as a stream."""


@dataclass(frozen=True, slots=True)
class CacheControl:
    """What the client allowed: `read=False` is no-cache, `write=False` is no-store."""

    read: bool = True
    write: bool = True

    @classmethod
    def of(cls, request: ChatRequest, header: str | None = None) -> CacheControl:
        """From the `cache-control` header and the body's `lockgate.cache` field together."""
        directives = {d.strip().lower() for d in (header or "").split(",")}
        mode = request.lockgate.cache if request.lockgate else "default"
        read = "no-cache" not in directives and mode not in ("no-cache", "off")
        write = "no-store" not in directives and mode not in ("no-store", "off")
        return cls(read, write)


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
    cache: str | None = None
    similarity: float | None = None
    usage: Usage = field(default_factory=Usage)
    outcome: str = "ok"
    continued: dict[str, Any] | None = None
    """Set when a stream failed mid-answer and another target carried it on."""
    extra_headers: dict[str, str] = field(default_factory=dict)
    """Rate-limit and safety headers, decided on the way in."""
    started: float = field(default_factory=time.perf_counter)
    upstream_s: float = 0.0
    """Time spent waiting for upstreams (to the first chunk, for a stream)."""
    first_token_s: float | None = None
    cached_usage: Usage | None = None
    """On a cache hit: what the cached answer cost when it was made."""

    @property
    def overhead_ms(self) -> float:
        """Time spent in the gateway itself so far: everything but the upstream wait."""
        return (time.perf_counter() - self.started - self.upstream_s) * 1000

    def headers(self) -> dict[str, str]:
        headers = {
            "x-request-id": self.request_id,
            **self.extra_headers,
            "x-lockgate-overhead-ms": f"{self.overhead_ms:.2f}",
        }
        if self.tier:
            headers["x-lockgate-tier"] = self.tier
        if self.model:
            headers["x-lockgate-model"] = self.model
        if self.attempts:
            headers["x-lockgate-attempts"] = str(self.attempts)
        if self.cache:
            headers["x-lockgate-cache"] = self.cache
        if self.similarity is not None:
            headers["x-lockgate-cache-similarity"] = f"{self.similarity:.4f}"
        return headers


@dataclass(frozen=True, slots=True)
class TenantControls:
    """Per-tenant allowances: which aliases, how much per minute, how much per month."""

    directory: TenantDirectory
    limiter: Limiter
    ledger: UsageLedger


@dataclass(slots=True)
class _Admitted:
    request: ChatRequest
    route: Route
    admission: Admission | None
    prompt_estimate: int
    rag: RagBinding | None = None
    rag_version: str | None = None


class Gateway:
    def __init__(
        self,
        auth: Authenticator,
        router: Router,
        executor: FallbackExecutor,
        policy: Policy,
        *,
        cache: CacheService | None = None,
        controls: TenantControls | None = None,
        guard: InjectionGuard | None = None,
        rag: RagComponents | None = None,
        remote: RemoteExecutor | None = None,
    ) -> None:
        self._auth = auth
        self.router = router
        self._executor = executor
        self._policy = policy
        self.cache = cache
        self.controls = controls
        self._guard = guard
        self.rag = rag
        self.remote = remote
        self._background: set[asyncio.Task[None]] = set()
        self.recent = RecentCallers()
        self._checking: SharedReads[Tenant | None] = SharedReads()

    async def authenticate(
        self, api_key: str | None, ctx: RequestContext, gateway_key_id: str | None = None
    ) -> Tenant:
        """The one place a caller is checked: from memory when the key was seen in the last
        second (read again in the background once half of it is up), else a key store read,
        off the loop."""
        if not api_key and not gateway_key_id:
            raise invalid_api_key()
        tenant, due = self.recent.lookup(api_key, gateway_key_id)
        if tenant is None or due:
            caller = caller_key(api_key, gateway_key_id)

            def read() -> Awaitable[Tenant | None]:
                return self._read(api_key, gateway_key_id)

            if tenant is None:
                tenant = await self._checking.read(caller, read)
            else:
                self._checking.refresh(caller, read)
        if tenant is None:
            raise invalid_api_key()
        ctx.tenant = tenant
        return tenant

    async def _read(self, api_key: str | None, gateway_key_id: str | None) -> Tenant | None:
        """One key store read per caller at a time; a refused key is forgotten at once."""
        generation = self.recent.generation
        tenant = await offload(self._auth.tenant_for, api_key, gateway_key_id)
        if tenant is None:
            self.recent.discard(api_key, gateway_key_id)
        else:
            self.recent.put(api_key, gateway_key_id, tenant, generation=generation)
        return tenant

    async def complete(
        self, request: ChatRequest, ctx: RequestContext, control: CacheControl = CacheControl()
    ) -> ChatResult:
        admitted = await self._admit(request, ctx)
        try:
            cached = await self._lookup(admitted, ctx, control)
            if cached is not None:
                return cached.result
            grounded = await self._ground(admitted, ctx)
            if grounded.answer is not None:
                return grounded.answer
            waited = time.perf_counter()
            try:
                executor = self._executor_for(admitted.route, grounded.request)
                answer = await executor.complete(grounded.request, admitted.route)
            except FallbackExhausted as exc:
                ctx.outcome = "upstream_error"
                raise from_provider_errors(exc.errors) from None
            finally:
                ctx.upstream_s += time.perf_counter() - waited
            ctx.model, ctx.attempts = answer.target.key, answer.attempts
            if answer.attempts == 1:
                self.router.latency.observe(answer.target, ctx.upstream_s)
            ctx.usage = answer.result.usage
            answer.result.sources = grounded.sources
            grounded.check(answer.result)
            await self._store(admitted, ctx, control, answer.result)
            return answer.result
        finally:
            # The answer does not wait for its bookkeeping: the usage is recorded as its own
            # task, once the caller has its answer (as a stream's is when it ends).
            self._spawn(self._account(admitted, ctx))

    async def stream(
        self, request: ChatRequest, ctx: RequestContext, control: CacheControl = CacheControl()
    ) -> AsyncIterator[ChatChunk]:
        """Waits for the first chunk (fallback happens before it), then returns the stream.

        The returned iterator raises `GatewayError` if the upstream fails after the first
        chunk; the answer is cached and usage accounted when it ends, however it ends.
        """
        admitted = await self._admit(request, ctx)
        try:
            cached = await self._lookup(admitted, ctx, control)
            if cached is not None:
                return self._accounted(_replay(cached.result), admitted, ctx)
            grounded = await self._ground(admitted, ctx)
            if grounded.answer is not None:
                return self._accounted(_replay(grounded.answer), admitted, ctx)
            waited = time.perf_counter()
            try:
                live = await self._executor.open_stream(grounded.request, admitted.route)
            except FallbackExhausted as exc:
                ctx.outcome = "upstream_error"
                raise from_provider_errors(exc.errors) from None
            finally:
                ctx.upstream_s += time.perf_counter() - waited
        except BaseException:
            await self._account(admitted, ctx)
            raise
        ctx.first_token_s = time.perf_counter() - ctx.started
        ctx.model, ctx.attempts = live.target.key, live.attempts
        if live.attempts == 1:
            self.router.latency.observe(live.target, ctx.upstream_s)
        return self._relay(live, admitted, ctx, control, grounded.sources)

    async def _accounted(
        self, chunks: AsyncIterator[ChatChunk], admitted: _Admitted, ctx: RequestContext
    ) -> AsyncIterator[ChatChunk]:
        """Accounts usage when the stream ends, however it ends. A client that goes away
        cancels this generator, so the accounting runs as its own task rather than be
        cancelled with it."""
        try:
            async for chunk in chunks:
                yield chunk
        finally:
            self._spawn(self._account(admitted, ctx))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def drain(self) -> None:
        """Waits for the usage still being recorded, so that stopping loses none of it."""
        while self._background:
            await asyncio.gather(*self._background, return_exceptions=True)

    async def _admit(self, request: ChatRequest, ctx: RequestContext) -> _Admitted:
        """Tenant allowances, routing and input safety, in the order that spends the least
        on a request that will be refused."""
        tenant = ctx.tenant
        admission: Admission | None = None
        if self.controls is not None and tenant is not None:
            await self.controls.directory.check_model(tenant.id, request.model)
            admission = await self.controls.limiter.check(
                tenant, tenant.key_id, estimate_tokens(request)
            )
            ctx.extra_headers.update(admission.headers)
        try:
            if admission is not None:
                admission.check_model(request.model)
            route = self._route(request, ctx, admission.max_routing_tier if admission else None)
            safety = self._policy.safety_for(route.alias)
            prompt_estimate = check_input_limits(request, safety)
            if self._guard is not None:
                guarded = await self._guard.check_request(request, safety)
                request = guarded.request
                ctx.extra_headers.update(guarded.headers)
            if safety.redact_prompts:
                request = redact_request(request)
            admitted = _Admitted(request, route, admission, prompt_estimate)
            await self._bind_collection(admitted, ctx)
        except BaseException:
            # A refused request used no tokens: give its estimate back.
            if admission is not None and self.controls is not None:
                await self.controls.limiter.settle(admission, 0)
            raise
        return admitted

    async def _bind_collection(self, admitted: _Admitted, ctx: RequestContext) -> None:
        """The alias's collection, or the one the request names; its version goes into the
        cache keys, so a changed collection never serves an answer grounded in old text."""
        request = admitted.request
        binding = self._policy.models[admitted.route.alias].rag
        if request.lockgate is not None and request.lockgate.collection:
            binding = (binding or RagBinding(collection=request.lockgate.collection)).model_copy(
                update={"collection": request.lockgate.collection}
            )
        if binding is None:
            return
        if self.rag is None or ctx.tenant is None:
            raise GatewayError(
                400, "Retrieval is not configured on this gateway.", code="rag_unavailable"
            )
        admitted.rag = binding
        admitted.rag_version = await self.rag.ingestion.collection_version(
            ctx.tenant.id, binding.collection
        )

    async def _ground(self, admitted: _Admitted, ctx: RequestContext) -> _Grounded:
        """The request with retrieved sources in it, or the answer given without a model:
        "I don't know" when nothing relevant was found (and the binding says so), or the
        extractive answer when the binding asks for one."""
        binding = admitted.rag
        if binding is None or self.rag is None or ctx.tenant is None:
            return _Grounded(admitted.request)
        query = retrieval_query(admitted.request)
        chunks = await self.rag.retriever.retrieve(
            ctx.tenant.id,
            binding.collection,
            query,
            binding.top_k,
            min_similarity=binding.min_score,
        )
        if chunks and self._guard is not None:
            safety = self._policy.safety_for(admitted.route.alias)
            checked = await self._guard.check_chunks([c.text for c in chunks], safety)
            chunks = [chunks[i] for i in checked.kept]
            ctx.extra_headers.update(checked.headers)
        if not chunks and binding.when_nothing_found == "dont_know":
            empty = Sources(answer_mode="dont_know")
            return _Grounded(admitted.request, sources=empty, answer=dont_know_result(empty))
        request, used = grounded_request(
            admitted.request, chunks, max_context_tokens=binding.context_tokens
        )
        mode = binding.answer
        if mode == "auto" and used and self._local_model(admitted.route):
            mode = "extract"
        found = sources(
            used,
            answer_mode="extractive" if mode == "extract" and used else "generated",
            context_tokens=context_tokens(used),
            context_budget=binding.context_tokens,
        )
        grounded = _Grounded(request, found, query, used, fallback=mode == "auto")
        if mode == "extract" and used:
            grounded.answer = ChatResult(
                text=extractive_answer(query, used), finish_reason="stop", sources=found
            )
        return grounded

    def _local_model(self, route: Route) -> bool:
        """Whether the route's first choice is the bundled model, too small to compose a
        grounded answer (bench: the sample knowledge base's questions)."""
        provider = self._policy.providers.get(route.targets[0].provider) if route.targets else None
        return provider is not None and provider.kind == "local"

    async def _account(self, admitted: _Admitted, ctx: RequestContext) -> None:
        """Corrects the token estimate with what was really used, and records the usage."""
        if self.controls is None or ctx.tenant is None:
            return
        try:
            if admitted.admission is not None:
                await self.controls.limiter.settle(admitted.admission, ctx.usage.total_tokens)
            cached = ctx.cache in ("exact", "semantic")
            await self.controls.ledger.record(
                tenant_id=ctx.tenant.id,
                key_id=ctx.tenant.key_id,
                alias=ctx.alias,
                target=ctx.model,
                prompt_tokens=ctx.usage.prompt_tokens
                or (0 if cached else admitted.prompt_estimate),
                completion_tokens=ctx.usage.completion_tokens,
                cached=cached,
                cache_read_tokens=ctx.usage.cache_read_tokens,
                cache_write_tokens=ctx.usage.cache_write_tokens,
            )
        except Exception:
            log.exception("usage accounting failed for request %s", ctx.request_id)

    async def _relay(
        self,
        live: LiveStream,
        admitted: _Admitted,
        ctx: RequestContext,
        control: CacheControl,
        found: list[dict[str, Any]] | None,
    ) -> AsyncIterator[ChatChunk]:
        answer = _Collected()
        try:
            async for chunk in live:
                answer.add(chunk)
                if chunk.usage is not None:
                    ctx.usage = chunk.usage
                if chunk.finish_reason is not None:
                    chunk.sources = found
                    if live.continued_from is not None:
                        ctx.continued = {
                            "from": live.continued_from.key,
                            "to": live.target.key,
                            "attempts": live.attempts,
                        }
                yield chunk
        except ProviderError as exc:
            ctx.outcome = "stream_failed"
            raise GatewayError(
                502, f"Upstream stream failed: {exc.message}", type="upstream_error", code=exc.code
            ) from None
        finally:
            if live.continued_from is not None:
                ctx.model, ctx.attempts = live.target.key, live.attempts
            if ctx.usage.completion_tokens == 0:
                ctx.usage.completion_tokens = answer.pieces
            if ctx.outcome == "ok" and answer.finish_reason is None:
                ctx.outcome = "client_disconnected"
            self._spawn(self._account(admitted, ctx))  # however it ended, as `_accounted` does
        result = answer.result(ctx.usage)
        result.sources = found
        await self._store(admitted, ctx, control, result)

    def _executor_for(
        self, route: Route, request: ChatRequest
    ) -> FallbackExecutor | RemoteExecutor:
        """A buffered call of a `step_functions` alias runs on the remote executor when there
        is one and the request fits it; streams never come here."""
        remote = self.remote
        if (
            remote is not None
            and self._policy.models[route.alias].executor == "step_functions"
            and remote.fits(request)
        ):
            return remote
        return self._executor

    def _route(self, request: ChatRequest, ctx: RequestContext, max_tier: str | None) -> Route:
        route = self.router.route(request, max_tier)
        ctx.alias, ctx.tier = route.alias, route.tier
        if route.classification is not None:
            ctx.tier_reason = route.classification.explain()
        return route

    async def _lookup(
        self, admitted: _Admitted, ctx: RequestContext, control: CacheControl
    ) -> CachedAnswer | None:
        route = admitted.route
        policy = self._policy.cache_for(route.alias)
        if self.cache is None or ctx.tenant is None or not policy.enabled:
            return None
        ctx.cache = "miss"
        cached = await self.cache.lookup(
            ctx.tenant.id,
            route.alias,
            route.tier,
            admitted.request,
            policy,
            admitted.rag_version,
            read=control.read,
        )
        if cached is not None:
            ctx.cache, ctx.similarity = cached.kind, cached.similarity
            ctx.model, ctx.attempts = cached.model, 0
            ctx.cached_usage, ctx.usage = cached.result.usage, Usage()
        return cached

    async def _store(
        self, admitted: _Admitted, ctx: RequestContext, control: CacheControl, result: ChatResult
    ) -> None:
        if self.cache is None or ctx.tenant is None:
            return
        route = admitted.route
        await self.cache.store(
            ctx.tenant.id,
            route.alias,
            route.tier,
            admitted.request,
            self._policy.cache_for(route.alias),
            admitted.rag_version,
            result,
            write=control.write,
            complete=ctx.outcome == "ok",
            model=ctx.model,
        )


@dataclass(slots=True)
class _Collected:
    """A streamed answer put back together, for the cache."""

    text: list[str] = field(default_factory=list)
    tool_calls: bool = False
    finish_reason: str | None = None
    pieces: int = 0

    def add(self, chunk: ChatChunk) -> None:
        if chunk.text:
            self.text.append(chunk.text)
            self.pieces += 1
        self.tool_calls = self.tool_calls or bool(chunk.tool_calls)
        self.finish_reason = chunk.finish_reason or self.finish_reason

    def result(self, usage: Usage) -> ChatResult:
        return ChatResult(
            text="".join(self.text),
            finish_reason=self.finish_reason or "incomplete",
            usage=usage,
            tool_calls=[{"streamed": True}] if self.tool_calls else None,
        )


@dataclass(slots=True)
class _Grounded:
    request: ChatRequest
    sources: Sources | None = None
    """What the response's `lockgate` extension reports; None without a collection."""
    query: str = ""
    used: list[RetrievedChunk] = field(default_factory=list)
    answer: ChatResult | None = None
    """The answer given without a model call (don't know, extractive)."""
    fallback: bool = False
    """Whether a generated answer that says nothing from its sources is replaced by the
    extractive one (`answer: auto`; buffered answers only, a stream is already sent)."""

    def check(self, result: ChatResult) -> None:
        if not self.fallback or not self.used or result.tool_calls:
            return
        if result.text.strip().startswith(DONT_KNOW[:12]) or not is_weak(result.text, self.used):
            return
        result.text = extractive_answer(self.query, self.used)
        if isinstance(result.sources, Sources):
            result.sources.facts["answer_mode"] = "extractive"


async def _replay(result: ChatResult) -> AsyncIterator[ChatChunk]:
    """A whole answer as a stream: a few words per chunk, then the final chunk with usage."""
    words = result.text.split(" ")
    for start in range(0, len(words), REPLAY_WORDS):
        piece = " ".join(words[start : start + REPLAY_WORDS])
        yield ChatChunk(text=piece if start == 0 else " " + piece)
    yield ChatChunk(finish_reason=result.finish_reason, usage=result.usage, sources=result.sources)
