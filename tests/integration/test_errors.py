"""Bad input and bad keys: the right status, the protocol's error envelope, nothing leaked."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import anthropic
import httpx
import openai
import pytest
from lockgate.observability import JsonFormatter

from tests.support.servers import API_KEY, RunningGateway, gateway, mock_policy

UPSTREAM_SECRET = "sk-upstream-secret-1234"


@pytest.fixture(scope="module")
def gw(upstream: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    policy = mock_policy(
        upstream,
        {"fast": {"targets": ["mock/gpt-fast"]}, "down": {"targets": ["mock/x+status=500"]}},
        retry={"attempts": 1},
    )
    with gateway(policy, tmp_path_factory.mktemp("errors"), max_body_bytes=4096) as running:
        yield running


@pytest.fixture
def http(gw: RunningGateway) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gw.base_url, headers={"authorization": f"Bearer {gw.api_key}"}) as c:
        yield c


def _openai_error(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert response.headers["x-request-id"]
    return dict(error)


CHAT = "/v1/chat/completions"
GOOD = {"model": "fast", "messages": [{"role": "user", "content": "hi"}]}


def test_malformed_json_is_400(http: httpx.Client) -> None:
    error = _openai_error(http.post(CHAT, content=b'{"model": "fast", '), 400)
    assert "not valid JSON" in str(error["message"])


def test_not_an_object_is_400(http: httpx.Client) -> None:
    _openai_error(http.post(CHAT, content=b"[1, 2]"), 400)


def test_validation_errors_are_400_never_422(http: httpx.Client) -> None:
    error = _openai_error(http.post(CHAT, json={"model": "fast", "messages": []}), 400)
    assert error["param"] == "messages"
    error = _openai_error(http.post(CHAT, json={**GOOD, "temperature": 7}), 400)
    assert error["param"] == "temperature"
    _openai_error(http.post(CHAT, json={"messages": GOOD["messages"]}), 400)


def test_oversize_body_is_413(http: httpx.Client) -> None:
    big = {"model": "fast", "messages": [{"role": "user", "content": "x" * 10_000}]}
    error = _openai_error(http.post(CHAT, json=big), 413)
    assert error["code"] == "request_too_large"


def test_unknown_model_is_404(http: httpx.Client) -> None:
    error = _openai_error(http.post(CHAT, json={**GOOD, "model": "nope"}), 404)
    assert error["code"] == "model_not_found" and "fast" in str(error["message"])


@pytest.mark.parametrize("headers", [{}, {"authorization": "Bearer wrong"}, {"x-api-key": "wrong"}])
def test_missing_or_unknown_key_is_401(gw: RunningGateway, headers: dict[str, str]) -> None:
    response = httpx.post(f"{gw.base_url}{CHAT}", json=GOOD, headers=headers)
    error = _openai_error(response, 401)
    assert error["code"] == "invalid_api_key"
    assert "wrong" not in response.text


def test_models_needs_a_key(gw: RunningGateway) -> None:
    _openai_error(httpx.get(f"{gw.base_url}/v1/models"), 401)


def test_unknown_route_is_404_envelope(http: httpx.Client) -> None:
    _openai_error(http.get("/v1/nothing-here"), 404)


def test_upstream_failure_is_502_envelope(gw: RunningGateway) -> None:
    client = openai.OpenAI(base_url=gw.v1, api_key=gw.api_key, max_retries=0)
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model="down", messages=GOOD["messages"])  # type: ignore[arg-type]
    assert caught.value.status_code == 502


def test_anthropic_route_uses_anthropic_envelope(gw: RunningGateway) -> None:
    client = anthropic.Anthropic(base_url=gw.base_url, api_key="wrong", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as caught:
        client.messages.create(
            model="fast", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
        )
    assert caught.value.body == {
        "type": "error",
        "error": {"type": "authentication_error", "message": caught.value.body["error"]["message"]},  # type: ignore[index]
    }
    response = httpx.post(
        f"{gw.base_url}/v1/messages", content=b"{oops", headers={"x-api-key": gw.api_key}
    )
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    response = httpx.post(
        f"{gw.base_url}/v1/messages",
        json={"model": "nope", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]},
        headers={"x-api-key": gw.api_key},
    )
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found_error"


def test_no_secret_or_prompt_reaches_the_logs(
    gw: RunningGateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    prompt = "my private question about zebras"
    client = openai.OpenAI(base_url=gw.v1, api_key=gw.api_key, max_retries=0)
    client.chat.completions.create(model="fast", messages=[{"role": "user", "content": prompt}])
    with pytest.raises(openai.APIError):
        client.chat.completions.create(model="down", messages=[{"role": "user", "content": prompt}])
    httpx.post(
        f"{gw.base_url}{CHAT}",
        json=GOOD,
        headers={"authorization": "Bearer sk-leaked-guess-123456"},
    )
    formatter = JsonFormatter()
    written = "\n".join(formatter.format(record) for record in caplog.records)
    assert '"request_id"' in written
    for secret in (API_KEY, UPSTREAM_SECRET, "sk-leaked-guess-123456", "zebras"):
        assert secret not in written
