"""Cheap token estimates, for admission before a provider has counted anything.

A tokenizer per provider would be exact but slow and model-specific; the limiter only needs an
estimate that is close and errs high, because the provider's usage corrects it afterwards.
Four characters per token is the usual English figure; text with few spaces (code, other
scripts, base64) runs denser, so non-ASCII characters count more.
"""

from __future__ import annotations

from lockgate.chat import ChatRequest

MESSAGE_OVERHEAD = 4
"""Role and separators per message, as chat templates add them."""
DEFAULT_OUTPUT_ALLOWANCE = 256
"""Completion tokens assumed when a request sets no `max_tokens`."""


def estimate_text_tokens(text: str) -> int:
    if not text:
        return 0
    non_ascii = sum(1 for ch in text if ord(ch) > 127) if not text.isascii() else 0
    return (len(text) + 3 * non_ascii + 3) // 4


def estimate_prompt_tokens(request: ChatRequest) -> int:
    total = 3
    for message in request.messages:
        total += MESSAGE_OVERHEAD + estimate_text_tokens(message.text())
        if message.tool_calls:
            total += estimate_text_tokens(str(message.tool_calls))
    if request.tools:
        total += estimate_text_tokens(str(request.tools))
    return total


def estimate_tokens(request: ChatRequest, output_allowance: int = DEFAULT_OUTPUT_ALLOWANCE) -> int:
    """Prompt plus the completion the request may ask for: what a tokens-per-minute limit
    admits against."""
    output = request.output_limit or output_allowance
    return estimate_prompt_tokens(request) + output * (request.n or 1)
