"""The fail-over's attempt function run from the built orchestrate artifact, given the input a
Step Functions Task sends it.

The input is made as Step Functions makes it: the Task's `Parameters.Payload` from the state
machine definition in the synthesized template, its `.$` paths resolved against the execution
input the gateway's `StepFunctionsExecutor` sends and the state's context (`$$.State.RetryCount`);
only the target is swapped for the mock upstream (the template's policy names Bedrock models).
A raised exception is reported as Lambda's runtime reports it (`errorType` is the class name),
which is the error name the Task's Retry and Catch rules match on.

Emulated: Secrets Manager (moto's server, the provider key read from the secret the template
names), the provider (the mock upstream, answering 200 or 503). Real: the attempt handler, the
provider adapter and pydantic validation from the artifact, in a fresh `python -I -S` holding
only /var/task, /opt/python and the runtime's boto3. The state machine itself runs in moto's ASL
interpreter in tests/integration/test_step_functions_failover.py; here only its Task's payload
shape is taken from it. IAM: every recorded SDK call is evaluated against the statements the
template attaches to the role of the function the state machine invokes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lockgate.chat import ChatRequest
from lockgate.routing import remote
from lockgate.stores.aws.step_functions import StepFunctionsExecutor

from tests.artifacts.conftest_stack import (
    moto_stack,
    store_provider_key,
    synthesized_template,
    write_policy,
)
from tests.artifacts.harness import EmulatedStack, LambdaProcess, denied_calls
from tests.support.servers import mock_upstream

pytestmark = pytest.mark.slow


def task_payload(
    template: dict[str, Any], request: ChatRequest, target: dict[str, str], retry_count: int
) -> dict[str, Any]:
    """What the first Task of the template's state machine sends the attempt function."""
    machine = next(
        res["Properties"]
        for res in template["Resources"].values()
        if res["Type"] == "AWS::StepFunctions::StateMachine"
    )
    states = json.loads(machine["DefinitionString"])["States"]
    task = next(state for state in states.values() if state["Type"] == "Task")
    executor = StepFunctionsExecutor("arn:aws:states:::stateMachine:unused", client=object())
    execution_input = json.loads(executor._input(request, "fast"))
    context = {"State": {"RetryCount": retry_count}}

    def path(expression: str) -> Any:
        root, *keys = expression.split(".")
        value: Any = context if root == "$$" else execution_input
        for key in keys:
            value = value[key]
        return value

    payload: dict[str, Any] = {}
    for key, value in task["Parameters"]["Payload"].items():
        if key.endswith(".$"):
            payload[key[:-2]] = path(value)
        else:
            payload[key] = value
    assert set(payload) >= {"target", "request", "attempt", "attempts", "timeout_s"}
    payload["target"] = target
    return payload


def request(text: str) -> ChatRequest:
    return ChatRequest.model_validate(
        {"model": "fast", "messages": [{"role": "user", "content": text}], "max_tokens": 64}
    )


class Run:
    def __init__(self, stack: EmulatedStack, process: LambdaProcess, template: dict[str, Any]):
        self.stack, self.process = stack, process
        self.function = stack.task_function()
        good = task_payload(template, request("hello"), {"provider": "mock", "model": "m"}, 0)
        self.answered = process.outcome(good)
        failing = {"provider": "mock", "model": "m+status=503"}
        self.failed = process.outcome(task_payload(template, request("hello"), failing, 1))
        process.stop()


@pytest.fixture(scope="module")
def run(local_build: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    work = tmp_path_factory.mktemp("attempt-artifact")
    template = synthesized_template()
    with moto_stack(template) as stack, mock_upstream() as upstream:
        function = stack.task_function()
        store_provider_key(stack, function)
        env = {
            **stack.environment(function),
            "AWS_ENDPOINT_URL": stack.endpoint,
            "LOCKGATE_CONFIG": str(write_policy(work / "policy.yaml", upstream)),
            "LOCKGATE_DATA_DIR": str(work / "tmp"),
        }
        process = LambdaProcess(local_build, "orchestrate", env, work, handler="attempt.handler")
        try:
            yield Run(stack, process.start(), template)
        finally:
            if process.process and process.process.poll() is None:
                process.process.kill()


def test_an_answered_attempt_returns_what_the_state_machine_selects(run: Run) -> None:
    answer = run.answered.get("result")
    assert answer is not None, run.answered.get("error")
    assert answer["target"] == "mock/m" and answer["attempt"] == 0
    assert answer["result"]["text"] and answer["result"]["usage"]["completion_tokens"] > 0


def test_a_503_raises_the_retryable_error_name_with_its_failure(run: Run) -> None:
    """The class name is what Retry matches (`Lockgate.Retryable`); the message is what the
    gateway reads back from the Catch's cause."""
    assert run.failed.get("errorType") == remote.RETRYABLE, run.failed
    failures = remote.failures_from_cause(run.failed["errorType"], json.dumps(run.failed))
    assert [failure.status for failure in failures] == [503, 503]  # this try and the one before


def test_no_import_came_from_outside_the_artifact(run: Run) -> None:
    assert run.process.modules["attempt"].startswith(str(run.process.task))
    assert run.process.modules["lockgate"].startswith(str(run.process.layer))
    assert run.process.leaked_modules() == {}


def test_every_call_is_granted_to_the_attempt_functions_role(run: Run) -> None:
    calls = run.process.calls()
    assert "GetSecretValue" in {c["operation"] for c in calls}
    denied = denied_calls(calls, run.stack.policy(run.function), run.stack)
    assert denied == [], "not granted:\n" + "\n".join(denied)
