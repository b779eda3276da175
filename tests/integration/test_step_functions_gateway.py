"""The gateway serving an `executor: step_functions` alias through Step Functions, end to end.

The real app (uvicorn, as the orchestrate function runs it behind the Lambda Web Adapter), built
by the composition root with `LOCKGATE_STATE_MACHINE_ARN` set, so buffered chat goes through
`StepFunctionsExecutor` → moto's Step Functions running the compiled definition → the attempt
handler → the OpenAI adapter → the mock upstream, whose first target fails. The caller is the
`openai` SDK. Streams of the same alias stay in-process.

Emulated and filled in as described in tests/support/step_functions.py (moto's ASL interpreter
and Lambda API; the handler run in-process; StartSyncExecution emulated over moto's executions).
The stores are the embedded ones: this test is about the executor, not the AWS stores.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.support.servers import RunningGateway, gateway, mock_policy
from tests.support.step_functions import Deployment, deployed

MESSAGES: Any = [{"role": "user", "content": "say something"}]


@pytest.fixture(scope="module")
def stack(
    upstream: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Deployment, RunningGateway]]:
    models = {
        "durable": {
            "targets": ["mock/bad+status=503", "mock/good"],
            "executor": "step_functions",
        },
        "strict": {
            "targets": ["mock/bad+status=400", "mock/good"],
            "executor": "step_functions",
        },
    }
    policy = mock_policy(
        upstream,
        models,
        retry={"attempts": 2, "backoff_initial_s": 0.01, "backoff_max_s": 0.02},
        timeouts={"response_s": 2, "total_s": 20},
    )
    workdir = tmp_path_factory.mktemp("sfn-gateway")
    with (
        pytest.MonkeyPatch.context() as monkeypatch,
        deployed(policy, workdir, monkeypatch) as deployment,
        gateway(policy, workdir, state_machine_arn=deployment.state_machine_arn) as running,
    ):
        yield deployment, running


@pytest.fixture
def client(stack: tuple[Deployment, RunningGateway]) -> openai.OpenAI:
    running = stack[1]
    return openai.OpenAI(base_url=running.v1, api_key=running.api_key, max_retries=0, timeout=60)


def test_buffered_chat_falls_back_through_step_functions(
    client: openai.OpenAI, stack: tuple[Deployment, RunningGateway]
) -> None:
    deployment = stack[0]
    deployment.invocations.clear()
    raw = client.chat.completions.with_raw_response.create(model="durable", messages=MESSAGES)
    completion = raw.parse()
    assert raw.headers["x-lockgate-model"] == "mock/good"
    assert raw.headers["x-lockgate-attempts"] == "3"
    assert completion.choices[0].finish_reason == "stop" and completion.choices[0].message.content
    tried = [(i["target"]["model"], i["attempt"]) for i in deployment.invocations]
    assert tried == [("bad+status=503", 0), ("bad+status=503", 1), ("good", 0)]


def test_a_request_error_is_the_clients_at_once(
    client: openai.OpenAI, stack: tuple[Deployment, RunningGateway]
) -> None:
    deployment = stack[0]
    deployment.invocations.clear()
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="strict", messages=MESSAGES)
    assert "Upstream rejected the request" in caught.value.message
    assert [i["target"]["model"] for i in deployment.invocations] == ["bad+status=400"]


def test_streams_of_the_same_alias_stay_in_process(
    client: openai.OpenAI, stack: tuple[Deployment, RunningGateway]
) -> None:
    deployment = stack[0]
    deployment.invocations.clear()
    with client.chat.completions.with_streaming_response.create(
        model="durable", messages=MESSAGES, stream=True
    ) as response:
        assert response.headers["x-lockgate-model"] == "mock/good"
        lines = [line for line in response.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    assert deployment.invocations == []
