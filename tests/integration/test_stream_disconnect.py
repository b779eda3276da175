"""A client that leaves in the middle of a stream: the gateway (uvicorn, with the mock upstream)
stops relaying at once, counts the request with what it produced so far, and goes on serving.
The caller is the official `openai` SDK, which closes the connection when its stream is closed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.support.servers import RunningGateway, gateway, mock_policy

SLOW = "gpt-slow+tps=20+tokens=200"  # ten seconds of answer


@pytest.fixture(scope="module")
def gw(upstream: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    policy = mock_policy(upstream, {"slow": {"targets": [f"mock/{SLOW}"]}})
    data: Path = tmp_path_factory.mktemp("disconnect")
    with gateway(policy, data) as running:
        yield running


def usage(gw: RunningGateway) -> dict[str, object]:
    reply = httpx.get(f"{gw.v1}/usage", headers={"authorization": f"Bearer {gw.api_key}"})
    body: dict[str, object] = reply.json()
    return body


def test_a_stream_left_early_is_ended_and_counted_at_once(gw: RunningGateway) -> None:
    client = openai.OpenAI(base_url=gw.v1, api_key=gw.api_key, max_retries=0)
    before = usage(gw)["requests"]
    started = time.monotonic()
    stream = client.chat.completions.create(
        model="slow", messages=[{"role": "user", "content": "Tell me a long story."}], stream=True
    )
    pieces = []
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            pieces.append(chunk.choices[0].delta.content)
        if len(pieces) == 3:
            break
    stream.close()

    deadline = time.monotonic() + 5
    seen = usage(gw)
    while seen["requests"] == before and time.monotonic() < deadline:
        time.sleep(0.05)
        seen = usage(gw)
    assert seen["requests"] == before + 1  # type: ignore[operator]
    # Counted when the client left, with the little it got, not when the answer would have ended.
    assert time.monotonic() - started < 5
    assert 0 < seen["completion_tokens"] < 200  # type: ignore[operator]

    # The gateway goes on serving.
    quick = client.with_options(timeout=5).models.list()
    assert any(m.id == "slow" for m in quick.data)
