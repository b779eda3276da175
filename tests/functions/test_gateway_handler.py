"""functions/gateway/handler.py, invoked as Lambda would with API Gateway REST proxy events."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from lockgate import deferred
from lockgate.limits.usage import UsageLedger

from tests.support.servers import mock_policy, mock_upstream


def rest_proxy_event(
    method: str, path: str, stage: str = "prod", api_key_id: str | None = "k1"
) -> dict[str, Any]:
    """The event API Gateway sends a Lambda proxy integration (payload format 1.0)."""
    headers = {
        "Host": "abc123.execute-api.eu-west-1.amazonaws.com",
        "User-Agent": "pytest",
        "x-api-key": "test-key",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Port": "443",
    }
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": path,
            "httpMethod": method,
            "path": f"/{stage}{path}",
            "stage": stage,
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "accountId": "123456789012",
            "apiId": "abc123",
            "identity": {"sourceIp": "203.0.113.7", "apiKey": "test-key", "apiKeyId": api_key_id},
        },
        "body": None,
        "isBase64Encoded": False,
    }


class FakeContext:
    function_name = "gateway"
    aws_request_id = "req-1"
    memory_limit_in_mb = 512

    def get_remaining_time_in_millis(self) -> int:
        return 29_000


@pytest.fixture(scope="module")
def handler_module(
    entry_loader: Callable[[str, str], ModuleType], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ModuleType]:
    data_dir: Path = tmp_path_factory.mktemp("lockgate-data")
    with pytest.MonkeyPatch.context() as patch:
        # As the stack configures the function: writable /tmp, no local model, keys checked by
        # API Gateway.
        patch.setenv("LOCKGATE_DATA_DIR", str(data_dir))
        patch.setenv("LOCKGATE_WARM_LOCAL_MODEL", "false")
        patch.setenv("LOCKGATE_AUTH", "api-gateway")
        yield entry_loader("functions/gateway/handler.py", "lockgate_gateway_handler")


def test_health_answers_200(handler_module: ModuleType) -> None:
    response = handler_module.handler(rest_proxy_event("GET", "/health"), FakeContext())
    assert response["statusCode"] == 200
    assert json.loads(response["body"])["status"] == "ok"


def test_warm_container_keeps_serving(handler_module: ModuleType) -> None:
    """The app's lifespan runs once per container, not around each invocation."""
    for _ in range(3):
        response = handler_module.handler(rest_proxy_event("GET", "/health"), FakeContext())
        assert response["statusCode"] == 200


def test_unknown_route_is_the_apps_404(handler_module: ModuleType) -> None:
    response = handler_module.handler(rest_proxy_event("GET", "/v1/nope"), FakeContext())
    assert response["statusCode"] == 404


def test_models_trust_the_key_id_api_gateway_checked(handler_module: ModuleType) -> None:
    response = handler_module.handler(rest_proxy_event("GET", "/v1/models"), FakeContext())
    assert response["statusCode"] == 200
    assert json.loads(response["body"])["object"] == "list"


def test_no_key_id_means_no_tenant(handler_module: ModuleType) -> None:
    event = rest_proxy_event("GET", "/v1/models", api_key_id=None)
    response = handler_module.handler(event, FakeContext())
    assert response["statusCode"] == 401


def test_an_answers_usage_and_access_line_are_recorded_before_the_handler_returns(
    entry_loader: Callable[[str, str], ModuleType],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The usage of an answer is recorded just after the answer is sent, and its access line a
    little later; Lambda may freeze the environment as soon as the handler returns, so the
    handler waits for both. Recording is made as slow as a remote store's round trip; the
    embedded usage journal and the log show what was written by the time the handler
    returned."""
    record = UsageLedger.record

    async def slow_record(self: UsageLedger, **fields: Any) -> Any:
        await asyncio.sleep(0.2)
        return await record(self, **fields)

    with mock_upstream() as upstream, pytest.MonkeyPatch.context() as patch:
        patch.setattr(UsageLedger, "record", slow_record)
        patch.setattr(deferred, "MAX_DELAY_S", 3600.0)  # a frozen environment's "later"
        config = tmp_path / "policy.yaml"
        policy = mock_policy(upstream, {"fast": {"targets": ["mock/good"]}})
        config.write_text(yaml.safe_dump(policy))
        patch.setenv("LOCKGATE_DATA_DIR", str(tmp_path / "data"))
        patch.setenv("LOCKGATE_CONFIG", str(config))
        patch.setenv("LOCKGATE_AUTH", "api-gateway")
        module = entry_loader("functions/gateway/handler.py", "lockgate_gateway_usage")
        event = rest_proxy_event("POST", "/v1/chat/completions")
        chat = {"model": "fast", "messages": [{"role": "user", "content": "hi"}]}
        event["body"] = json.dumps(chat)
        with caplog.at_level(logging.INFO, logger="lockgate.access"):
            response = module.handler(event, FakeContext())
            logged = [r for r in caplog.records if r.name == "lockgate.access"]
        journaled = (tmp_path / "data" / "usage-journal" / "active.jsonl").read_text()
    assert response["statusCode"] == 200
    assert '"alias:fast"' in journaled
    assert [r.fields["path"] for r in logged] == ["/v1/chat/completions"]  # type: ignore[attr-defined]
