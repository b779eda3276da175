"""CacheService: what is served, what is stored, what is never stored, and purges."""

from __future__ import annotations

from typing import Any

import pytest
from lockgate.cache.semantic import SemanticCache
from lockgate.cache.service import CacheService
from lockgate.chat import ChatRequest, ChatResult, Usage
from lockgate.policy import CachePolicy

from tests.unit.cache.support import DictExactCache, MemoryIndex, minilm

POLICY = CachePolicy()
ANSWER = ChatResult("Go to Settings > Orders and press Cancel.", "stop", Usage(12, 9))


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class Rig:
    def __init__(self) -> None:
        self.exact = DictExactCache()
        self.index = MemoryIndex()
        self.clock = Clock()
        self.service = CacheService(
            self.exact, SemanticCache(minilm(), self.index), clock=self.clock
        )

    async def store(self, req: ChatRequest, result: ChatResult = ANSWER, **kw: Any) -> str:
        tenant = kw.pop("tenant", "acme")
        alias = kw.pop("alias", "support")
        policy = kw.pop("policy", POLICY)
        rag = kw.pop("rag_version", None)
        return await self.service.store(tenant, alias, "simple", req, policy, rag, result, **kw)

    async def lookup(self, req: ChatRequest, **kw: Any) -> Any:
        tenant = kw.pop("tenant", "acme")
        alias = kw.pop("alias", "support")
        policy = kw.pop("policy", POLICY)
        rag = kw.pop("rag_version", None)
        return await self.service.lookup(tenant, alias, "simple", req, policy, rag, **kw)


def ask(text: str, *, history: list[dict[str, Any]] | None = None, **extra: Any) -> ChatRequest:
    messages = [{"role": "system", "content": "You are the shop's support agent."}]
    messages += history or []
    messages.append({"role": "user", "content": text})
    return ChatRequest.model_validate({"model": "support", "messages": messages, **extra})


@pytest.fixture
def rig() -> Rig:
    return Rig()


async def test_identical_request_is_an_exact_hit(rig: Rig) -> None:
    req = ask("How do I cancel my order?")
    assert await rig.lookup(req) is None
    assert await rig.store(req, model="local/smollm2") == "stored"
    hit = await rig.lookup(ask("How do I cancel my order?", stream=True))
    assert hit is not None and hit.kind == "exact" and hit.similarity is None
    assert hit.result.text == ANSWER.text and hit.result.finish_reason == "stop"
    assert hit.result.usage.completion_tokens == 9
    assert hit.model == "local/smollm2"


async def test_paraphrase_is_a_semantic_hit(rig: Rig) -> None:
    await rig.store(ask("How do I cancel my order?"))
    hit = await rig.lookup(ask("How can I cancel my order?"))
    assert hit is not None and hit.kind == "semantic"
    assert hit.similarity is not None and 0.8 < hit.similarity < 1.0
    assert hit.result.text == ANSWER.text


async def test_wrong_answer_cases_miss(rig: Rig) -> None:
    await rig.store(ask("I want a refund for order 123"))
    assert await rig.lookup(ask("I want a refund for order 456")) is None
    await rig.store(ask("Cancel my subscription"))
    assert await rig.lookup(ask("Don't cancel my subscription")) is None


async def test_tenants_and_aliases_never_see_each_other(rig: Rig) -> None:
    req = ask("How do I cancel my order?")
    await rig.store(req, tenant="acme")
    assert await rig.lookup(req, tenant="globex") is None
    assert await rig.lookup(ask("How can I cancel my order?"), tenant="globex") is None
    assert await rig.lookup(req, alias="sales") is None


async def test_multi_turn_matches_only_the_same_earlier_turns(rig: Rig) -> None:
    turns = [
        {"role": "user", "content": "I bought the Pro plan."},
        {"role": "assistant", "content": "Thanks! Pro is $20 a month."},
    ]
    other = [
        {"role": "user", "content": "I bought the Basic plan."},
        {"role": "assistant", "content": "Thanks! Basic is $5 a month."},
    ]
    await rig.store(ask("How do I cancel it?", history=turns))
    assert await rig.lookup(ask("How can I cancel it?", history=turns)) is not None
    assert await rig.lookup(ask("How do I cancel it?", history=other)) is None
    assert await rig.lookup(ask("How do I cancel it?")) is None


async def test_rag_collection_version_scopes_answers(rig: Rig) -> None:
    req = ask("What is the warranty period?")
    await rig.store(req, rag_version="kb@1")
    assert await rig.lookup(req, rag_version="kb@1") is not None
    assert await rig.lookup(req, rag_version="kb@2") is None
    assert await rig.lookup(ask("How long is the warranty?"), rag_version="kb@2") is None


