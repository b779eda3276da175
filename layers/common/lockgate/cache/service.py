"""The cache facade the pipeline calls: exact first, then semantic; store only safe answers.

The cache never fails a request: a backend error on lookup is a miss and on store is a skipped
write, both logged (without the request's text). What may be stored is decided here, not by the
caller, so a pipeline bug cannot put an error, a truncated or a tool-call answer in front of
the next user.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from lockgate.cache.keys import SemanticScope, exact_key, namespace_prefix, semantic_scope
from lockgate.cache.ports import CacheEntry, ExactCache
from lockgate.cache.semantic import SemanticCache
from lockgate.chat import ChatRequest, ChatResult, Usage
from lockgate.policy import CachePolicy
from lockgate.rag.model import Sources

log = logging.getLogger("lockgate.cache")

MAX_SEMANTIC_CHARS = 1000
"""Longer questions are only cached exactly. The embedding model reads 256 tokens (about 1,000
characters of English): two long questions differing after that would embed alike."""

StoreOutcome = Literal[
    "stored",
    "disabled",
    "no_store",
    "incomplete",
    "multiple_choices",
    "tool_calls",
    "truncated",
    "not_finished",
    "empty",
    "failed",
]


@dataclass(frozen=True, slots=True)
class CachedAnswer:
    result: ChatResult
    kind: Literal["exact", "semantic"]
    similarity: float | None
    """Cosine between the question and the cached one, for semantic hits."""
    model: str | None = None
    """The target ("provider/model") that produced the answer, when the store was told."""


class CacheService:
    def __init__(
        self,
        exact: ExactCache,
        semantic: SemanticCache | None = None,
        *,
        clock: Callable[[], float] = time.time,
        max_semantic_chars: int = MAX_SEMANTIC_CHARS,
    ) -> None:
        self._exact = exact
        self._semantic = semantic
        self._clock = clock
        self._max_semantic_chars = max_semantic_chars

    async def lookup(
        self,
        tenant: str,
        alias: str,
        tier: str,
        request: ChatRequest,
        policy: CachePolicy,
        rag_version: str | None = None,
        *,
        read: bool = True,
    ) -> CachedAnswer | None:
        """The cached answer for this request, or None. `read=False` is `no-cache`."""
        if not read or not policy.enabled or (request.n or 1) > 1:
            return None
        key = exact_key(tenant, alias, tier, request, rag_version=rag_version)
        found = await self._get(key, tenant, alias)
        if found is not None:
            result, model = found
            return CachedAnswer(result, "exact", None, model)
        scope = self._scope(tenant, alias, tier, request, policy, rag_version)
        if scope is None or self._semantic is None:
            return None
        try:
            hit = await self._semantic.lookup(
                scope.namespace, scope.text, threshold=policy.semantic_threshold
            )
        except Exception as exc:
            log.warning("semantic cache lookup failed: %s", type(exc).__name__)
            return None
        if hit is None:
            return None
        found = await self._get(str(hit.payload.get("key", "")), tenant, alias)
        if found is None:
            # The answer expired or was purged; the vector outlived it.
            await self._forget(scope.namespace, hit.id)
            return None
        result, model = found
        return CachedAnswer(result, "semantic", hit.similarity, model)

    async def store(
        self,
        tenant: str,
        alias: str,
        tier: str,
        request: ChatRequest,
        policy: CachePolicy,
        rag_version: str | None,
        result: ChatResult,
        *,
        write: bool = True,
        complete: bool = True,
        model: str | None = None,
    ) -> StoreOutcome:
        """Stores a finished answer if it is safe to serve again; says why when it is not.

        `write=False` is `no-store`; `complete=False` means the client went away before the
        end (an answer nobody saw whole is not a known-good answer).
        """
        refusal = self.refusal(request, result, policy, write=write, complete=complete)
        if refusal is not None:
            return refusal
        key = exact_key(tenant, alias, tier, request, rag_version=rag_version)
        now = self._clock()
        entry = CacheEntry(
            key=key,
            tenant=tenant,
            alias=alias,
            value=_encode(result, model, now),
            expires_at=now + policy.ttl_s,
        )
        try:
            await self._exact.put(entry)
        except Exception as exc:
            log.warning("exact cache write failed: %s", type(exc).__name__)
            return "failed"
        scope = self._scope(tenant, alias, tier, request, policy, rag_version)
        if scope is not None and self._semantic is not None:
            try:
                await self._semantic.store(scope.namespace, scope.text, key, {"key": key})
            except Exception as exc:
                log.warning("semantic cache write failed: %s", type(exc).__name__)
        return "stored"

    @staticmethod
    def refusal(
        request: ChatRequest,
        result: ChatResult,
        policy: CachePolicy,
        *,
        write: bool = True,
        complete: bool = True,
    ) -> StoreOutcome | None:
        """Why this answer must not be cached, or None when it may be."""
        if not policy.enabled:
            return "disabled"
        if not write:
            return "no_store"
        if not complete:
            return "incomplete"
        if (request.n or 1) > 1:
            return "multiple_choices"
        if result.tool_calls or result.finish_reason in ("tool_calls", "function_call"):
            return "tool_calls"
        if result.finish_reason == "length":
            return None if policy.cache_truncated and result.text else "truncated"
        if result.finish_reason != "stop":
            return "not_finished"  # content_filter, error, or a stream cut before its end
        if not result.text.strip():
            return "empty"
        return None

    async def purge(self, tenant: str, alias: str | None = None) -> int:
        """Removes a tenant's answers (one alias's when given); returns how many answers."""
        removed = await self._exact.purge(tenant, alias)
        if self._semantic is not None:
            await self._semantic.purge(namespace_prefix(tenant, alias))
        return removed

    def _scope(
        self,
        tenant: str,
        alias: str,
        tier: str,
        request: ChatRequest,
        policy: CachePolicy,
        rag_version: str | None,
    ) -> SemanticScope | None:
        if not policy.semantic or self._semantic is None:
            return None
        scope = semantic_scope(
            tenant,
            alias,
            tier,
            request,
            rag_version=rag_version,
            embedder=self._semantic.embedder.name,
        )
        if scope is None or len(scope.text) > self._max_semantic_chars:
            return None
        return scope

    async def _get(self, key: str, tenant: str, alias: str) -> tuple[ChatResult, str | None] | None:
        if not key:
            return None
        try:
            entry = await self._exact.get(key)
        except Exception as exc:
            log.warning("exact cache read failed: %s", type(exc).__name__)
            return None
        # Expiry and ownership are checked here as well as in the adapters: a backend that
        # deletes lazily (DynamoDB TTL) or a key collision must never serve an answer.
        if entry is None or entry.expires_at <= self._clock():
            return None
        if entry.tenant != tenant or entry.alias != alias:
            log.error("exact cache entry owner mismatch; not served")
            return None
        try:
            return _decode(entry.value)
        except (ValueError, KeyError, TypeError):
            log.warning("unreadable exact cache entry; not served")
            return None

    async def _forget(self, namespace: str, entry_id: str) -> None:
        if self._semantic is None:
            return
        try:
            await self._semantic.forget(namespace, entry_id)
        except Exception as exc:
            log.warning("semantic cache delete failed: %s", type(exc).__name__)


_FORMAT = 1


def _encode(result: ChatResult, model: str | None, now: float) -> bytes:
    body: dict[str, Any] = {
        "f": _FORMAT,
        "text": result.text,
        "finish_reason": result.finish_reason,
        "usage": [result.usage.prompt_tokens, result.usage.completion_tokens],
        "model": model,
        "at": now,
    }
    if result.sources is not None:
        body["sources"] = result.sources
        if facts := getattr(result.sources, "facts", None):
            body["grounding"] = facts
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _decode(value: bytes) -> tuple[ChatResult, str | None]:
    body = json.loads(value)
    if body.get("f") != _FORMAT:
        raise ValueError("unknown cache entry format")
    prompt, completion = body["usage"]
    result = ChatResult(
        text=str(body["text"]),
        finish_reason=str(body["finish_reason"]),
        usage=Usage(int(prompt), int(completion)),
        sources=Sources(body["sources"], **body.get("grounding", {}))
        if body.get("sources") is not None
        else None,
    )
    model = body.get("model")
    return result, str(model) if model is not None else None
