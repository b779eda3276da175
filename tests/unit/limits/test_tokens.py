from __future__ import annotations

from lockgate.chat import ChatRequest
from lockgate.limits.tokens import estimate_prompt_tokens, estimate_text_tokens, estimate_tokens


def test_estimate_grows_with_text_and_counts_the_output_allowance() -> None:
    short = ChatRequest(model="a", messages=[{"role": "user", "content": "hi"}])
    long = ChatRequest(model="a", messages=[{"role": "user", "content": "word " * 400}])
    assert estimate_prompt_tokens(short) < 10
    assert 450 <= estimate_prompt_tokens(long) <= 550  # ~400 tokens of English, erring high
    capped = long.model_copy(update={"max_tokens": 50})
    assert estimate_tokens(capped) == estimate_prompt_tokens(long) + 50


def test_dense_scripts_count_more_per_character() -> None:
    assert estimate_text_tokens("日本語のテキスト" * 10) > estimate_text_tokens("abcdefgh" * 10)