@pytest.mark.parametrize(
    ("result", "extra", "kw", "outcome"),
    [
        (ChatResult("partial answ", "length"), {}, {}, "truncated"),
        (ChatResult("", "tool_calls", tool_calls=[{"id": "1"}]), {}, {}, "tool_calls"),
        (ChatResult("ok", "stop", tool_calls=[{"id": "1"}]), {}, {}, "tool_calls"),
        (ChatResult("blocked", "content_filter"), {}, {}, "not_finished"),
        (ChatResult("error text", "error"), {}, {}, "not_finished"),
        (ChatResult("   ", "stop"), {}, {}, "empty"),
        (ANSWER, {"n": 2}, {}, "multiple_choices"),
        (ANSWER, {}, {"complete": False}, "incomplete"),
        (ANSWER, {}, {"write": False}, "no_store"),
        (ANSWER, {}, {"policy": CachePolicy(enabled=False)}, "disabled"),
    ],
    ids=["truncated", "tool-call", "tool-call-stop", "content-filter", "error", "empty",
         "n>1", "client-disconnected", "no-store", "disabled"],
)  # fmt: skip
async def test_never_cached(
    rig: Rig, result: ChatResult, extra: dict[str, Any], kw: dict[str, Any], outcome: str
) -> None:
    req = ask("How do I cancel my order?", **extra)
    assert await rig.store(req, result, **kw) == outcome
    assert rig.exact.entries == {} and rig.index.records == {}
    assert await rig.lookup(req) is None


async def test_truncated_answers_are_cached_when_the_policy_asks(rig: Rig) -> None:
    policy = CachePolicy(cache_truncated=True)
    req = ask("Write a long story")
    assert await rig.store(req, ChatResult("Once upon", "length"), policy=policy) == "stored"
    hit = await rig.lookup(req, policy=policy)
    assert hit is not None and hit.result.finish_reason == "length"


async def test_no_cache_skips_the_read_but_not_the_write(rig: Rig) -> None:
    req = ask("How do I cancel my order?")
    await rig.store(req)
    assert await rig.lookup(req, read=False) is None
    assert await rig.lookup(req) is not None


async def test_n_greater_than_one_never_reads(rig: Rig) -> None:
    await rig.store(ask("How do I cancel my order?"))
    assert await rig.lookup(ask("How do I cancel my order?", n=3)) is None


async def test_ttl_holds_even_when_the_backend_keeps_expired_items(rig: Rig) -> None:
    policy = CachePolicy(ttl_s=60)
    await rig.store(ask("How do I cancel my order?"), policy=policy)
    rig.clock.now += 59
    assert await rig.lookup(ask("How do I cancel my order?"), policy=policy) is not None
    rig.clock.now += 1
    assert await rig.lookup(ask("How do I cancel my order?"), policy=policy) is None
    assert await rig.lookup(ask("How can I cancel my order?"), policy=policy) is None
    # the semantic vector that pointed at the expired answer is gone too
    assert rig.index.records == {}


async def test_policy_switches_and_threshold(rig: Rig) -> None:
    await rig.store(ask("How do I cancel my order?"))
    para = ask("How can I cancel my order?")
    assert await rig.lookup(para, policy=CachePolicy(semantic=False)) is None
    assert await rig.lookup(para, policy=CachePolicy(semantic_threshold=0.999)) is None
    assert await rig.lookup(para, policy=CachePolicy(enabled=False)) is None
    assert await rig.lookup(para) is not None


async def test_long_questions_are_only_cached_exactly(rig: Rig) -> None:
    long = "Please summarise the following notes. " + "The meeting covered budgets. " * 40
    await rig.store(ask(long))
    assert rig.index.records == {}
    assert (await rig.lookup(ask(long))).kind == "exact"  # type: ignore[union-attr]


async def test_purge_a_tenant_or_one_alias(rig: Rig) -> None:
    req = ask("How do I cancel my order?")
    await rig.store(req, alias="support")
    await rig.store(req, alias="sales")
    await rig.store(req, tenant="globex")
    assert await rig.service.purge("acme", "sales") == 1
    assert await rig.lookup(req, alias="sales") is None
    assert await rig.lookup(req, alias="support") is not None
    assert await rig.service.purge("acme") == 1
    assert await rig.lookup(req) is None
    assert await rig.lookup(ask("How can I cancel my order?")) is None
    assert await rig.lookup(req, tenant="globex") is not None


async def test_a_failing_backend_is_a_miss_not_an_error(rig: Rig) -> None:
    req = ask("How do I cancel my order?")
    await rig.store(req)
    rig.exact.fail = True
    assert await rig.lookup(req) is None
    assert await rig.store(ask("Where is my parcel?")) == "failed"


async def test_an_entry_owned_by_someone_else_is_never_served(rig: Rig) -> None:
    req = ask("How do I cancel my order?")
    await rig.store(req)
    (entry,) = rig.exact.entries.values()
    entry.tenant = "globex"
    assert await rig.lookup(req) is None
