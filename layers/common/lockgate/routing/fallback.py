"""The fallback executor: retries with backoff, timeouts, cooldown, and fallback across targets.

A streamed answer is committed to a target only when its first chunk arrives; until then any
failure — an error status, a timeout, a stream that ends or stalls before its first chunk —
moves on silently, so the client never sees a fallback. After that the executor polices the
rest of the stream (gaps, the total deadline, a missing final chunk) and raises instead of
letting a truncated answer end as if it were complete.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from lockgate.chat import ChatChunk, ChatMessage, ChatRequest, ChatResult
from lockgate.errors import where_it_failed
from lockgate.policy import Policy, RetryPolicy, Target, Timeouts
from lockgate.providers import errors
from lockgate.providers.base import Provider
from lockgate.providers.errors import ErrorKind, ProviderError
from lockgate.routing.cooldown import CooldownTracker
from lockgate.routing.router import Route

log = logging.getLogger("lockgate.routing")
T = TypeVar("T")


class FallbackExhausted(Exception):
    """Every target failed; `errors` holds each attempt's failure, oldest first."""

    def __init__(self, failures: list[ProviderError]) -> None:
        super().__init__("all targets failed")
        self.errors = failures


@dataclass(slots=True)
class Answer:
    result: ChatResult
    target: Target
    attempts: int


@dataclass(slots=True)
class _Plan:
    targets: list[Target]
    retry: RetryPolicy
    timeouts: Timeouts
    deadline: float
    failures: list[ProviderError] = field(default_factory=list)
    attempts: int = 0


