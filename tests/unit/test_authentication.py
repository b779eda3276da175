"""Authentication under concurrency: when a busy key's remembered second is up, the requests in
flight for it share one key store read instead of each queueing its own in the store pool."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any, cast

import pytest
from lockgate.errors import GatewayError
from lockgate.pipeline import Gateway, RequestContext
from lockgate.tenants.keys import Tenant


class SlowKeys:
    """A key store that takes a while to answer and counts its reads."""

    def __init__(self, known: dict[str, Tenant], delay_s: float = 0.05) -> None:
        self.known, self.delay_s, self.reads = known, delay_s, 0
        self._lock = threading.Lock()

    def tenant_for(self, api_key: str | None, gateway_key_id: str | None) -> Tenant | None:
        with self._lock:
            self.reads += 1
        time.sleep(self.delay_s)
        return self.known.get(api_key or "")


def gateway(keys: SlowKeys) -> Gateway:
    unused = cast(Any, None)  # authentication needs none of the routing machinery
    return Gateway(keys, unused, unused, unused)


async def many(gw: Gateway, key: str, n: int) -> list[Tenant | BaseException]:
    calls = [gw.authenticate(key, RequestContext(f"r{i}")) for i in range(n)]
    return await asyncio.gather(*calls, return_exceptions=True)


def test_concurrent_requests_with_one_key_share_one_store_read() -> None:
    keys = SlowKeys({"lg-good": Tenant("acme", "k1")})
    answers = asyncio.run(many(gateway(keys), "lg-good", 20))
    assert answers == [Tenant("acme", "k1")] * 20
    assert keys.reads == 1


def test_an_unknown_key_is_refused_for_every_waiting_request_and_read_again_next_time() -> None:
    keys = SlowKeys({})

    async def scenario() -> list[Tenant | BaseException]:
        gw = gateway(keys)
        first = await many(gw, "lg-bad", 5)
        with pytest.raises(GatewayError):
            await gw.authenticate("lg-bad", RequestContext("again"))
        return first

    answers = asyncio.run(scenario())
    assert all(isinstance(a, GatewayError) and a.status == 401 for a in answers)
    assert keys.reads == 2  # failures are not remembered: a new key must work at once


def test_different_keys_are_read_separately() -> None:
    keys = SlowKeys({"lg-a": Tenant("a", "ka"), "lg-b": Tenant("b", "kb")})

    async def scenario() -> tuple[list[Any], list[Any]]:
        gw = gateway(keys)
        return await asyncio.gather(many(gw, "lg-a", 3), many(gw, "lg-b", 3))

    a, b = asyncio.run(scenario())
    assert a == [Tenant("a", "ka")] * 3 and b == [Tenant("b", "kb")] * 3
    assert keys.reads == 2


def test_a_cancelled_request_does_not_cancel_the_read_others_wait_for() -> None:
    keys = SlowKeys({"lg-good": Tenant("acme", "k1")}, delay_s=0.1)

    async def scenario() -> Tenant:
        gw = gateway(keys)
        impatient = asyncio.create_task(gw.authenticate("lg-good", RequestContext("r0")))
        await asyncio.sleep(0.02)
        patient = asyncio.create_task(gw.authenticate("lg-good", RequestContext("r1")))
        await asyncio.sleep(0.01)
        impatient.cancel()
        return await patient

    assert asyncio.run(scenario()) == Tenant("acme", "k1")
    assert keys.reads == 1
