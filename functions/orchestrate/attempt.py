"""Lambda entry for one provider call of a Step Functions fail-over run.

The state machine compiled from the routing policy (infra/stepfunctions.py) owns retries,
backoff and fallback; each of its Tasks invokes this function once per try with
`{target, request, attempt, attempts, timeout_s, max_retry_after_s}`. The function calls the
target's provider adapter once (no retries here) and returns the result, or raises an exception
whose class name is the error name the state machine's Retry and Catch rules match on
(`lockgate.routing.remote`): Lambda reports a raised exception's class name as `errorType`,
and Step Functions uses that as the error name.

Why a Lambda around the existing adapters rather than service integrations: Bedrock's direct
integration cannot reach OpenAI or Anthropic, and an HTTPS endpoint task would need a second
translation per provider (auth, request and error shapes) beside the adapters the gateway uses.
Here every provider keeps one translation, and the error taxonomy is the gateway's own.
"""

# No `from __future__ import annotations`: pydantic resolves `AttemptInput`'s field types from
# this module's globals, which a loader that does not register the module cannot offer.
import asyncio
import functools
from typing import Any

from aws_lambda_powertools import Logger
from lockgate.chat import ChatRequest, ChatResult
from lockgate.policy import Policy, Target
from lockgate.providers import errors
from lockgate.providers.base import Provider
from lockgate.providers.errors import ProviderError
from lockgate.routing import remote
from lockgate.settings import Settings
from pydantic import BaseModel, Field

logger = Logger(service="lockgate-attempt")

# Provider clients (their pooled connections) belong to one event loop; the container keeps it
# between invocations so warm calls reuse their connections.
_loop = asyncio.new_event_loop()


class AttemptFailed(Exception):
    """Base of the raised errors; each subclass is named after a state-machine error name."""


ERRORS: dict[str, type[AttemptFailed]] = {
    name: type(name, (AttemptFailed,), {"__module__": __name__}) for name in remote.ATTEMPT_ERRORS
}


class AttemptInput(BaseModel):
    target: Target
    request: ChatRequest
    attempt: int = Field(default=0, ge=0, description="Step Functions' retry count")
    attempts: int = Field(default=1, ge=1, description="tries this target gets in all")
    timeout_s: float = Field(gt=0)
    max_retry_after_s: float = Field(ge=0)


@functools.cache
def _settings() -> Settings:
    return Settings.from_env()


# The composition root imports every adapter module the gateway may use (stores, embeddings,
# RAG); this function needs only providers, so it is imported at the first call, not at import.
@functools.cache
def _policy() -> Policy:
    from lockgate.bootstrap import policy_for

    return policy_for(_settings())


_providers: dict[str, Provider] = {}
"""Built at first use and kept for the container's life, with their connections."""


def _provider(name: str) -> Provider:
    if name not in _providers:
        from lockgate.bootstrap import build_provider

        _providers[name] = build_provider(_policy(), name, _settings())
    return _providers[name]


async def _call(task: AttemptInput) -> ChatResult:
    provider = _provider(task.target.provider)
    try:
        async with asyncio.timeout(task.timeout_s):
            return await provider.complete(task.request, task.target.model)
    except TimeoutError:
        raise errors.timed_out("response") from None
    except ProviderError:
        raise
    except Exception as exc:
        logger.exception("provider %s failed unexpectedly", task.target.provider)
        raise errors.unexpected(exc) from None


async def _attempt(task: AttemptInput) -> ChatResult:
    try:
        return await _call(task)
    except ProviderError as exc:
        name = remote.error_name(exc, task.max_retry_after_s)
        retried = name in remote.RETRIED_ERRORS and task.attempt + 1 < task.attempts
        if retried and exc.retry_after:
            # Step Functions waits only its own backoff; the upstream's wait is honoured here.
            await asyncio.sleep(exc.retry_after)
        logger.info(
            "attempt failed",
            extra={"target": task.target.key, "attempt": task.attempt, "error": name},
        )
        raise ERRORS[name](remote.failure_message(exc, task.target.key, task.attempt)) from None


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    task = AttemptInput.model_validate(event)
    if task.target.provider not in _policy().providers:
        unknown = errors.ProviderError(
            f"provider {task.target.provider!r} is not in this function's policy",
            kind=errors.ErrorKind.TARGET,
            code="unknown_provider",
        )
        raise ERRORS[remote.TARGET_REJECTED](
            remote.failure_message(unknown, task.target.key, task.attempt)
        )
    result = _loop.run_until_complete(_attempt(task))
    logger.info("attempt answered", extra={"target": task.target.key, "attempt": task.attempt})
    return {
        "target": task.target.key,
        "attempt": task.attempt,
        "result": remote.result_payload(result),
    }