class FallbackExecutor:
    def __init__(
        self,
        providers: Mapping[str, Provider],
        policy: Policy,
        *,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self._providers = providers
        self._policy = policy
        self._clock = clock
        self._jitter = jitter
        self.cooldown = CooldownTracker(policy.cooldown, clock)

    def _plan(self, route: Route) -> _Plan:
        timeouts = self._policy.timeouts_for(route.alias)
        return _Plan(
            targets=self.cooldown.order(route.targets),
            retry=self._policy.retry_for(route.alias),
            timeouts=timeouts,
            deadline=self._clock() + timeouts.total_s,
        )

    async def _attempts(self, plan: _Plan) -> AsyncGenerator[tuple[Target, float], None]:
        """Yields (target, seconds left) for each try; the caller reports failures to
        `_failed`, which decides about backoff and moving on."""
        for target in plan.targets:
            for attempt in range(plan.retry.attempts):
                remaining = plan.deadline - self._clock()
                if remaining <= 0:
                    plan.failures.append(errors.timed_out("total"))
                    return
                plan.attempts += 1
                yield target, remaining
                last = plan.failures[-1] if plan.failures else None
                if last is None or last.kind is not ErrorKind.RETRYABLE:
                    break
                if attempt + 1 == plan.retry.attempts:
                    break
                wait = self._backoff(plan.retry, attempt, last.retry_after)
                if wait is None or wait >= plan.deadline - self._clock():
                    break
                await asyncio.sleep(wait)

    def _backoff(self, retry: RetryPolicy, attempt: int, retry_after: float | None) -> float | None:
        """Full-jitter exponential backoff, stretched to the upstream's Retry-After; None when
        the upstream asks for longer than we are willing to wait on one target."""
        if retry_after is not None and retry_after > retry.max_retry_after_s:
            return None
        ceiling: float = min(retry.backoff_max_s, retry.backoff_initial_s * 2**attempt)
        return max(ceiling * self._jitter(), retry_after or 0.0)

    def _failed(self, plan: _Plan, target: Target, error: ProviderError) -> None:
        plan.failures.append(error)
        if error.kind is not ErrorKind.REQUEST:
            self.cooldown.failed(target)

    def _raise_if_final(self, plan: _Plan) -> None:
        if plan.failures and plan.failures[-1].kind is ErrorKind.REQUEST:
            raise FallbackExhausted(plan.failures)

    async def complete(self, request: ChatRequest, route: Route) -> Answer:
        plan = self._plan(route)
        found = await self._first_success(
            plan, "response", plan.timeouts.response_s, functools.partial(self._answer, request)
        )
        if found is None:
            raise FallbackExhausted(plan.failures)
        target, result = found
        self.cooldown.succeeded(target)
        return Answer(result, target, plan.attempts)

    async def _first_success(
        self, plan: _Plan, stage: str, stage_s: float, attempt: Callable[[Target], Awaitable[T]]
    ) -> tuple[Target, T] | None:
        """Runs `attempt` on each try of the plan until one succeeds, each try's wait bounded by
        `stage_s` (and what is left of the plan's time) on one shared `_WaitLimit`; a failure is
        recorded in the plan, and one the caller caused ends the plan."""
        limit = _WaitLimit()
        try:
            async with contextlib.aclosing(self._attempts(plan)) as attempts:
                async for target, remaining in attempts:
                    started = self._clock()
                    limit.begin(min(stage_s, remaining))
                    try:
                        return target, await attempt(target)
                    except (TimeoutError, asyncio.CancelledError) as exc:
                        if not limit.caused(exc):
                            raise
                        self._failed(plan, target, errors.timed_out(stage))
                    except ProviderError as exc:
                        shortest = min(plan.timeouts.connect_s, stage_s, remaining)
                        elapsed = self._clock() - started
                        self._failed(plan, target, errors.unless_too_soon(exc, elapsed, shortest))
                        self._raise_if_final(plan)
                    except Exception as exc:
                        _log_unexpected(target, exc)
                        self._failed(plan, target, errors.unexpected(exc))
                    finally:
                        limit.end()
        finally:
            limit.close()
        return None

    async def _answer(self, request: ChatRequest, target: Target) -> ChatResult:
        return await self._providers[target.provider].complete(request, target.model)

    async def open_stream(self, request: ChatRequest, route: Route) -> LiveStream:
        """Returns once some target has produced its first chunk."""
        plan = self._plan(route)
        opened = await self._open(plan, request)
        if opened is None:
            raise FallbackExhausted(plan.failures)
        target, first, chunks = opened
        continuation = self._policy.models[route.alias].stream_continuation
        return LiveStream(self, plan, target, first, chunks, request if continuation else None)

    async def _open(
        self, plan: _Plan, request: ChatRequest
    ) -> tuple[Target, ChatChunk, AsyncIterator[ChatChunk]] | None:
        first_chunk = functools.partial(self._first_chunk, request)
        found = await self._first_success(
            plan, "first_token", plan.timeouts.first_token_s, first_chunk
        )
        if found is None:
            return None
        target, (first, chunks) = found
        return target, first, chunks

    async def _first_chunk(
        self, request: ChatRequest, target: Target
    ) -> tuple[ChatChunk, AsyncIterator[ChatChunk]]:
        """The target's first chunk and the rest of its stream, which is closed if it fails."""
        chunks = aiter(self._providers[target.provider].stream(request, target.model))
        try:
            return await anext(chunks), chunks
        except StopAsyncIteration:
            raise errors.stream_cut() from None
        except BaseException:
            await _close(chunks)
            raise

    async def _resume(
        self, plan: _Plan, request: ChatRequest, failed: Target, partial: str
    ) -> tuple[Target, ChatChunk, AsyncIterator[ChatChunk]] | None:
        """Continues a failed stream on the targets after the failed one: the conversation plus
        the answer so far, as the assistant's turn to carry on from."""
        later = plan.targets[plan.targets.index(failed) + 1 :]
        if not later:
            return None
        rest = _Plan(later, plan.retry, plan.timeouts, plan.deadline, plan.failures, plan.attempts)
        messages = [*request.messages, ChatMessage(role="assistant", content=partial)]
        try:
            opened = await self._open(rest, request.model_copy(update={"messages": messages}))
        except FallbackExhausted:
            opened = None
        plan.attempts = rest.attempts
        if opened is None:
            return None
        target, first, chunks = opened
        first, chunks = await _after_seam(partial, first, chunks, plan.timeouts.between_chunks_s)
        return target, first, chunks


class LiveStream:
    """The committed rest of a streamed answer; iterating it ends with the final chunk or raises
    `ProviderError`.

    With `continue_with` (the alias's `stream_continuation`), a failure after the first chunk —
    an error event, a stall, a cut — is not the end: as long as the answer is plain text, it is
    carried on by the next target, the seam de-duplicated, and `continued_from` names the
    target that failed."""

    def __init__(
        self,
        executor: FallbackExecutor,
        plan: _Plan,
        target: Target,
        first: ChatChunk,
        chunks: AsyncIterator[ChatChunk],
        continue_with: ChatRequest | None = None,
    ) -> None:
        self.target = target
        self.attempts = plan.attempts
        self.continued_from: Target | None = None
        self._executor = executor
        self._plan = plan
        self._first = first
        self._chunks = chunks
        self._request = continue_with

    async def __aiter__(self) -> AsyncIterator[ChatChunk]:
        text: list[str] = []
        tools = False
        first, chunks = self._first, self._chunks
        while True:
            try:
                async for chunk in self._policed(first, chunks):
                    text.append(chunk.text)
                    tools = tools or bool(chunk.tool_calls)
                    yield chunk
                return
            except ProviderError:
                self._executor.cooldown.failed(self.target)
                partial = "".join(text)
                if self._request is None or tools or not partial:
                    raise
                resumed = await self._executor._resume(
                    self._plan, self._request, self.target, partial
                )
                self.attempts = self._plan.attempts
                if resumed is None:
                    raise
                self.continued_from = self.continued_from or self.target
                self.target, first, chunks = resumed

    async def _policed(
        self, first: ChatChunk, chunks: AsyncIterator[ChatChunk]
    ) -> AsyncIterator[ChatChunk]:
        gap = self._plan.timeouts.between_chunks_s
        chunk = first
        watch = _WaitLimit()
        try:
            while True:
                yield chunk
                if chunk.finish_reason:
                    self._executor.cooldown.succeeded(self.target)
                    return
                remaining = self._plan.deadline - self._executor._clock()
                watch.begin(min(gap, remaining))
                try:
                    chunk = await anext(chunks)
                except StopAsyncIteration:
                    raise errors.stream_cut() from None
                except (TimeoutError, asyncio.CancelledError) as exc:
                    if not watch.caused(exc):
                        raise
                    stage = "between_chunks" if remaining > gap else "total"
                    raise errors.timed_out(stage) from None
                except ProviderError:
                    raise
                except Exception as exc:
                    _log_unexpected(self.target, exc)
                    raise errors.unexpected(exc) from None
                finally:
                    watch.end()
        finally:
            watch.close()
            await _close(chunks)


class _WaitLimit:
    """Bounds each wait for a stream's next chunk, as `asyncio.timeout` would, without a timer
    per chunk.

    A timeout context around every chunk arms and cancels a timer and tracks the task's
    cancellations each time: several microseconds, a good share of relaying a chunk. Here one
    timer is armed for the first wait; when it fires it checks whether the wait under way has
    really run out, re-arms for the rest if not, and cancels the waiting task if so."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task: asyncio.Task[Any] | None = None
        self._until: float | None = None  # the current wait's end; None between waits
        self._timer: asyncio.TimerHandle | None = None
        self._expired = False

    def begin(self, limit_s: float) -> None:
        self._task = asyncio.current_task()
        self._until = until = self._loop.time() + limit_s
        timer = self._timer
        if timer is None or timer.when() > until:
            if timer is not None:
                timer.cancel()
            self._timer = self._loop.call_at(until, self._check)

    def caused(self, exc: BaseException) -> bool:
        """Whether `exc` ends the wait as timed out: a timeout the provider raised, or this
        limit's own cancellation (taken back); a cancellation from elsewhere is not."""
        return not isinstance(exc, asyncio.CancelledError) or self._ran_out()

    def _ran_out(self) -> bool:
        if not self._expired:
            return False
        self._expired = False
        if self._task is not None:
            self._task.uncancel()
        return True

    def end(self) -> None:
        self._until = None
        self._ran_out()  # a chunk that came just as the wait ran out: the chunk wins

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _check(self) -> None:
        self._timer = None
        until = self._until
        if until is None or self._task is None:
            return  # not waiting: the next wait arms a timer of its own
        if self._loop.time() < until:
            self._timer = self._loop.call_at(until, self._check)
            return
        self._expired = True
        self._task.cancel()


SEAM_CHARS = 2000
"""How much of a continuation is held back to find where it overlaps the text already sent."""


async def _after_seam(
    partial: str, first: ChatChunk, chunks: AsyncIterator[ChatChunk], gap_s: float
) -> tuple[ChatChunk, AsyncIterator[ChatChunk]]:
    """The continuation without what the client already has: a model asked to carry on may
    repeat the end of the text so far, or start the answer over. The head is buffered until it
    is as long as the text so far (or the stream ends), and the longest prefix of it that the
    text so far ends with is dropped."""
    wanted = min(len(partial), SEAM_CHARS)
    head: list[ChatChunk] = [first]
    while sum(len(c.text) for c in head) < wanted and not head[-1].finish_reason:
        try:
            async with asyncio.timeout(gap_s):
                head.append(await anext(chunks))
        except (StopAsyncIteration, TimeoutError, ProviderError):
            break  # what came is kept; the policed stream reports the failure next
    buffered = "".join(c.text for c in head)
    overlap = next(
        (n for n in range(min(len(buffered), wanted), 0, -1) if partial.endswith(buffered[:n])),
        0,
    )
    merged = ChatChunk(
        text=buffered[overlap:],
        tool_calls=next((c.tool_calls for c in head if c.tool_calls), None),
        finish_reason=head[-1].finish_reason,
        usage=head[-1].usage,
    )
    return merged, chunks


def _log_unexpected(target: Target, exc: BaseException) -> None:
    """A provider adapter let a foreign exception through: logged by where it happened, not by
    its message, which may quote the request."""
    log.error("provider %s failed unexpectedly: %s", target.provider, where_it_failed(exc))


async def _close(chunks: AsyncIterator[ChatChunk]) -> None:
    aclose = getattr(chunks, "aclose", None)
    if aclose is not None:
        try:
            await aclose()
        except Exception:
            return
