"""Costs that match the provider's bill: cache reads and writes at their own rates.

The figures are the providers' published arithmetic, reproduced from their usage objects:
real `anthropic` / `openai` SDK response models, translated by the gateway's own code, priced
by `cost_usd`, and accounted by the ledger on real SQLite.
"""

from __future__ import annotations

from pathlib import Path

import anthropic.types
import pytest
from lockgate.limits.pricing import cost_usd
from lockgate.limits.usage import UsageLedger
from lockgate.policy import Price
from lockgate.providers.anthropic.translate import result_from
from lockgate.providers.bedrock.translate import usage_from as bedrock_usage
from lockgate.providers.openai.translate import usage_from as openai_usage
from lockgate.stores.embedded.counters import SqliteUsageStore

# Claude Sonnet 4 as Anthropic lists it (USD per million tokens): base input $3, 5-minute
# cache writes $3.75 (1.25x), cache hits $0.30 (0.1x), output $15.
SONNET = Price(input=3.0, output=15.0, cache_write=3.75, cache_read=0.30)
# GPT-4o as OpenAI lists it: input $2.50, cached input $1.25, output $10.
GPT4O = Price(input=2.5, output=10.0, cache_read=1.25)
PRICES = {"anthropic/claude-sonnet-4": SONNET, "openai/gpt-4o": GPT4O}


def anthropic_message() -> anthropic.types.Message:
    """A Messages response whose prompt was 2,000 fresh tokens, 10,000 written to the cache
    and 50,000 read from it, with 1,000 tokens of output."""
    return anthropic.types.Message.model_validate(
        {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4",
            "content": [{"type": "text", "text": "ok"}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {
                "input_tokens": 2_000,
                "cache_creation_input_tokens": 10_000,
                "cache_read_input_tokens": 50_000,
                "output_tokens": 1_000,
            },
        }
    )


def test_anthropic_invoice_for_a_mixed_cached_request() -> None:
    usage = result_from(anthropic_message()).usage
    assert (usage.prompt_tokens, usage.cache_write_tokens, usage.cache_read_tokens) == (
        62_000,
        10_000,
        50_000,
    )
    cost = cost_usd(
        PRICES,
        "anthropic/claude-sonnet-4",
        usage.prompt_tokens,
        usage.completion_tokens,
        cache_read_tokens=usage.cache_read_tokens,
        cache_write_tokens=usage.cache_write_tokens,
    )
    # 2,000 x $3 + 10,000 x $3.75 + 50,000 x $0.30 + 1,000 x $15, per million tokens.
    assert cost == pytest.approx(0.0735, abs=1e-12)
    # Priced as if nothing were cached, the same request would be billed $0.201.
    flat = cost_usd(PRICES, "anthropic/claude-sonnet-4", 62_000, 1_000)
    assert flat == pytest.approx(0.201)


def test_openai_cached_prompt_tokens() -> None:
    usage = openai_usage(
        {
            "prompt_tokens": 10_000,
            "completion_tokens": 500,
            "prompt_tokens_details": {"cached_tokens": 8_192},
        }
    )
    cost = cost_usd(
        PRICES,
        "openai/gpt-4o",
        usage.prompt_tokens,
        usage.completion_tokens,
        cache_read_tokens=usage.cache_read_tokens,
    )
    # 1,808 x $2.50 + 8,192 x $1.25 + 500 x $10, per million tokens.
    assert cost == pytest.approx((1_808 * 2.5 + 8_192 * 1.25 + 500 * 10) / 1e6)


def test_bedrock_converse_usage_keeps_cache_buckets_apart() -> None:
    usage = bedrock_usage(
        {
            "inputTokens": 2_000,
            "outputTokens": 1_000,
            "cacheReadInputTokens": 50_000,
            "cacheWriteInputTokens": 10_000,
            "totalTokens": 63_000,
        }
    )
    assert usage.prompt_tokens == 62_000
    assert (usage.cache_read_tokens, usage.cache_write_tokens) == (50_000, 10_000)


def test_unset_cache_rates_cost_the_input_rate() -> None:
    prices = {"p/m": Price(input=1.0, output=2.0)}
    assert cost_usd(prices, "p/m", 1_000, 0, cache_read_tokens=600) == pytest.approx(0.001)
    assert cost_usd(prices, "local/x", 1_000, 1_000) == 0.0


async def test_ledger_bills_and_reports_cache_tokens_apart(tmp_path: Path) -> None:
    ledger = UsageLedger(SqliteUsageStore(tmp_path / "u.db"), PRICES)
    usage = result_from(anthropic_message()).usage
    await ledger.record(
        tenant_id="acme",
        key_id=None,
        alias="claude",
        target="anthropic/claude-sonnet-4",
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        cache_read_tokens=usage.cache_read_tokens,
        cache_write_tokens=usage.cache_write_tokens,
    )
    await ledger.flush()
    summary = await ledger.usage_summary("acme")
    assert summary["cost_usd"] == pytest.approx(0.0735)
    assert summary["prompt_cache"] == {"read_tokens": 50_000, "write_tokens": 10_000}
    assert summary["prompt_tokens"] == 62_000


def test_a_usage_file_from_before_the_cache_buckets_is_upgraded(tmp_path: Path) -> None:
    import sqlite3

    db = tmp_path / "old.db"
    with sqlite3.connect(db) as old:
        old.execute(
            "CREATE TABLE usage_totals (tenant_id TEXT NOT NULL, period TEXT NOT NULL, "
            "dim TEXT NOT NULL, requests REAL NOT NULL DEFAULT 0, prompt_tokens REAL NOT NULL "
            "DEFAULT 0, completion_tokens REAL NOT NULL DEFAULT 0, billable_tokens REAL NOT NULL "
            "DEFAULT 0, cost_usd REAL NOT NULL DEFAULT 0, cache_hits REAL NOT NULL DEFAULT 0, "
            "saved_usd REAL NOT NULL DEFAULT 0, PRIMARY KEY (tenant_id, period, dim)) "
            "WITHOUT ROWID"
        )
        old.execute(
            "INSERT INTO usage_totals (tenant_id, period, dim, requests) VALUES "
            "('acme', '2025-01', '*', 3)"
        )
    store = SqliteUsageStore(db)
    assert store.totals("acme", "2025-01")["*"].requests == 3
