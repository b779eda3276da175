"""Fallback under each fault the mock upstream can inject, buffered and streamed.

The first target misbehaves in one way; the second is healthy. The client must get the healthy
answer with no sign of trouble other than `x-lockgate-attempts`, or — after the first chunk —
an explicit error instead of a stream that looks complete.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import openai
import pytest

from tests.support.servers import RunningGateway, gateway, mock_policy

FAULTS = {
    "status503": "bad+status=503",
    "status500": "bad+status=500",
    "status429": "bad+status=429",
    "status402": "bad+status=402",
    "timeout": "bad+timeout",
    "cut": "bad+cut_after=0",
    "malformed": "bad+malformed_after=0",
    "stall": "bad+stall_after=0",
    "stream_error": "bad+error_after=0",
    "connect": "REFUSED",
}
ANTHROPIC_FAULTS = [
    "status503",
    "status402",
    "status429",
    "timeout",
    "cut",
    "malformed",
    "stall",
    "stream_error",
]
TIMEOUTS = {
    "connect_s": 1,
    "first_token_s": 0.5,
    "between_chunks_s": 0.3,
    "response_s": 0.5,
    "total_s": 10,
}
RETRY = {"attempts": 2, "backoff_initial_s": 0.01, "backoff_max_s": 0.02}


def _policy(upstream: str) -> dict[str, object]:
    models: dict[str, object] = {
        name: {"targets": [f"mock/{model}", "mock/good"]}
        for name, model in FAULTS.items()
        if model != "REFUSED"
    }
    models["connect"] = {"targets": ["dead/x", "mock/good"]}
    for name in ANTHROPIC_FAULTS:
        models[f"ant_{name}"] = {"targets": [f"mockant/{FAULTS[name]}", "mock/good"]}
    models["midstream_cut"] = {"targets": ["mock/bad+cut_after=3", "mock/good"]}
    models["midstream_stall"] = {"targets": ["mock/bad+stall_after=3", "mock/good"]}
    models["midstream_malformed"] = {"targets": ["mock/bad+malformed_after=3", "mock/good"]}
    models["midstream_error"] = {"targets": ["mock/bad+error_after=3", "mock/good"]}
    models["flaky"] = {"targets": ["mock/flaky+fail_first=1+status=503", "mock/good"]}
    models["patient"] = {
        "targets": ["mock/slow+fail_first=1+status=429+retry_after=0.4", "mock/good"]
    }
    models["impatient"] = {
        "targets": ["mock/slow2+status=429+retry_after=60", "mock/good"],
        "retry": {"attempts": 3, "max_retry_after_s": 5},
    }
    models["bad_request"] = {"targets": ["mock/bad+status=400", "mock/good"]}
    models["all_down"] = {"targets": ["mock/a+status=503", "mock/b+status=502"]}
    models["all_timeout"] = {"targets": ["mock/a+timeout"]}
    models["all_busy"] = {"targets": ["mock/a+status=503", "mock/b+status=429"]}
    models["all_cut"] = {"targets": ["mock/a+cut_after=0"]}
    models["nan_probe"] = {"targets": ["mock/primary", "mock/good"], "retry": {"attempts": 1}}
    models["cooling"] = {"targets": ["mock/cool+status=500", "mock/good"], "retry": {"attempts": 1}}
    policy = mock_policy(
        upstream, models, timeouts=TIMEOUTS, retry=RETRY, cooldown={"failures": 2, "seconds": 0.6}
    )
    policy["providers"]["dead"] = {  # type: ignore[index]
        "kind": "openai",
        "base_url": "http://127.0.0.1:9/v1",
        "api_key": "x",
    }
    return policy


@pytest.fixture(scope="module")
def gw(upstream: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    with gateway(_policy(upstream), tmp_path_factory.mktemp("fallback")) as running:
        yield running


@pytest.fixture
def client(gw: RunningGateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.v1, api_key=gw.api_key, max_retries=0, timeout=20)


MESSAGES = [{"role": "user", "content": "say something"}]


ALIASES = list(FAULTS) + [f"ant_{name}" for name in ANTHROPIC_FAULTS]


@pytest.mark.parametrize("alias", ALIASES)
def test_buffered_falls_back(client: openai.OpenAI, alias: str) -> None:
    raw = client.chat.completions.with_raw_response.create(model=alias, messages=MESSAGES)  # type: ignore[arg-type]
    assert raw.headers["x-lockgate-model"] == "mock/good"
    assert int(raw.headers["x-lockgate-attempts"]) >= 2
    assert raw.parse().choices[0].finish_reason == "stop"


@pytest.mark.parametrize("alias", ALIASES)
def test_streamed_falls_back_before_first_chunk(client: openai.OpenAI, alias: str) -> None:
    with client.chat.completions.with_streaming_response.create(
        model=alias,
        messages=MESSAGES,
        stream=True,  # type: ignore[arg-type]
    ) as response:
        assert response.headers["x-lockgate-model"] == "mock/good"
        lines = [line for line in response.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    assert not any('"error"' in line for line in lines)


@pytest.mark.parametrize(
    "alias", ["midstream_cut", "midstream_stall", "midstream_malformed", "midstream_error"]
)
def test_failure_after_first_chunk_is_never_a_clean_end(client: openai.OpenAI, alias: str) -> None:
    stream = client.chat.completions.create(model=alias, messages=MESSAGES, stream=True)  # type: ignore[call-overload]
    received = []
    with pytest.raises(openai.APIError) as caught:
        for chunk in stream:
            received.append(chunk)
    assert received and all(c.choices[0].finish_reason is None for c in received)
    assert "Upstream stream failed" in str(caught.value)


def test_retry_recovers_on_the_same_target(client: openai.OpenAI, upstream: str) -> None:
    httpx.post(f"{upstream}/_mock/reset")
    raw = client.chat.completions.with_raw_response.create(model="flaky", messages=MESSAGES)  # type: ignore[arg-type]
    assert raw.headers["x-lockgate-model"] == "mock/flaky+fail_first=1+status=503"
    assert raw.headers["x-lockgate-attempts"] == "2"


def test_retry_after_is_honoured(client: openai.OpenAI, upstream: str) -> None:
    httpx.post(f"{upstream}/_mock/reset")
    started = time.monotonic()
    raw = client.chat.completions.with_raw_response.create(model="patient", messages=MESSAGES)  # type: ignore[arg-type]
    assert time.monotonic() - started >= 0.4
    assert raw.headers["x-lockgate-model"].startswith("mock/slow+")


def test_retry_after_too_long_moves_on_at_once(client: openai.OpenAI) -> None:
    started = time.monotonic()
    raw = client.chat.completions.with_raw_response.create(model="impatient", messages=MESSAGES)  # type: ignore[arg-type]
    assert time.monotonic() - started < 2
    assert raw.headers["x-lockgate-model"] == "mock/good"
    assert raw.headers["x-lockgate-attempts"] == "2"


def test_request_errors_are_not_retried(client: openai.OpenAI, upstream: str) -> None:
    httpx.post(f"{upstream}/_mock/reset")
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="bad_request", messages=MESSAGES)  # type: ignore[call-overload]
    assert "Upstream rejected the request" in caught.value.message
    requests = httpx.get(f"{upstream}/_mock/stats").json()["requests"]
    assert requests == {"bad+status=400": 1}


def test_all_targets_down_is_a_503_with_envelope(client: openai.OpenAI) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model="all_down", messages=MESSAGES)  # type: ignore[call-overload]
    assert caught.value.status_code == 502
    body = caught.value.response.json()
    assert body["error"]["type"] == "upstream_error"
    assert "4 attempt(s)" in body["error"]["message"]


def test_timeouts_everywhere_is_a_504(client: openai.OpenAI) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model="all_timeout", messages=MESSAGES)  # type: ignore[call-overload]
    assert caught.value.status_code == 504


def test_cooldown_skips_a_failing_target_then_lets_it_back(
    client: openai.OpenAI, upstream: str
) -> None:
    httpx.post(f"{upstream}/_mock/reset")
    for _ in range(2):
        raw = client.chat.completions.with_raw_response.create(model="cooling", messages=MESSAGES)  # type: ignore[arg-type]
        assert raw.headers["x-lockgate-attempts"] == "2"
    raw = client.chat.completions.with_raw_response.create(model="cooling", messages=MESSAGES)  # type: ignore[arg-type]
    assert raw.headers["x-lockgate-attempts"] == "1"
    assert raw.headers["x-lockgate-model"] == "mock/good"
    stats = httpx.get(f"{upstream}/_mock/stats").json()["requests"]
    assert stats["cool+status=500"] == 2
    time.sleep(0.7)
    raw = client.chat.completions.with_raw_response.create(model="cooling", messages=MESSAGES)  # type: ignore[arg-type]
    assert raw.headers["x-lockgate-attempts"] == "2"
    assert httpx.get(f"{upstream}/_mock/stats").json()["requests"]["cool+status=500"] == 3


def test_all_targets_busy_without_retry_after_still_says_when(client: openai.OpenAI) -> None:
    """README: a 503 from the gateway always carries Retry-After, even when no upstream gave
    one (regression: it had none)."""
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model="all_busy", messages=MESSAGES)  # type: ignore[call-overload]
    assert caught.value.status_code == 503
    assert int(caught.value.response.headers["retry-after"]) >= 1


def test_a_cut_connection_is_a_bad_gateway_not_a_timeout(client: openai.OpenAI) -> None:
    """The upstream closing the connection without an answer is a 502 at once (regression: a
    504 "timed out" after 0.1 s)."""
    started = time.monotonic()
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model="all_cut", messages=MESSAGES)  # type: ignore[call-overload]
    assert caught.value.status_code == 502
    assert "timed out" not in caught.value.message
    assert time.monotonic() - started < TIMEOUTS["response_s"]


def test_a_non_finite_number_is_the_callers_fault_not_the_targets(
    gw: RunningGateway, client: openai.OpenAI, upstream: str
) -> None:
    """The attack of issue 9.2: `"foo": NaN` in a pass-through field. It must be a 400 to the
    caller, never reach an upstream, and never count towards the target's cooldown (two such
    requests used to push every tenant's traffic to the backup target)."""
    httpx.post(f"{upstream}/_mock/reset")
    body = b'{"model": "nan_probe", "messages": [{"role": "user", "content": "hi"}], "foo": NaN}'
    for _ in range(4):
        response = httpx.post(
            f"{gw.v1}/chat/completions",
            content=body,
            headers={"authorization": f"Bearer {gw.api_key}", "content-type": "application/json"},
        )
        assert response.status_code == 400, response.text
        assert "NaN" in response.json()["error"]["message"]
    assert httpx.get(f"{upstream}/_mock/stats").json()["requests"] == {}
    raw = client.chat.completions.with_raw_response.create(model="nan_probe", messages=MESSAGES)  # type: ignore[arg-type]
    assert raw.headers["x-lockgate-model"] == "mock/primary"
    assert raw.headers["x-lockgate-attempts"] == "1"
