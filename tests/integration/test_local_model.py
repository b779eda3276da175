"""The embedded default end to end: the real SmolLM2 model under llama.cpp, no network."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import anthropic
import httpx
import openai
import pytest

from tests.support.servers import RunningGateway, gateway

pytestmark = pytest.mark.slow

LOCAL = "local/smollm2-135m-instruct"
QUESTION = [{"role": "user", "content": "Name one colour of the sky."}]


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    with gateway(None, tmp_path_factory.mktemp("local")) as running:
        yield running


@pytest.fixture
def client(gw: RunningGateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.v1, api_key=gw.api_key, max_retries=0, timeout=120)


def test_openai_sdk_gets_a_real_answer(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="auto",
        messages=QUESTION,
        max_tokens=24,
        temperature=0,  # type: ignore[arg-type]
    )
    completion = raw.parse()
    assert raw.headers["x-lockgate-model"] == LOCAL
    assert raw.headers["x-lockgate-tier"] == "simple"
    assert len(completion.choices[0].message.content or "") > 3
    assert completion.choices[0].finish_reason in ("stop", "length")
    assert completion.usage and completion.usage.prompt_tokens > 5


def test_openai_sdk_streams_tokens(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="local",
        messages=QUESTION,  # type: ignore[arg-type]
        max_tokens=24,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    pieces = [
        c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content
    ]
    assert len(pieces) > 2
    assert chunks[-1].usage and chunks[-1].usage.completion_tokens >= len(pieces) - 1


def test_anthropic_sdk_streams_and_not(gw: RunningGateway) -> None:
    client = anthropic.Anthropic(
        base_url=gw.base_url, api_key=gw.api_key, max_retries=0, timeout=120
    )
    message = client.messages.create(model="auto", max_tokens=16, messages=QUESTION)  # type: ignore[arg-type]
    assert message.content[0].type == "text" and message.content[0].text
    with client.messages.stream(model="local", max_tokens=16, messages=QUESTION) as stream:  # type: ignore[arg-type]
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text and final.stop_reason in ("end_turn", "max_tokens")


def test_generation_does_not_block_other_requests(
    gw: RunningGateway, client: openai.OpenAI
) -> None:
    first_token = threading.Event()

    def generate() -> None:
        stream = client.chat.completions.create(
            model="local",
            messages=[{"role": "user", "content": "Write a long story about a cat."}],
            max_tokens=120,
            stream=True,
        )
        for _ in stream:
            first_token.set()

    worker = threading.Thread(target=generate)
    worker.start()
    assert first_token.wait(60)
    slowest = 0.0
    for _ in range(5):
        started = time.perf_counter()
        assert httpx.get(f"{gw.base_url}/health").status_code == 200
        slowest = max(slowest, time.perf_counter() - started)
    worker.join(120)
    assert slowest < 0.5


def test_abandoned_stream_frees_the_model(gw: RunningGateway, client: openai.OpenAI) -> None:
    with httpx.stream(
        "POST",
        f"{gw.v1}/chat/completions",
        json={"model": "local", "messages": QUESTION, "max_tokens": 200, "stream": True},
        headers={"authorization": f"Bearer {gw.api_key}"},
        timeout=60,
    ) as response:
        next(response.iter_lines())
    started = time.perf_counter()
    reply = client.chat.completions.create(model="local", messages=QUESTION, max_tokens=4)  # type: ignore[arg-type]
    assert reply.choices[0].message.content is not None
    assert time.perf_counter() - started < 30


@pytest.fixture(scope="module")
def support(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    """The embedded default as `make serve` runs it: the sample knowledge base indexed."""
    kb = Path(__file__).parents[2] / "samples" / "support-kb" / "docs"
    with gateway(None, tmp_path_factory.mktemp("support"), sample_kb=kb) as running:
        yield running


def test_support_bot_answers_from_the_sample_knowledge_base(support: RunningGateway) -> None:
    client = openai.OpenAI(base_url=support.v1, api_key=support.api_key, max_retries=0, timeout=120)
    completion = client.chat.completions.create(
        model="support-bot",
        messages=[{"role": "user", "content": "How can I get a refund for my order?"}],
        max_tokens=60,
    )
    sources = (completion.model_extra or {})["lockgate"]["sources"]
    assert completion.choices[0].message.content
    assert sources and all(s["uri"].endswith(".md") for s in sources)
    refund = client.chat.completions.create(
        model="support-bot",
        messages=[
            {"role": "user", "content": "How many days do I have to return a product for a refund?"}
        ],
    )
    extension = (refund.model_extra or {})["lockgate"]
    assert extension["answer_mode"] == "extractive"  # SmolLM2-135M cannot compose it
    assert "30 days" in (refund.choices[0].message.content or "")
    assert "30 days" in extension["sources"][0]["snippet"]
    unknown = client.chat.completions.create(
        model="support-bot",
        messages=[{"role": "user", "content": "Who won the 1954 football world cup final?"}],
    )
    assert (unknown.model_extra or {})["lockgate"]["sources"] == []
    assert "know" in (unknown.choices[0].message.content or "").lower()
