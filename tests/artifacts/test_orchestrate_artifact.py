"""The orchestrate function from its built artifact: uvicorn serving the app as run.sh starts it,
with a streamed chat forwarded as the Lambda Web Adapter forwards it.

The adapter itself (a Rust binary in an AWS-published layer) cannot run here; `forward` does
what its source does for a REST API event (awslabs/aws-lambda-web-adapter, src/lib.rs): the
event's method, path, query, headers and body as an HTTP request to 127.0.0.1:<port>, with
`x-amzn-request-context` set to the event's request context, replacing any header of that name
the client sent, and the response body streamed back as it is written. run.sh's own arguments
are checked in tests/functions/test_orchestrate_run.py; here uvicorn gets the same ones.

Artifact, interpreter isolation, moto and the IAM check as in test_gateway_artifact.py.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.artifacts.conftest_stack import (
    moto_stack,
    store_provider_key,
    synthesized_template,
    write_policy,
)
from tests.artifacts.harness import EmulatedStack, LambdaProcess, denied_calls
from tests.artifacts.test_gateway_artifact import FORGED, rest_event
from tests.support.opensearch_stub import OpenSearchStub, opensearch_stub
from tests.support.servers import free_port, mock_upstream

pytestmark = pytest.mark.slow


def forward(port: int, event: dict[str, Any]) -> tuple[int, str, list[str]]:
    """The Web Adapter's forwarding of one API Gateway event: status, content type, and the
    body as the chunks in which it arrived."""
    headers = {k: v for k, v in event["headers"].items() if k.lower() != "x-amzn-request-context"}
    headers["x-amzn-request-context"] = json.dumps(event["requestContext"])
    headers["x-amzn-lambda-context"] = json.dumps({"request_id": "req-1"})
    with (
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client,
        client.stream(
            event["httpMethod"], event["path"], headers=headers, content=event["body"] or b""
        ) as response,
    ):
        chunks = [chunk for chunk in response.iter_text() if chunk]
        return response.status_code, response.headers.get("content-type", ""), chunks


class Run:
    def __init__(self, stack: EmulatedStack, process: LambdaProcess, stub: OpenSearchStub):
        self.stack, self.process, self.stub = stack, process, stub


def wait_ready(port: int, process: LambdaProcess) -> None:
    """The adapter's readiness check: GET /health until it answers."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert process.process and process.process.poll() is None, process.stderr()
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError("no answer on /health within 120 s")


@pytest.fixture(scope="module")
def served(local_build: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    work = tmp_path_factory.mktemp("orchestrate-artifact")
    port = free_port()
    with (
        moto_stack(synthesized_template()) as stack,
        mock_upstream() as upstream,
        opensearch_stub() as (search_url, stub),
    ):
        function = stack.api_function("POST", "/v1/chat/completions")
        policy = stack.policy(function)
        domain = stack.arns[stack.domain(function)]
        store_provider_key(stack, function)
        stub.authorize = lambda method, path: policy.es_allows(domain, method, path)
        stub.enforce = False
        env = {
            **stack.environment(function),
            "AWS_ENDPOINT_URL": stack.endpoint,
            "LOCKGATE_OPENSEARCH_URL": search_url,
            "LOCKGATE_CONFIG": str(write_policy(work / "policy.yaml", upstream)),
            "LOCKGATE_DATA_DIR": str(work / "tmp"),
        }
        argv = ["--factory", "orchestrate_app:create_app", "--host", "127.0.0.1"]
        argv += ["--http", "lockgate.http_server:HeadWithBodyProtocol"]
        argv += ["--port", str(port), "--no-server-header", "--log-level", "warning"]
        process = LambdaProcess(
            local_build, "orchestrate", env, work, module="uvicorn", argv=argv
        ).start()
        try:
            wait_ready(port, process)
            yield port, Run(stack, process, stub)
        finally:
            if process.process and process.process.poll() is None:
                process.stop()


@pytest.fixture(scope="module")
def results(served: Any) -> dict[str, Any]:
    port, run = served
    body = {
        "model": "fast",
        "stream": True,
        "messages": [{"role": "user", "content": "tell me a story"}],
    }
    stream = forward(port, rest_event("POST", "/v1/chat/completions", body=body))
    forged = forward(
        port,
        rest_event(
            "GET", "/v1/models", api_key_id=None, headers={"x-amzn-request-context": FORGED}
        ),
    )
    run.process.stop()
    return {"run": run, "stream": stream, "forged": forged}


def test_a_chat_streams_through_the_adapter_from_the_artifact(results: dict[str, Any]) -> None:
    status, content_type, chunks = results["stream"]
    assert status == 200, chunks
    assert content_type.startswith("text/event-stream")
    events = [line for chunk in chunks for line in chunk.splitlines() if line.startswith("data:")]
    assert len(events) > 2 and events[-1] == "data: [DONE]"
    assert len(chunks) > 1, "the body arrived in one piece: not streamed"


def test_a_forged_header_through_the_adapter_is_refused(results: dict[str, Any]) -> None:
    """The adapter replaces the client's header with the event's context, which names no key."""
    status, _, chunks = results["forged"]
    assert status == 401
    assert json.loads("".join(chunks))["error"]["code"] == "invalid_api_key"


def test_no_import_came_from_outside_the_artifact(results: dict[str, Any]) -> None:
    process = results["run"].process
    assert process.modules["lockgate"].startswith(str(process.layer))
    assert process.modules["orchestrate_app"].startswith(str(process.task))
    assert process.leaked_modules() == {}


def test_every_call_is_granted_to_the_functions_role(results: dict[str, Any]) -> None:
    run = results["run"]
    policy = run.stack.policy(run.stack.api_function("POST", "/v1/chat/completions"))
    calls = run.process.calls()
    assert "GetSecretValue" in {c["operation"] for c in calls}
    denied = denied_calls(calls, policy, run.stack)
    denied += sorted({f"es:ESHttp{r.method.capitalize()} {r.path}" for r in run.stub.denied})
    assert denied == [], "not granted:\n" + "\n".join(denied)
