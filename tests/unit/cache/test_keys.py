"""Exact keys cover everything that changes the answer; semantic scopes separate tenants,
aliases, system prompts, tools, parameters and conversation prefixes."""

from __future__ import annotations

from typing import Any

import pytest
from lockgate.cache.keys import exact_key, namespace_prefix, semantic_scope
from lockgate.chat import ChatRequest


def request(**overrides: Any) -> ChatRequest:
    body: dict[str, Any] = {
        "model": "auto",
        "messages": [
            {"role": "system", "content": "You are a helpful support agent."},
            {"role": "user", "content": "How do I reset my password?"},
        ],
    }
    body.update(overrides)
    return ChatRequest.model_validate(body)


def key(req: ChatRequest, tenant: str = "acme", alias: str = "fast", tier: str = "simple") -> str:
    return exact_key(tenant, alias, tier, req)


BASE = key(request())

CHANGES_THE_ANSWER: list[tuple[str, dict[str, Any]]] = [
    ("temperature", {"temperature": 0.2}),
    ("top_p", {"top_p": 0.5}),
    ("max_tokens", {"max_tokens": 50}),
    ("max_completion_tokens", {"max_completion_tokens": 50}),
    ("seed", {"seed": 7}),
    ("stop", {"stop": ["\n"]}),
    ("n", {"n": 2}),
    ("logit_bias", {"logit_bias": {"50256": -100}}),
    ("presence_penalty", {"presence_penalty": 0.5}),
    ("frequency_penalty", {"frequency_penalty": 0.5}),
    ("response_format", {"response_format": {"type": "json_object"}}),
    (
        "tools",
        {"tools": [{"type": "function", "function": {"name": "reset", "parameters": {}}}]},
    ),
    ("tool_choice", {"tool_choice": "none"}),
    ("unknown pass-through field", {"reasoning_effort": "high"}),
    (
        "system prompt",
        {
            "messages": [
                {"role": "system", "content": "You are a pirate."},
                {"role": "user", "content": "How do I reset my password?"},
            ]
        },
    ),
    (
        "last message",
        {
            "messages": [
                {"role": "system", "content": "You are a helpful support agent."},
                {"role": "user", "content": "How do I reset my PIN?"},
            ]
        },
    ),
    (
        "message name",
        {
            "messages": [
                {"role": "system", "content": "You are a helpful support agent."},
                {"role": "user", "content": "How do I reset my password?", "name": "bob"},
            ]
        },
    ),
]


@pytest.mark.parametrize(
    ("field", "change"), CHANGES_THE_ANSWER, ids=[c[0] for c in CHANGES_THE_ANSWER]
)
def test_each_parameter_changes_the_exact_key(field: str, change: dict[str, Any]) -> None:
    assert key(request(**change)) != BASE, field


def test_tenant_alias_tier_and_rag_version_change_the_key() -> None:
    req = request()
    keys = {
        key(req, tenant="acme"),
        key(req, tenant="globex"),
        key(req, alias="smart"),
        key(req, tier="complex"),
        exact_key("acme", "fast", "simple", req, rag_version="docs@3"),
        exact_key("acme", "fast", "simple", req, rag_version="docs@4"),
    }
    assert len(keys) == 6


def test_framing_and_end_user_tag_do_not_change_the_key() -> None:
    same = [
        request(stream=True),
        request(stream=True, stream_options={"include_usage": True}),
        request(model="fast"),
        request(user="end-user-42"),
        request(lockgate={"cache": "no-store"}),
        request(temperature=None),
    ]
    assert {key(r) for r in same} == {BASE}


def test_key_is_stable_across_field_order_and_int_float_spelling() -> None:
    a = ChatRequest.model_validate(
        {"messages": [{"role": "user", "content": "hi"}], "model": "m", "temperature": 1,
         "extra": {"b": 1, "a": 2}}
    )  # fmt: skip
    b = ChatRequest.model_validate(
        {"model": "m", "temperature": 1.0, "extra": {"a": 2, "b": 1},
         "messages": [{"content": "hi", "role": "user"}]}
    )  # fmt: skip
    assert key(a) == key(b)
    assert len(key(a)) == 64 and int(key(a), 16) >= 0


