"""What a call cost, from the policy's price table (USD per million tokens)."""

from __future__ import annotations

from collections.abc import Mapping

from lockgate.policy import Price


def cost_usd(
    prices: Mapping[str, Price], target: str | None, prompt_tokens: int, completion_tokens: int
) -> float:
    """Unpriced targets (local models, a missing entry) cost nothing."""
    price = prices.get(target) if target else None
    if price is None:
        return 0.0
    return (prompt_tokens * price.input + completion_tokens * price.output) / 1_000_000
