"""The gateway function run from its built artifact, as Lambda would run it.

The artifact is the lock built for this interpreter (Python 3.11: there is no 3.12 here; the
3.12 build differs only in its compiled wheels, see test_sizes.py). The handler runs in a fresh
`python -I -S` whose path holds only the function's code (/var/task), the layer (/opt/python)
and a pinned boto3 standing in for the runtime's; the test asserts nothing else was imported.

Emulated: DynamoDB, S3, Secrets Manager (moto's server, resources created from the
synthesized template and named by it), OpenSearch (the stub, enforcing the role's es:ESHttp*
grants), the LLM provider (the mock upstream, whose key comes from the provider secret), API
Gateway (the REST proxy events are written here in its documented shape). Real: Mangum, the
app, the stores' boto3 and opensearch-py clients, the MiniLM model loaded from the layer. IAM is
checked by evaluating every recorded SDK call against the template's statements for the
function's role (not by AWS).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.artifacts.conftest_stack import (
    moto_stack,
    store_provider_key,
    synthesized_template,
    write_policy,
)
from tests.artifacts.harness import EmulatedStack, LambdaProcess, Policy, denied_calls
from tests.support.opensearch_stub import OpenSearchStub, opensearch_stub
from tests.support.servers import mock_upstream

pytestmark = pytest.mark.slow


def rest_event(
    method: str,
    path: str,
    *,
    api_key_id: str | None = "key-acme",
    body: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An API Gateway REST proxy event (payload 1.0) for a method that requires an API key."""
    all_headers = {
        "Host": "abc123.execute-api.eu-west-1.amazonaws.com",
        "Content-Type": "application/json",
        "X-Forwarded-Proto": "https",
        **(headers or {}),
    }
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": all_headers,
        "multiValueHeaders": {k: [v] for k, v in all_headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": path,
            "httpMethod": method,
            "path": f"/prod{path}",
            "stage": "prod",
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "accountId": "123456789012",
            "apiId": "abc123",
            "identity": {"sourceIp": "203.0.113.7", "apiKeyId": api_key_id},
        },
        "body": json.dumps(body) if body is not None else None,
        "isBase64Encoded": False,
    }


FORGED = json.dumps({"identity": {"apiKeyId": "key-globex"}})


class Run:
    """One execution environment's life: every invocation, then the process's exit."""

    def __init__(self, stack: EmulatedStack, process: LambdaProcess, stub: OpenSearchStub):
        self.stack, self.process, self.stub = stack, process, stub
        invoke = process.invoke
        self.health = invoke(rest_event("GET", "/health"))
        self.models = invoke(rest_event("GET", "/v1/models"))
        self.chats = [
            invoke(rest_event("POST", "/v1/chat/completions", body=chat("hi there")))
            for _ in range(2)
        ]
        # A client header claiming another tenant's key id, on a request API Gateway let
        # through without a key.
        self.forged = invoke(
            rest_event(
                "GET", "/v1/models", api_key_id=None, headers={"x-amzn-request-context": FORGED}
            )
        )
        process.stop()


def chat(text: str) -> dict[str, Any]:
    return {"model": "fast", "messages": [{"role": "user", "content": text}]}


@pytest.fixture(scope="module")
def run(local_build: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    work = tmp_path_factory.mktemp("gateway-artifact")
    template = synthesized_template()
    with (
        moto_stack(template) as stack,
        mock_upstream() as upstream,
        opensearch_stub() as (search_url, stub),
    ):
        function = stack.api_function("GET", "/v1/models")
        policy = stack.policy(function)
        domain = stack.arns[stack.domain(function)]
        store_provider_key(stack, function)
        stub.authorize = lambda method, path: policy.es_allows(domain, method, path)
        stub.enforce = False  # list every gap in one run; the test below fails on any
        env = {
            **stack.environment(function),
            "AWS_ENDPOINT_URL": stack.endpoint,
            "LOCKGATE_OPENSEARCH_URL": search_url,
            "LOCKGATE_CONFIG": str(write_policy(work / "policy.yaml", upstream)),
            "LOCKGATE_DATA_DIR": str(work / "tmp"),
        }
        process = LambdaProcess(local_build, "gateway", env, work, handler="handler.handler")
        try:
            yield Run(stack, process.start(), stub)
        finally:
            if process.process and process.process.poll() is None:
                process.process.kill()


def header(answer: dict[str, Any], name: str) -> str | None:
    values = answer.get("multiValueHeaders") or {}
    if name in values:
        return str(values[name][0])
    value = (answer.get("headers") or {}).get(name)
    return None if value is None else str(value)


def test_answers_health_models_and_chat_from_the_artifact(run: Run) -> None:
    assert run.health["statusCode"] == 200
    assert run.models["statusCode"] == 200, run.models["body"]
    assert "fast" in [m["id"] for m in json.loads(run.models["body"])["data"]]
    first, again = run.chats
    assert first["statusCode"] == 200, first["body"]
    assert json.loads(first["body"])["choices"][0]["message"]["content"]
    assert header(first, "x-lockgate-cache") == "miss"
    assert header(again, "x-lockgate-cache") == "exact"


def test_a_forged_request_context_header_is_not_an_identity(run: Run) -> None:
    """Mangum's event is the only identity: the forged header is dropped, the request refused."""
    assert run.forged["statusCode"] == 401
    assert json.loads(run.forged["body"])["error"]["code"] == "invalid_api_key"


def test_no_import_came_from_outside_the_artifact(run: Run) -> None:
    assert run.process.modules, "the child reported no modules"
    assert run.process.modules["lockgate"].startswith(str(run.process.layer))
    assert run.process.modules["handler"].startswith(str(run.process.task))
    assert run.process.leaked_modules() == {}


def test_every_call_is_granted_to_the_functions_role(run: Run) -> None:
    """Index creation at start, semantic-cache writes to `/<index>/_bulk`, the provider
    secret's read: each call the run made, against the role's statements in the template."""
    policy: Policy = run.stack.policy(run.stack.api_function("GET", "/v1/models"))
    calls = run.process.calls()
    assert "GetSecretValue" in {c["operation"] for c in calls}
    assert {(r.method, r.path) for r in run.stub.requests} >= {("POST", "/lockgate-cache/_bulk")}
    denied = denied_calls(calls, policy, run.stack)
    denied += sorted({f"es:ESHttp{r.method.capitalize()} {r.path}" for r in run.stub.denied})
    assert denied == [], "not granted:\n" + "\n".join(denied)
