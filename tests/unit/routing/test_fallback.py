"""The executor's decisions, with scripted in-memory providers so each case is exact and fast.
(The same behaviour over real HTTP is in tests/integration/test_fallback.py.)"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from lockgate.chat import ChatChunk, ChatRequest, ChatResult, Usage
from lockgate.policy import parse_policy
from lockgate.providers.errors import ErrorKind, ProviderError, from_status
from lockgate.routing.fallback import FallbackExecutor, FallbackExhausted
from lockgate.routing.router import Router

REQUEST = ChatRequest.model_validate({"model": "a", "messages": [{"role": "user", "content": "q"}]})


class Scripted:
    """Answers from a script: each call pops the next step (an exception, or chunks to stream,
    where a float means 'sleep this long')."""

    def __init__(self, name: str, *steps: Any) -> None:
        self.name = name
        self.steps = list(steps)
        self.calls = 0

    def _next(self) -> Any:
        self.calls += 1
        return self.steps.pop(0) if self.steps else ["ok", "stop"]

    async def complete(self, request: ChatRequest, model: str) -> ChatResult:
        step = self._next()
        if isinstance(step, BaseException):
            raise step
        if isinstance(step, float):
            await asyncio.sleep(step)
        return ChatResult(text=f"{self.name}", finish_reason="stop", usage=Usage(1, 1))

    async def stream(self, request: ChatRequest, model: str) -> AsyncIterator[ChatChunk]:
        step = self._next()
        if isinstance(step, BaseException):
            raise step
        for item in step:
            if isinstance(item, float):
                await asyncio.sleep(item)
            elif isinstance(item, BaseException):
                raise item
            elif item == "stop":
                yield ChatChunk(finish_reason="stop", usage=Usage(1, 2))
            else:
                yield ChatChunk(text=item)

    async def aclose(self) -> None:
        return None


def executor(
    providers: dict[str, Scripted], clock: Any = None, **policy: Any
) -> tuple[FallbackExecutor, Router]:
    config = parse_policy(
        {
            "providers": {name: {"kind": "local"} for name in providers},
            "models": {"a": {"targets": [f"{name}/m" for name in providers]}},
            "retry": {"attempts": 2, "backoff_initial_s": 0.001, "backoff_max_s": 0.002},
            "timeouts": {"first_token_s": 0.2, "between_chunks_s": 0.2, "response_s": 0.2},
            **policy,
        }
    )
    kwargs = {"clock": clock} if clock else {}
    return FallbackExecutor(providers, config, **kwargs), Router(config)  # type: ignore[arg-type]


def route(router: Router) -> Any:
    return router.route(REQUEST)


async def test_retryable_error_is_retried_then_served() -> None:
    one = Scripted("one", from_status(503, "busy"))
    run, router = executor({"one": one, "two": Scripted("two")})
    answer = await run.complete(REQUEST, route(router))
    assert (answer.target.provider, answer.attempts, one.calls) == ("one", 2, 2)


async def test_target_error_moves_on_without_retry() -> None:
    one = Scripted("one", from_status(401, "bad key"))
    run, router = executor({"one": one, "two": Scripted("two")})
    answer = await run.complete(REQUEST, route(router))
    assert (answer.target.provider, answer.attempts, one.calls) == ("two", 2, 1)


async def test_request_error_stops_at_once() -> None:
    two = Scripted("two")
    run, router = executor({"one": Scripted("one", from_status(400, "bad")), "two": two})
    with pytest.raises(FallbackExhausted) as caught:
        await run.complete(REQUEST, route(router))
    assert caught.value.errors[0].kind is ErrorKind.REQUEST and two.calls == 0


async def test_slow_buffered_answer_times_out_and_falls_back() -> None:
    run, router = executor({"one": Scripted("one", 1.0, 1.0), "two": Scripted("two")})
    answer = await run.complete(REQUEST, route(router))
    assert answer.target.provider == "two"


async def test_stream_falls_back_before_first_chunk_on_stall_and_cut() -> None:
    stalled = Scripted("one", [1.0, "late", "stop"], [])
    run, router = executor({"one": stalled, "two": Scripted("two")})
    live = await run.open_stream(REQUEST, route(router))
    assert live.target.provider == "two" and live.attempts == 3
    assert [c.text async for c in live] == ["ok", ""]


async def test_stream_after_first_chunk_raises_on_stall_and_cut() -> None:
    for script in (["a", 1.0, "b", "stop"], ["a", "b"], ["a", from_status(500, "boom")]):
        run, router = executor({"one": Scripted("one", script), "two": Scripted("two")})
        live = await run.open_stream(REQUEST, route(router))
        seen = []
        with pytest.raises(ProviderError) as caught:
            async for chunk in live:
                seen.append(chunk.text)
        assert seen[0] == "a" and caught.value.retryable


async def test_a_stall_between_chunks_is_timed_out_as_between_chunks() -> None:
    run, router = executor({"one": Scripted("one", ["a", 5.0, "b", "stop"])})
    live = await run.open_stream(REQUEST, route(router))
    started = asyncio.get_running_loop().time()
    with pytest.raises(ProviderError) as caught:
        async for _ in live:
            pass
    waited = asyncio.get_running_loop().time() - started
    assert caught.value.code == "timeout_between_chunks"
    assert 0.2 <= waited < 1.0


async def test_steady_chunks_each_within_the_gap_never_time_out() -> None:
    """The limit is per wait: chunks 0.12 s apart for a second, past five gaps of 0.2 s."""
    script = ["a", *[item for _ in range(8) for item in (0.12, "b")], "stop"]
    run, router = executor({"one": Scripted("one", script)})
    live = await run.open_stream(REQUEST, route(router))
    assert [c.text async for c in live] == ["a", *["b"] * 8, ""]


async def test_a_slow_reader_is_not_a_stalled_upstream() -> None:
    """Time the caller takes between chunks is not the upstream's: only waits count."""
    run, router = executor({"one": Scripted("one", ["a", "b", "c", "stop"])})
    live = await run.open_stream(REQUEST, route(router))
    seen = []
    async for chunk in live:
        seen.append(chunk.text)
        await asyncio.sleep(0.3)
    assert seen == ["a", "b", "c", ""]