def test_tenants_never_collide_even_with_crafted_ids() -> None:
    req = request()
    assert exact_key("a", "b/c", "simple", req) != exact_key("a/b", "c", "simple", req)
    ns1 = semantic_scope("a", "b/c", "simple", req)
    ns2 = semantic_scope("a/b", "c", "simple", req)
    assert ns1 and ns2 and ns1.namespace != ns2.namespace
    assert not ns1.namespace.startswith(namespace_prefix("a/b"))
    assert ns1.namespace.startswith(namespace_prefix("a"))
    assert not semantic_scope("ab", "x", "simple", req).namespace.startswith(  # type: ignore[union-attr]
        namespace_prefix("a")
    )


def test_the_key_holds_no_request_text_or_secret() -> None:
    secret = "sk-live-abcdef123456"
    req = request(messages=[{"role": "user", "content": f"my key is {secret}"}])
    digest = key(req)
    scope = semantic_scope("acme", "fast", "simple", req)
    assert secret not in digest
    assert scope is not None and secret not in scope.namespace


def test_empty_scope_parts_are_refused() -> None:
    with pytest.raises(ValueError, match="tenant"):
        exact_key("", "fast", "simple", request())
    with pytest.raises(ValueError, match="tenant"):
        namespace_prefix("")


# --- semantic scope -----------------------------------------------------------------------------


def scope_of(req: ChatRequest, **kw: Any) -> str:
    scope = semantic_scope(kw.pop("tenant", "acme"), kw.pop("alias", "fast"), "simple", req, **kw)
    assert scope is not None
    return scope.namespace


def test_only_the_last_user_message_is_embedded_and_the_rest_scopes() -> None:
    scope = semantic_scope("acme", "fast", "simple", request())
    assert scope is not None
    assert scope.text == "How do I reset my password?"
    assert scope.namespace.startswith("acme/fast/")
    # a paraphrase of the last message lands in the same namespace
    para = request(
        messages=[
            {"role": "system", "content": "You are a helpful support agent."},
            {"role": "user", "content": "How can I change my password?"},
        ]
    )
    assert scope_of(para) == scope.namespace


@pytest.mark.parametrize(
    "change",
    [
        {"messages": [{"role": "system", "content": "Be terse."},
                      {"role": "user", "content": "How do I reset my password?"}]},
        {"tools": [{"type": "function", "function": {"name": "reset", "parameters": {}}}]},
        {"tool_choice": "required"},
        {"response_format": {"type": "json_object"}},
        {"temperature": 1.5},
        {"max_tokens": 5},
        {"seed": 1},
    ],
    ids=["system", "tools", "tool_choice", "response_format", "temperature", "max_tokens", "seed"],
)  # fmt: skip
def test_context_changes_the_semantic_namespace(change: dict[str, Any]) -> None:
    assert scope_of(request(**change)) != scope_of(request())


def test_tenant_alias_rag_and_embedder_change_the_namespace() -> None:
    req = request()
    spaces = {
        scope_of(req),
        scope_of(req, tenant="globex"),
        scope_of(req, alias="smart"),
        scope_of(req, rag_version="docs@2"),
        scope_of(req, embedder="openai/text-embedding-3-small@1536"),
    }
    assert len(spaces) == 5


def test_multi_turn_requests_match_only_the_same_earlier_turns() -> None:
    def convo(first_answer: str, question: str) -> ChatRequest:
        return request(
            messages=[
                {"role": "user", "content": "Tell me about your Pro plan."},
                {"role": "assistant", "content": first_answer},
                {"role": "user", "content": question},
            ]
        )

    a = convo("Pro costs $20 a month.", "How do I cancel it?")
    b = convo("Pro costs $20 a month.", "How can I cancel it?")
    c = convo("Pro costs $50 a month.", "How do I cancel it?")
    single = request(messages=[{"role": "user", "content": "How do I cancel it?"}])
    assert scope_of(a) == scope_of(b)
    assert scope_of(a) != scope_of(c)
    assert scope_of(a) != scope_of(single)


def test_no_semantic_scope_when_the_last_turn_is_not_plain_user_text() -> None:
    tool_result = request(
        messages=[
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "tool_calls": [{"id": "1", "type": "function",
             "function": {"name": "w", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "1", "content": "sunny"},
        ]
    )  # fmt: skip
    image = request(
        messages=[{"role": "user", "content": [
            {"type": "text", "text": "What is in this picture?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
        ]}]
    )  # fmt: skip
    blank = request(messages=[{"role": "user", "content": "   "}])
    for req in (tool_result, image, blank):
        assert semantic_scope("acme", "fast", "simple", req) is None
    parts = request(
        messages=[{"role": "user", "content": [{"type": "text", "text": "Hello there"}]}]
    )
    assert semantic_scope("acme", "fast", "simple", parts) is not None
