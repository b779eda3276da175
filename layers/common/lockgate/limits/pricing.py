"""What a call cost, from the policy's price table (USD per million tokens).

Prompt tokens split three ways, as providers bill them: tokens read from the provider's prompt
cache, tokens written to it, and the rest at the plain input rate.
"""

from __future__ import annotations

from collections.abc import Mapping

from lockgate.policy import Price


def cost_usd(
    prices: Mapping[str, Price],
    target: str | None,
    prompt_tokens: int,
    completion_tokens: int,
    *,
    cache_read_tokens: int = 0,
    cache_write_tokens: int = 0,
) -> float:
    """`prompt_tokens` includes the cache reads and writes. Unpriced targets (local models,
    a missing entry) cost nothing."""
    price = prices.get(target) if target else None
    if price is None:
        return 0.0
    read = max(0, cache_read_tokens)
    write = max(0, cache_write_tokens)
    plain = max(0, prompt_tokens - read - write)
    read_rate = price.input if price.cache_read is None else price.cache_read
    write_rate = price.input if price.cache_write is None else price.cache_write
    micro = (
        plain * price.input
        + read * read_rate
        + write * write_rate
        + max(0, completion_tokens) * price.output
    )
    return micro / 1_000_000
