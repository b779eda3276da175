"""Schemathesis over the served OpenAPI document (issue 9): every documented route, with
generated parameters and bodies, answers without a 5xx and with the OpenAI error envelope.
Bounded (a few examples per operation), marked slow.

Real: the gateway on loopback with the admin API enabled, schemathesis calling it over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.support.servers import RunningGateway, gateway, mock_policy

ADMIN_KEY = "adm-fuzz-key-0123456789"


@pytest.fixture(scope="module")
def gw(upstream: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    policy = mock_policy(upstream, {"fast": {"targets": ["mock/good"]}})
    with gateway(policy, tmp_path_factory.mktemp("openapi"), admin_key=ADMIN_KEY) as running:
        yield running


@pytest.mark.slow
def test_documented_routes_never_answer_5xx(gw: RunningGateway) -> None:
    schema = schemathesis.openapi.from_url(f"{gw.base_url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 8
    for operation in operations:
        _fuzz(operation, ADMIN_KEY if operation.path.startswith("/admin") else gw.api_key)


def _fuzz(operation: Any, key: str) -> None:
    """A few generated cases of one operation, each called with the right key."""

    @settings(
        max_examples=8,
        deadline=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    @given(case=operation.as_strategy())
    def check(case: Any) -> None:
        response = case.call(headers={"authorization": f"Bearer {key}"})
        assert response.status_code < 500, (case.method, case.formatted_path, response.text)
        if response.status_code >= 400:
            error = response.json()["error"]
            assert set(error) == {"message", "type", "param", "code"}

    check()
