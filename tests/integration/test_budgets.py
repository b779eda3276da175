"""A monthly token budget under a burst of concurrent requests, through the real app (uvicorn on
127.0.0.1, the openai SDK as the caller, the mock upstream as the provider, SQLite stores)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import openai
import pytest
from lockgate.tenants.models import Budget
from lockgate.tenants.service import TenantService

from tests.support.servers import RunningGateway, gateway, mock_policy

BUDGET = 100
MAX_TOKENS = 10


@pytest.fixture(scope="module")
def gw(upstream: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    policy = mock_policy(upstream, {"fast": {"targets": ["mock/gpt-fast"]}})
    with gateway(policy, tmp_path_factory.mktemp("budgets")) as running:
        yield running


async def test_fifty_concurrent_requests_stay_within_the_budget(gw: RunningGateway) -> None:
    service: TenantService = gw.app.state.container.tenants
    service.create_tenant("burst", budget=Budget(monthly_tokens=BUDGET))
    key = service.create_key("burst").key
    client = openai.AsyncOpenAI(base_url=gw.v1, api_key=key, max_retries=0)

    async def one(n: int) -> int | openai.RateLimitError:
        try:
            answer = await client.chat.completions.create(
                model="fast",
                messages=[{"role": "user", "content": f"question number {n}"}],
                max_tokens=MAX_TOKENS,
            )
        except openai.RateLimitError as refused:
            return refused
        assert answer.usage is not None
        return answer.usage.total_tokens

    results = await asyncio.gather(*(one(n) for n in range(50)))
    await client.close()
    used = [r for r in results if isinstance(r, int)]
    refused = [r for r in results if isinstance(r, openai.RateLimitError)]
    assert used and refused
    assert all(r.code == "budget_exceeded" for r in refused)
    assert all(int(r.response.headers["retry-after"]) >= 1 for r in refused)
    assert all(r.response.headers["x-should-retry"] == "false" for r in refused)

    async with httpx.AsyncClient() as http:
        response = await http.get(f"{gw.v1}/usage", headers={"authorization": f"Bearer {key}"})
    summary = response.json()
    assert summary["total_tokens"] == sum(used)
    # Reserved before each call, settled after: over the budget only by what a provider
    # counted beyond the estimate, at most a token per request in flight.
    assert summary["budget"]["spent_tokens"] <= BUDGET + len(used)
    assert summary["budget"]["spent_tokens"] == sum(used)
