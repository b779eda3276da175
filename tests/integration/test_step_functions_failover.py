"""Both executors agree: the state machine compiled from a policy, run by moto's ASL interpreter,
answers each fault the way the in-process `FallbackExecutor` does for the same policy.

For every scenario of the in-process fallback tests (503, 500, 429 with a Retry-After within and
beyond the limit, timeout, 401, 400, all targets down, all timing out), the same request goes
once through `FallbackExecutor` and once through `StepFunctionsExecutor` → moto's Step Functions
→ the attempt handler (functions/orchestrate/attempt.py) → the real provider adapter → the mock
upstream, and the two must agree on which target answers, how many attempts it took, how many
requests each target received, and, when none answers, on the HTTP error the client would get.

Emulated: the ASL semantics (Retry, Catch, Choice, Fail causes, RetryCount) by moto's
interpreter; the Lambda and Step Functions APIs by moto. Filled in (tests/support/
step_functions.py): running the handler in-process, StartSyncExecution, and the retry sleep
(recorded, not slept). Known only by reading: the Lambda error payload's shape (`errorType`
from the exception's class name) and that Step Functions takes `errorType` as the error name.
"""

from __future__ import annotations

import asyncio
import types
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from lockgate.api.errors import from_provider_errors
from lockgate.bootstrap import build_provider
from lockgate.chat import ChatRequest
from lockgate.policy import Policy, parse_policy
from lockgate.routing import remote
from lockgate.routing.fallback import FallbackExecutor, FallbackExhausted
from lockgate.routing.router import Router
from lockgate.stores.aws.step_functions import StepFunctionsExecutor
from moto.stepfunctions.parser.asl.component.common.retry import jitter_strategy_decl

from infra.stepfunctions import BACKOFF_RATE
from tests.support.servers import mock_policy
from tests.support.step_functions import Deployment, deployed

TIMEOUTS = {"connect_s": 1, "response_s": 0.5, "total_s": 20}
RETRY = {"attempts": 2, "backoff_initial_s": 0.01, "backoff_max_s": 0.02, "max_retry_after_s": 5}

SCENARIOS: dict[str, list[str]] = {
    "status503": ["mock/bad+status=503", "mock/good"],
    "status500": ["mock/bad+status=500", "mock/good"],
    "status429_waits": ["mock/slow+fail_first=1+status=429+retry_after=0.3", "mock/good"],
    "status429_too_long": ["mock/slow2+status=429+retry_after=60", "mock/good"],
    "timeout": ["mock/bad+timeout", "mock/good"],
    "status401": ["mock/bad+status=401", "mock/good"],
    "status400": ["mock/bad+status=400", "mock/good"],
    "all_down": ["mock/a+status=503", "mock/b+status=502"],
    "all_busy": ["mock/a+status=429+retry_after=1", "mock/b+status=503"],
    "all_timeout": ["mock/a+timeout", "mock/b+timeout"],
    "flaky": ["mock/flaky+fail_first=1+status=503", "mock/good"],
}


EXPECTED: dict[str, dict[str, Any]] = {
    "status503": {"target": "mock/good", "attempts": 3},
    "status500": {"target": "mock/good", "attempts": 3},
    "status429_waits": {"target": SCENARIOS["status429_waits"][0], "attempts": 2},
    "status429_too_long": {"target": "mock/good", "attempts": 2},
    "timeout": {"target": "mock/good", "attempts": 3},
    "status401": {"target": "mock/good", "attempts": 2},
    "status400": {"status": 400, "code": "upstream_400"},
    "all_down": {"status": 502, "code": "upstream_error"},
    "all_busy": {"status": 503, "retry_after": "1"},
    "all_timeout": {"status": 504, "code": "upstream_timeout"},
    "flaky": {"target": SCENARIOS["flaky"][0], "attempts": 2},
}
"""What each scenario must come to, so that agreeing is never agreeing on a failure."""


def _policy(upstream: str) -> dict[str, Any]:
    models = {
        name: {"targets": targets, "executor": "step_functions"}
        for name, targets in SCENARIOS.items()
    }
    models["backoff"] = {
        "targets": ["mock/a+status=503"],
        "executor": "step_functions",
        "retry": {"attempts": 4, "backoff_initial_s": 1, "backoff_max_s": 3},
    }
    return mock_policy(upstream, models, timeouts=TIMEOUTS, retry=RETRY)


@pytest.fixture(scope="module")
def policy(upstream: str) -> dict[str, Any]:
    return _policy(upstream)


