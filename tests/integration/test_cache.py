"""Caching through the HTTP API with the real SDKs, the real embedder and embedded stores."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest
from lockgate.tenants import Tenant, hash_key

from tests.support.servers import RunningGateway, gateway, mock_policy

OTHER_TENANT_KEY = "lg-other-tenant-key-0123456789"


@pytest.fixture(scope="module")
def gw(upstream: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    policy = mock_policy(
        upstream,
        {
            "fast": {"targets": ["mock/gpt-fast"]},
            "nocache": {"targets": ["mock/gpt-nc"], "cache": {"enabled": False}},
            "exactonly": {"targets": ["mock/gpt-eo"], "cache": {"semantic": False}},
            "slow": {"targets": ["mock/gpt-slow+tps=40+tokens=60"]},
        },
        cache={"enabled": True, "ttl_s": 600},
    )
    with gateway(policy, tmp_path_factory.mktemp("cache")) as running:
        running.app.state.container.keys.add(hash_key(OTHER_TENANT_KEY), Tenant("other"))
        yield running


@pytest.fixture
def client(gw: RunningGateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.v1, api_key=gw.api_key, max_retries=0)


def ask(client: openai.OpenAI, text: str, model: str = "fast", **extra: Any) -> Any:
    return client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": text}], **extra
    )


def upstream_count(upstream: str, model: str = "gpt-fast") -> int:
    counts: dict[str, int] = httpx.get(f"{upstream}/_mock/stats").json()["requests"]
    return counts.get(model, 0)


def test_identical_request_is_an_exact_hit(client: openai.OpenAI, upstream: str) -> None:
    first = ask(client, "What are your opening hours on Sunday?")
    before = upstream_count(upstream)
    second = ask(client, "What are your opening hours on Sunday?")
    assert first.headers["x-lockgate-cache"] == "miss"
    assert second.headers["x-lockgate-cache"] == "exact"
    assert second.headers["x-lockgate-model"] == "mock/gpt-fast"
    assert upstream_count(upstream) == before
    assert second.parse().choices[0].message.content == first.parse().choices[0].message.content


def test_paraphrase_is_a_semantic_hit(client: openai.OpenAI) -> None:
    first = ask(client, "How do I reset my account password?")
    second = ask(client, "How can I reset my account password?")
    assert first.headers["x-lockgate-cache"] == "miss"
    assert second.headers["x-lockgate-cache"] == "semantic"
    assert 0.9 < float(second.headers["x-lockgate-cache-similarity"]) <= 1.0
    assert second.parse().choices[0].message.content == first.parse().choices[0].message.content


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("I want a refund for order 123", "I want a refund for order 456"),
        ("Please cancel my order", "Please don't cancel my order"),
        ("What is the weather in NYC today?", "What is the weather in LA today?"),
    ],
)
def test_near_misses_are_not_served(client: openai.OpenAI, first: str, second: str) -> None:
    ask(client, first)
    assert ask(client, second).headers["x-lockgate-cache"] == "miss"


def test_streaming_request_gets_a_cached_answer_as_sse(client: openai.OpenAI) -> None:
    text = ask(client, "Tell me about the warranty terms").parse().choices[0].message.content
    with client.chat.completions.with_streaming_response.create(
        model="fast",
        messages=[{"role": "user", "content": "Tell me about the warranty terms"}],
        stream=True,
        stream_options={"include_usage": True},
    ) as response:
        assert response.headers["x-lockgate-cache"] == "exact"
        lines = [line for line in response.iter_lines() if line]
    assert lines[-1] == "data: [DONE]" and len(lines) > 3
    chunks = list(
        client.chat.completions.create(
            model="fast",
            messages=[{"role": "user", "content": "Tell me about the warranty terms"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == text
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


def test_anthropic_route_replays_cached_answers(gw: RunningGateway) -> None:
    client = anthropic.Anthropic(base_url=gw.base_url, api_key=gw.api_key, max_retries=0)
    question = [{"role": "user", "content": "Which payment methods do you accept?"}]
    first = client.messages.create(model="fast", max_tokens=64, messages=question)  # type: ignore[arg-type]
    with client.messages.stream(model="fast", max_tokens=64, messages=question) as stream:  # type: ignore[arg-type]
        text = "".join(stream.text_stream)
        assert stream.response.headers["x-lockgate-cache"] == "exact"
    assert text == first.content[0].text  # type: ignore[union-attr]


def test_tenants_never_share_entries(gw: RunningGateway, client: openai.OpenAI) -> None:
    ask(client, "Do you ship to Norway?")
    other = openai.OpenAI(base_url=gw.v1, api_key=OTHER_TENANT_KEY, max_retries=0)
    assert ask(other, "Do you ship to Norway?").headers["x-lockgate-cache"] == "miss"
    assert ask(other, "Do you ship to Norway?").headers["x-lockgate-cache"] == "exact"


def test_conversation_prefix_scopes_hits(client: openai.OpenAI) -> None:
    def turns(earlier: str) -> list[dict[str, str]]:
        return [
            {"role": "user", "content": earlier},
            {"role": "assistant", "content": "Sure."},
            {"role": "user", "content": "And how long does it take?"},
        ]

    first = client.chat.completions.with_raw_response.create(
        model="fast", messages=turns("I want to return shoes")
    )  # type: ignore[arg-type]
    same = client.chat.completions.with_raw_response.create(
        model="fast", messages=turns("I want to return shoes")
    )  # type: ignore[arg-type]
    other = client.chat.completions.with_raw_response.create(
        model="fast", messages=turns("I want to order a laptop")
    )  # type: ignore[arg-type]
    assert first.headers["x-lockgate-cache"] == "miss"
    assert same.headers["x-lockgate-cache"] == "exact"
    assert other.headers["x-lockgate-cache"] == "miss"


def test_parameters_that_change_the_answer_change_the_key(client: openai.OpenAI) -> None:
    ask(client, "Suggest a name for a cat")
    assert (
        ask(client, "Suggest a name for a cat", temperature=1.5).headers["x-lockgate-cache"]
        == "miss"
    )
    assert ask(client, "Suggest a name for a cat", seed=7).headers["x-lockgate-cache"] == "miss"


def test_cache_control_header_and_body_extension(client: openai.OpenAI, upstream: str) -> None:
    ask(client, "Is there a student discount?")
    fresh = ask(client, "Is there a student discount?", extra_headers={"cache-control": "no-cache"})
    assert fresh.headers["x-lockgate-cache"] == "miss"
    ask(client, "Is gift wrapping available?", extra_body={"lockgate": {"cache": "no-store"}})
    assert ask(client, "Is gift wrapping available?").headers["x-lockgate-cache"] == "miss"
    ask(client, "Can I change my address?", extra_headers={"cache-control": "no-store"})
    assert ask(client, "Can I change my address?").headers["x-lockgate-cache"] == "miss"


def test_alias_policy_turns_caching_off_or_to_exact(client: openai.OpenAI) -> None:
    ask(client, "What colours does it come in?", model="nocache")
    again = ask(client, "What colours does it come in?", model="nocache")
    assert "x-lockgate-cache" not in again.headers
    ask(client, "How do I update my billing email?", model="exactonly")
    paraphrase = ask(client, "How can I update my billing email?", model="exactonly")
    assert paraphrase.headers["x-lockgate-cache"] == "miss"


def test_unsafe_answers_are_never_cached(client: openai.OpenAI) -> None:
    truncated = ask(client, "Describe the product line in detail", max_tokens=2)
    assert truncated.parse().choices[0].finish_reason == "length"
    again = ask(client, "Describe the product line in detail", max_tokens=2)
    assert again.headers["x-lockgate-cache"] == "miss"
    tools = [
        {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
    ]
    ask(client, "what is the weather in Rome?", tools=tools)
    assert (
        ask(client, "what is the weather in Rome?", tools=tools).headers["x-lockgate-cache"]
        == "miss"
    )
    ask(client, "Give me two slogans", n=2)
    assert ask(client, "Give me two slogans", n=2).headers["x-lockgate-cache"] == "miss"


def test_errors_are_not_cached(gw: RunningGateway, upstream: str) -> None:
    client = openai.OpenAI(base_url=gw.v1, api_key=gw.api_key, max_retries=0)
    with pytest.raises(openai.APIStatusError):
        client.chat.completions.create(
            model="fast", messages=[{"role": "user", "content": "x"}], extra_body={"temperature": 3}
        )  # type: ignore[arg-type]
    assert ask(client, "x").headers["x-lockgate-cache"] == "miss"


def test_abandoned_stream_is_not_cached(gw: RunningGateway, client: openai.OpenAI) -> None:
    body = {
        "model": "slow",
        "messages": [{"role": "user", "content": "A question nobody waits for"}],
        "stream": True,
    }
    with httpx.stream(
        "POST",
        f"{gw.v1}/chat/completions",
        json=body,
        headers={"authorization": f"Bearer {gw.api_key}"},
    ) as response:
        next(response.iter_lines())
    assert (
        ask(client, "A question nobody waits for", model="slow").headers["x-lockgate-cache"]
        == "miss"
    )


def test_purge_removes_the_callers_entries(gw: RunningGateway, client: openai.OpenAI) -> None:
    ask(client, "Where is my parcel?")
    assert ask(client, "Where is my parcel?").headers["x-lockgate-cache"] == "exact"
    purged = httpx.delete(
        f"{gw.v1}/cache",
        params={"alias": "fast"},
        headers={"authorization": f"Bearer {gw.api_key}"},
    )
    assert purged.status_code == 200 and purged.json()["purged"] >= 1
    assert ask(client, "Where is my parcel?").headers["x-lockgate-cache"] == "miss"