async def test_cancelling_the_caller_mid_stream_is_a_cancellation_not_a_timeout() -> None:
    run, router = executor({"one": Scripted("one", ["a", 5.0, "b", "stop"])})
    live = await run.open_stream(REQUEST, route(router))

    async def read() -> None:
        async for _ in live:
            pass

    reader = asyncio.create_task(read())
    await asyncio.sleep(0.05)
    reader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reader


async def test_cooldown_trips_and_recovers() -> None:
    now = [0.0]
    one = Scripted("one", *[from_status(500, "x")] * 4)
    run, router = executor(
        {"one": one, "two": Scripted("two")},
        clock=lambda: now[0],
        cooldown={"failures": 2, "seconds": 30},
        retry={"attempts": 1},
    )
    for _ in range(2):
        assert (await run.complete(REQUEST, route(router))).target.provider == "two"
    assert one.calls == 2
    assert (await run.complete(REQUEST, route(router))).target.provider == "two"
    assert one.calls == 2
    now[0] = 31.0
    await run.complete(REQUEST, route(router))
    assert one.calls == 3


async def test_all_cooling_still_tries_the_soonest() -> None:
    now = [0.0]
    one = Scripted("one", *[from_status(500, "x")] * 3)
    run, router = executor(
        {"one": one},
        clock=lambda: now[0],
        cooldown={"failures": 1, "seconds": 30},
        retry={"attempts": 1},
    )
    with pytest.raises(FallbackExhausted):
        await run.complete(REQUEST, route(router))
    answer_calls = one.calls
    with pytest.raises(FallbackExhausted):
        await run.complete(REQUEST, route(router))
    assert one.calls == answer_calls + 1


async def test_backoff_honours_retry_after() -> None:
    one = Scripted(
        "one", ProviderError("slow down", kind=ErrorKind.RETRYABLE, status=429, retry_after=0.3)
    )
    run, router = executor({"one": one})
    loop = asyncio.get_running_loop()
    started = loop.time()
    await run.complete(REQUEST, route(router))
    assert loop.time() - started >= 0.3
