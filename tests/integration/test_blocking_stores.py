"""No store call blocks the event loop: the real app on uvicorn, the openai SDK as the caller,
with every synchronous store port (keys, tenants, counters, usage) and the exact cache's writes
made deliberately slow (200 ms sleeps wrapped around the real SQLite stores). While chat
requests wait on them, `/health` keeps answering at once, and every slow call is seen running
in the store pool, not on the loop's thread."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from lockgate import bootstrap
from lockgate.settings import Settings
from lockgate.stores.embedded.exact_cache import SqliteExactCache
from lockgate.tenants.models import Budget

from tests.support.servers import RunningGateway, gateway, mock_policy

DELAY_S = 0.2
SLOW = {
    "keys": ("tenant_for", "get_key", "key_by_hash"),
    "tenants": ("get_tenant",),
    "counters": ("acquire", "adjust"),
    "usage": ("add", "totals"),
}


class Calls:
    """Which threads ran each slow method, from `watch()` on (set-up calls are not requests)."""

    def __init__(self) -> None:
        self.threads: dict[str, set[str]] = {}
        self.lock = threading.Lock()
        self.watching = False

    def watch(self) -> None:
        with self.lock:
            self.threads.clear()
            self.watching = True

    def seen(self, name: str) -> None:
        with self.lock:
            if self.watching:
                self.threads.setdefault(name, set()).add(threading.current_thread().name)


class Slow:
    """The real store, with each of the named methods sleeping first (a slow disk or network)."""

    def __init__(self, inner: Any, methods: tuple[str, ...], calls: Calls) -> None:
        self._inner, self._methods, self._calls = inner, methods, calls

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._inner, name)
        if name not in self._methods:
            return attribute

        def slow(*args: Any, **kwargs: Any) -> Any:
            self._calls.seen(f"{type(self._inner).__name__}.{name}")
            time.sleep(DELAY_S)
            return attribute(*args, **kwargs)

        return slow


class SlowExactCache(SqliteExactCache):
    calls: Calls

    def _put(self, entry: Any) -> None:
        self.calls.seen("SqliteExactCache._put")
        time.sleep(DELAY_S)
        super()._put(entry)


@pytest.fixture(scope="module")
def calls() -> Calls:
    return Calls()


@pytest.fixture(scope="module")
def gw(
    upstream: str, tmp_path_factory: pytest.TempPathFactory, calls: Calls
) -> Iterator[RunningGateway]:
    real = bootstrap._embedded_stores

    def slow_stores(settings: Settings, embedder: Any) -> bootstrap.Stores:
        stores = real(settings, embedder)
        for port, methods in SLOW.items():
            setattr(stores, port, Slow(getattr(stores, port), methods, calls))
        cache = SlowExactCache(settings.data_dir / "slow-cache.db")
        cache.calls = calls
        stores.exact_cache = cache
        return stores

    policy = mock_policy(
        upstream,
        {"fast": {"targets": ["mock/gpt-fast"], "safety": {"injection_action": "off"}}},
        cache={"enabled": True, "semantic": False},
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(bootstrap, "_embedded_stores", slow_stores)
        with gateway(policy, tmp_path_factory.mktemp("slow")) as running:
            yield running


async def test_health_answers_while_store_calls_are_slow(gw: RunningGateway, calls: Calls) -> None:
    service = gw.app.state.container.tenants
    await asyncio.to_thread(service.create_tenant, "busy", budget=Budget(monthly_tokens=10**6))
    key = (await asyncio.to_thread(service.create_key, "busy")).key
    client = openai.AsyncOpenAI(base_url=gw.v1, api_key=key, max_retries=0)
    async with openai.AsyncOpenAI(base_url=gw.v1, api_key=gw.api_key, max_retries=0) as warm:
        # First calls do one-off setup (the SDKs', the provider client's): not store calls,
        # and not what this test times.
        await warm.chat.completions.create(
            model="fast", messages=[{"role": "user", "content": "warm up"}], max_tokens=200
        )

    async def chat(n: int) -> float:
        started = time.perf_counter()
        await client.chat.completions.create(
            model="fast", messages=[{"role": "user", "content": f"q{n}"}], max_tokens=200
        )
        return time.perf_counter() - started

    latencies: list[float] = []
    done = threading.Event()

    def ping() -> None:
        # Its own thread and connection: the SDK's work on the test's loop is not timed.
        with httpx.Client(base_url=gw.base_url) as http:
            http.get("/health")
            while not done.is_set():
                started = time.perf_counter()
                assert http.get("/health").status_code == 200
                latencies.append(time.perf_counter() - started)
                time.sleep(0.005)

    calls.watch()
    pinger = threading.Thread(target=ping)
    pinger.start()
    try:
        durations = await asyncio.gather(*(chat(n) for n in range(8)))
    finally:
        done.set()
        await asyncio.to_thread(pinger.join)
    await client.close()

    assert min(durations) >= 3 * DELAY_S  # the requests really waited on the slow stores
    assert {
        "SqliteKeyStore.tenant_for",
        "SqliteTenantStore.get_tenant",
        "SqliteCounterStore.acquire",
        "SqliteCounterStore.adjust",
        "SqliteUsageStore.totals",
        "SqliteExactCache._put",
    } <= set(calls.threads)
    elsewhere = {t for ts in calls.threads.values() for t in ts if "lockgate-store" not in t}
    assert elsewhere == set()  # every slow call ran in the store pool, none on the loop
    assert len(latencies) >= 20
    latencies.sort()
    median, p90 = latencies[len(latencies) // 2], latencies[len(latencies) * 9 // 10]
    print(
        f"/health while 8 requests wait on slow stores: median {median * 1e3:.2f} ms, "
        f"p90 {p90 * 1e3:.1f} ms, max {latencies[-1] * 1e3:.1f} ms ({len(latencies)} pings)"
    )
    # With a store call on the loop nearly every ping would wait 200 ms or more. The bounds
    # leave room for a machine shared with other work (5 ms median when it is quiet).
    assert median < 0.02
    assert p90 < DELAY_S / 2
