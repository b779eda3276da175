"""`StepFunctionsExecutor`'s reading of outcomes that moto cannot produce: a refused start, a run
that timed out, a run that failed outside the compiled failure states. The responses go through
botocore's Stubber, which checks them against the real StartSyncExecution model; what AWS
returns in these cases is known by reading its API reference."""

from __future__ import annotations

import asyncio
import datetime
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber
from lockgate.api.errors import GatewayError, from_provider_errors
from lockgate.chat import ChatRequest
from lockgate.policy import Target
from lockgate.routing import remote
from lockgate.routing.fallback import FallbackExhausted
from lockgate.routing.router import Route
from lockgate.stores.aws.step_functions import MAX_INPUT_BYTES, StepFunctionsExecutor

ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:lockgate-failover"
REQUEST = ChatRequest.model_validate({"model": "d", "messages": [{"role": "user", "content": "q"}]})
ROUTE = Route("d", "direct", (Target(provider="a", model="m"),))
NOW = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


@pytest.fixture
def stubbed() -> Iterator[tuple[StepFunctionsExecutor, Stubber]]:
    client = boto3.client(
        "stepfunctions", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    with Stubber(client) as stubber:
        yield StepFunctionsExecutor(ARN, client), stubber
        stubber.assert_no_pending_responses()


def _expected() -> dict[str, Any]:
    return {"stateMachineArn": ARN, "name": ANY, "input": ANY}


def _finished(status: str, **extra: Any) -> dict[str, Any]:
    return {
        "executionArn": f"{ARN}:run",
        "startDate": NOW,
        "stopDate": NOW,
        "status": status,
        **extra,
    }


def _error(executor: StepFunctionsExecutor) -> GatewayError:
    with pytest.raises(FallbackExhausted) as caught:
        asyncio.run(executor.complete(REQUEST, ROUTE))
    return from_provider_errors(caught.value.errors)


def test_the_run_gets_the_alias_and_the_request(
    stubbed: tuple[StepFunctionsExecutor, Stubber],
) -> None:
    executor, stubber = stubbed
    output = {
        "answer": {
            "target": "a/m",
            "attempt": 1,
            "result": {"text": "hi", "finish_reason": "stop", "usage": {"prompt_tokens": 3}},
        }
    }
    expected = {
        "stateMachineArn": ARN,
        "name": ANY,
        "input": json.dumps(
            {"alias": "d", "request": REQUEST.model_dump(mode="json", exclude_none=True)},
            separators=(",", ":"),
        ),
    }
    stubber.add_response(
        "start_sync_execution", _finished("SUCCEEDED", output=json.dumps(output)), expected
    )
    answer = asyncio.run(executor.complete(REQUEST, ROUTE))
    assert (answer.target.key, answer.attempts, answer.result.text) == ("a/m", 2, "hi")
    assert answer.result.usage.prompt_tokens == 3


def test_a_throttled_start_is_a_503(stubbed: tuple[StepFunctionsExecutor, Stubber]) -> None:
    executor, stubber = stubbed
    stubber.add_client_error(
        "start_sync_execution",
        "ThrottlingException",
        http_status_code=400,
        expected_params=_expected(),
    )
    error = _error(executor)
    assert error.status == 503 and "refused the run (ThrottlingException)" in error.message


def test_a_missing_state_machine_is_a_502(stubbed: tuple[StepFunctionsExecutor, Stubber]) -> None:
    executor, stubber = stubbed
    stubber.add_client_error(
        "start_sync_execution", "StateMachineDoesNotExist", expected_params=_expected()
    )
    assert _error(executor).status == 502


def test_a_run_past_its_deadline_is_a_504(stubbed: tuple[StepFunctionsExecutor, Stubber]) -> None:
    executor, stubber = stubbed
    stubber.add_response("start_sync_execution", _finished("TIMED_OUT"), _expected())
    error = _error(executor)
    assert (error.status, error.code) == (504, "upstream_timeout")


def test_a_run_that_broke_is_a_502_not_a_client_error(
    stubbed: tuple[StepFunctionsExecutor, Stubber],
) -> None:
    executor, stubber = stubbed
    stubber.add_response(
        "start_sync_execution",
        _finished("FAILED", error=remote.UNKNOWN_ALIAS, cause="not compiled"),
        _expected(),
    )
    error = _error(executor)
    assert error.status == 502 and remote.UNKNOWN_ALIAS in error.message


def test_a_request_too_large_for_step_functions_does_not_fit() -> None:
    executor = StepFunctionsExecutor(ARN, client=object())
    big = ChatRequest.model_validate(
        {"model": "d", "messages": [{"role": "user", "content": "x" * MAX_INPUT_BYTES}]}
    )
    assert executor.fits(REQUEST) and not executor.fits(big)