@pytest.fixture(scope="module")
def deployment(
    policy: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    with (
        pytest.MonkeyPatch.context() as monkeypatch,
        deployed(policy, tmp_path_factory.mktemp("sfn"), monkeypatch) as running,
    ):
        yield running


@pytest.fixture(autouse=True)
def fresh(deployment: Deployment, upstream: str) -> None:
    deployment.waits.clear()
    deployment.invocations.clear()
    httpx.post(f"{upstream}/_mock/reset")


def _request(alias: str) -> ChatRequest:
    return ChatRequest.model_validate(
        {"model": alias, "messages": [{"role": "user", "content": "say something"}]}
    )


async def _run(executor: Any, alias: str, policy: Policy) -> dict[str, Any]:
    route = Router(policy).route(_request(alias))
    try:
        answer = await executor.complete(_request(alias), route)
    except FallbackExhausted as exc:
        error = from_provider_errors(exc.errors)
        return {
            "status": error.status,
            "code": error.code,
            "message": error.message,
            "retry_after": error.headers.get("retry-after"),
        }
    return {"target": answer.target.key, "attempts": answer.attempts, "text": answer.result.text}


def _outcome(executor: Any, alias: str, policy: Policy) -> dict[str, Any]:
    return asyncio.run(_run(executor, alias, policy))


def _stats(upstream: str) -> dict[str, int]:
    requests: dict[str, int] = httpx.get(f"{upstream}/_mock/stats").json()["requests"]
    return requests


def _in_process(policy: Policy, alias: str) -> dict[str, Any]:
    async def go() -> dict[str, Any]:
        providers = {name: build_provider(policy, name) for name in policy.providers}
        try:
            return await _run(FallbackExecutor(providers, policy), alias, policy)
        finally:
            for provider in providers.values():
                await provider.aclose()

    return asyncio.run(go())


@pytest.mark.parametrize("alias", list(SCENARIOS))
def test_step_functions_agrees_with_the_in_process_executor(
    alias: str, policy: dict[str, Any], deployment: Deployment, upstream: str
) -> None:
    compiled = parse_policy(policy)
    local = _in_process(compiled, alias)
    local_requests = _stats(upstream)

    httpx.post(f"{upstream}/_mock/reset")
    executor = StepFunctionsExecutor(deployment.state_machine_arn, deployment.client())
    stepped = _outcome(executor, alias, compiled)
    assert stepped == local
    assert _stats(upstream) == local_requests
    expected = EXPECTED[alias]
    assert {key: stepped.get(key) for key in expected} == expected


def test_retry_waits_follow_the_policy_with_full_jitter(
    policy: dict[str, Any], deployment: Deployment
) -> None:
    """What moto's interpreter was asked to wait between retries: IntervalSeconds (the policy's
    backoff rounded up to Step Functions' whole seconds), doubled per retry, capped by
    MaxDelaySeconds, then jittered down to anywhere in [0, that]."""
    compiled = parse_policy(policy)
    executor = StepFunctionsExecutor(deployment.state_machine_arn, deployment.client())
    for _ in range(2):
        _outcome(executor, "all_down", compiled)
    task = deployment.definition["States"]["all_down #1 mock/a+status=503"]
    rule = next(r for r in task["Retry"] if remote.RETRYABLE in r["ErrorEquals"])
    assert (rule["IntervalSeconds"], rule["MaxAttempts"], rule["JitterStrategy"]) == (1, 1, "FULL")
    assert rule["BackoffRate"] == BACKOFF_RATE
    assert len(deployment.waits) == 4  # one retry per target per run
    assert all(0 <= wait <= rule["IntervalSeconds"] for wait in deployment.waits)
    assert len(set(deployment.waits)) > 1


def test_attempts_carry_retry_count_and_policy_limits(
    policy: dict[str, Any], deployment: Deployment
) -> None:
    compiled = parse_policy(policy)
    executor = StepFunctionsExecutor(deployment.state_machine_arn, deployment.client())
    _outcome(executor, "status503", compiled)
    seen = [(e["target"]["model"], e["attempt"]) for e in deployment.invocations]
    assert seen == [("bad+status=503", 0), ("bad+status=503", 1), ("good", 0)]
    first = deployment.invocations[0]
    assert (first["attempts"], first["timeout_s"], first["max_retry_after_s"]) == (2, 0.5, 5)


def test_backoff_doubles_up_to_its_cap_before_the_jitter(
    policy: dict[str, Any], deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the jitter pinned to its upper bound, the intervals moto's interpreter computes from
    the definition are the in-process executor's ceilings: 1 s, 2 s, then 4 s capped at 3 s."""
    drawn: list[tuple[float, float]] = []

    def top(low: float, high: float) -> float:
        drawn.append((low, high))
        return high

    monkeypatch.setattr(jitter_strategy_decl, "random", types.SimpleNamespace(uniform=top))
    executor = StepFunctionsExecutor(deployment.state_machine_arn, deployment.client())
    outcome = _outcome(executor, "backoff", parse_policy(policy))
    assert outcome["status"] == 503 and "4 attempt(s)" in outcome["message"]
    assert deployment.waits == [1, 2, 3]
    assert drawn == [(0, 1), (0, 2), (0, 3)]
