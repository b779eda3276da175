"""The policy → ASL compiler (infra/stepfunctions.py), read as a definition: what each Task's
Retry and Catch say for a given policy. That the definition *behaves* like the in-process
executor is shown by running it (tests/integration/test_step_functions_failover.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from lockgate.policy import PolicyError, parse_policy
from lockgate.providers.errors import ErrorKind, ProviderError, from_status
from lockgate.routing import remote

from infra.stepfunctions import (
    ALL_FAILED_STATE,
    CLIENT_ERROR_STATE,
    attempt_timeout_seconds,
    compile_policy,
)


def _policy(**models: Any) -> Any:
    return parse_policy(
        {
            "providers": {"a": {"kind": "openai"}, "b": {"kind": "anthropic"}},
            "models": models,
            "retry": {"attempts": 3, "backoff_initial_s": 0.1, "backoff_max_s": 2.5},
            "timeouts": {"response_s": 30, "total_s": 90},
        }
    )


DURABLE = {"targets": ["a/m1", "b/m2"], "executor": "step_functions"}


def test_each_target_retries_by_the_policy_then_catches_to_the_next() -> None:
    states = compile_policy(_policy(durable=DURABLE, quick={"targets": ["a/m1"]}))["States"]
    first, second = states["durable #1 a/m1"], states["durable #2 b/m2"]
    (upstream,) = [r for r in first["Retry"] if remote.RETRYABLE in r["ErrorEquals"]]
    assert upstream == {
        "ErrorEquals": [remote.RETRYABLE, remote.TIMEOUT, "States.Timeout"],
        "IntervalSeconds": 1,  # 0.1 s rounded up to Step Functions' whole seconds
        "BackoffRate": 2.0,
        "MaxAttempts": 2,  # attempts: 3 tries in all
        "MaxDelaySeconds": 3,
        "JitterStrategy": "FULL",
    }
    assert [(c["ErrorEquals"], c["Next"]) for c in first["Catch"]] == [
        ([remote.CLIENT_ERROR], CLIENT_ERROR_STATE),
        (["States.ALL"], "durable #2 b/m2"),
    ]
    assert second["Catch"][1]["Next"] == ALL_FAILED_STATE
    assert first["Parameters"]["Payload"]["target"] == {"provider": "a", "model": "m1"}
    assert first["TimeoutSeconds"] == 30 + 10 + 10  # response_s, max_retry_after_s, margin


def test_only_step_functions_aliases_are_compiled() -> None:
    definition = compile_policy(_policy(durable=DURABLE, quick={"targets": ["a/m1"]}))
    choices = definition["States"]["Alias"]["Choices"]
    assert [c["StringEquals"] for c in choices] == ["durable"]
    assert not any(name.startswith("quick") for name in definition["States"])
    assert definition["TimeoutSeconds"] == 90


def test_a_single_try_has_no_upstream_retry_and_timeouts_are_capped_for_express() -> None:
    policy = _policy(
        once={**DURABLE, "retry": {"attempts": 1}, "timeouts": {"total_s": 900}},
    )
    definition = compile_policy(policy)
    task = definition["States"]["once #1 a/m1"]
    assert all(remote.RETRYABLE not in r["ErrorEquals"] for r in task["Retry"])
    assert definition["TimeoutSeconds"] == 300
    assert attempt_timeout_seconds(policy) == 120 + 10 + 10


def test_no_step_functions_alias_is_refused() -> None:
    with pytest.raises(ValueError, match="executor: step_functions"):
        compile_policy(_policy(quick={"targets": ["a/m1"]}))


def test_unknown_executor_is_refused_with_its_path() -> None:
    with pytest.raises(PolicyError, match=r"models\.x\.executor"):
        _policy(x={"targets": ["a/m1"], "executor": "lambda"})


@pytest.mark.parametrize(
    ("error", "name"),
    [
        (from_status(503, "busy"), remote.RETRYABLE),
        (from_status(429, "slow", retry_after=2), remote.RETRYABLE),
        (from_status(429, "slow", retry_after=60), remote.RATE_LIMITED),
        (ProviderError("t", kind=ErrorKind.RETRYABLE, code="timeout_response"), remote.TIMEOUT),
        (from_status(401, "key"), remote.TARGET_REJECTED),
        (from_status(400, "bad"), remote.CLIENT_ERROR),
    ],
)
def test_error_names_follow_the_in_process_decisions(error: ProviderError, name: str) -> None:
    assert remote.error_name(error, max_retry_after_s=10) == name


def test_a_failure_survives_the_round_trip_through_the_state_machine() -> None:
    """What the attempt raises comes back from a Catch's cause as the same error, once per try."""
    error = from_status(429, "slow down", retry_after=3)
    payload = {
        "errorType": remote.RETRYABLE,
        "errorMessage": remote.failure_message(error, "a/m", 1),
    }
    (first, second) = remote.failures_from_cause(remote.RETRYABLE, json.dumps(payload))
    assert first is second
    assert (first.kind, first.status, first.retry_after, first.code) == (
        ErrorKind.RETRYABLE,
        429,
        3,
        "upstream_429",
    )
    (timeout,) = remote.failures_from_cause("States.Timeout", "Task timed out")
    assert timeout.code.startswith("timeout")
