from __future__ import annotations

import time

import pytest
from lockgate.chat import ChatRequest
from lockgate.routing.classifier import classify


def request(text: str, **extra: object) -> ChatRequest:
    return ChatRequest.model_validate(
        {"model": "auto", "messages": [{"role": "user", "content": text}], **extra}
    )


@pytest.mark.parametrize(
    "text",
    ["hi!", "What is the capital of France?", "Translate 'good morning' to German.", "thanks"],
)
def test_plain_questions_are_simple(text: str) -> None:
    assert classify(request(text)).tier == "simple"


@pytest.mark.parametrize(
    "text",
    [
        "Fix this: ```python\nprint(x\n```",
        "Solve for x: 3x + 5 = 20",
        "Explain why the sky is blue.",
    ],
)
def test_one_signal_is_medium(text: str) -> None:
    assert classify(request(text)).tier == "medium"


def test_several_signals_are_complex_and_explained() -> None:
    result = classify(
        request(
            "Analyze this algorithm step by step and compare the trade-offs:\n"
            "```python\ndef f(n):\n    return sum(i * i for i in range(n))\n```"
        )
    )
    assert result.tier == "complex"
    assert "code" in result.explain() and "reasoning" in result.explain()


def test_tools_and_depth_raise_the_tier() -> None:
    turns = [{"role": "user" if i % 2 == 0 else "assistant", "content": "ok"} for i in range(15)]
    deep = ChatRequest.model_validate(
        {
            "model": "auto",
            "messages": turns,
            "tools": [{"type": "function", "function": {"name": "f"}}],
        }
    )
    result = classify(deep)
    assert result.tier in ("medium", "complex")
    assert "tools" in result.explain() and "conversation depth" in result.explain()


def test_long_input_counts() -> None:
    assert classify(request("word " * 2000)).tier != "simple"


def test_classification_is_well_under_a_millisecond() -> None:
    hard = request("Explain step by step: ```def f(): pass``` and prove 2+2=4. " * 20)
    runs = 2000
    started = time.perf_counter()
    for _ in range(runs):
        classify(hard)
    per_call = (time.perf_counter() - started) / runs
    assert per_call < 0.001
