"""functions/orchestrate/attempt.py, invoked as a Step Functions Task invokes it: the payload the
compiled definition builds, one call of the real provider adapter to the mock upstream, and the
exception class name Lambda reports as `errorType` (the state machine's error name). The handler
is loaded fresh per test, as a new execution environment would load it."""

from __future__ import annotations

import json
import time
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from lockgate.routing import remote

from tests.support.servers import mock_policy
from tests.support.step_functions import close_container

CONTEXT = types.SimpleNamespace(
    function_name="lockgate-attempt",
    function_version="$LATEST",
    invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:lockgate-attempt",
    memory_limit_in_mb=512,
    aws_request_id="req-1",
)


@pytest.fixture
def attempt(
    entry_loader: Callable[[str, str], ModuleType],
    upstream: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[ModuleType]:
    config = tmp_path / "policy.yaml"
    policy = mock_policy(upstream, {"m": {"targets": ["mock/good"]}})
    config.write_text(yaml.safe_dump(policy), encoding="utf-8")
    monkeypatch.setenv("LOCKGATE_CONFIG", str(config))
    module = entry_loader("functions/orchestrate/attempt.py", f"attempt_{tmp_path.name}")
    yield module
    close_container(module)


def task(model: str, *, attempt: int = 0, attempts: int = 2, **extra: Any) -> dict[str, Any]:
    return {
        "target": {"provider": "mock", "model": model},
        "request": {"model": "m", "messages": [{"role": "user", "content": "hello"}]},
        "attempt": attempt,
        "attempts": attempts,
        "timeout_s": 0.5,
        "max_retry_after_s": 5,
        **extra,
    }


def test_an_answer_is_returned_with_its_target_and_attempt(attempt: ModuleType) -> None:
    output = attempt.handler(task("good", attempt=1), CONTEXT)
    assert (output["target"], output["attempt"]) == ("mock/good", 1)
    assert output["result"]["finish_reason"] == "stop" and output["result"]["text"]
    assert output["result"]["usage"]["completion_tokens"] > 0
    json.dumps(output)  # the state machine carries it as JSON


@pytest.mark.parametrize(
    ("model", "name"),
    [
        ("bad+status=503", remote.RETRYABLE),
        ("bad+timeout", remote.TIMEOUT),
        ("bad+status=429+retry_after=60", remote.RATE_LIMITED),
        ("bad+status=401", remote.TARGET_REJECTED),
        ("bad+status=400", remote.CLIENT_ERROR),
    ],
)
def test_failures_raise_the_state_machine_error_name(
    attempt: ModuleType, model: str, name: str
) -> None:
    with pytest.raises(attempt.AttemptFailed) as caught:
        attempt.handler(task(model), CONTEXT)
    assert type(caught.value).__name__ == name  # what Lambda reports as errorType
    details = json.loads(str(caught.value))
    assert details["target"] == f"mock/{model}" and details["attempt"] == 0


def test_a_retry_after_within_the_limit_is_waited_only_when_a_retry_follows(
    attempt: ModuleType,
) -> None:
    model = "wait+status=429+retry_after=0.4"
    started = time.monotonic()
    with pytest.raises(attempt.ERRORS[remote.RETRYABLE]):
        attempt.handler(task(model, attempt=0, attempts=2), CONTEXT)
    assert time.monotonic() - started >= 0.4
    started = time.monotonic()
    with pytest.raises(attempt.ERRORS[remote.RETRYABLE]):
        attempt.handler(task(model, attempt=1, attempts=2), CONTEXT)
    assert time.monotonic() - started < 0.4


def test_a_provider_missing_from_the_policy_is_a_rejected_target(attempt: ModuleType) -> None:
    event = task("good")
    event["target"]["provider"] = "elsewhere"
    with pytest.raises(attempt.ERRORS[remote.TARGET_REJECTED]):
        attempt.handler(event, CONTEXT)


def test_a_malformed_task_is_refused(attempt: ModuleType) -> None:
    with pytest.raises(ValueError, match="timeout_s"):
        attempt.handler({"target": {"provider": "mock", "model": "good"}}, CONTEXT)
