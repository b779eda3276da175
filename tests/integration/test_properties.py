"""Random bodies through both chat routes and the upload route (issue 9): whatever is sent, the
answer is never a 5xx (the upstream here is healthy, so any would be the gateway's own bug),
and every error is in the route's own envelope. Bounded: a fixed number of examples per route,
derandomized so CI runs the same cases.

Real: the gateway on loopback, the mock upstream, the real parsers for uploads."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.servers import RunningGateway, gateway, mock_policy

EXAMPLES = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)
roles = st.sampled_from(["system", "developer", "user", "assistant", "tool", "function", "x"])
block_types = st.sampled_from(
    ["text", "image", "image_url", "tool_result", "tool_use", "document", "thinking", "zz"]
)
blocks = st.fixed_dictionaries(
    {"type": block_types},
    optional={
        "text": json_values,
        "source": json_values,
        "content": json_values,
        "image_url": json_values,
        "id": json_values,
        "tool_use_id": json_values,
        "input": json_values,
        "name": json_values,
    },
)
messages = st.lists(
    st.fixed_dictionaries(
        {"role": roles},
        optional={
            "content": st.text(max_size=40) | st.lists(blocks, max_size=3) | json_values,
            "name": json_values,
            "tool_calls": json_values,
            "tool_call_id": json_values,
        },
    ),
    max_size=4,
)
chat_bodies = st.fixed_dictionaries(
    {},
    optional={
        "model": st.sampled_from(["fast", "auto", "nope"]) | json_values,
        "messages": messages | json_values,
        "stream": st.booleans() | json_values,
        "max_tokens": st.integers(-5, 50) | json_values,
        "temperature": st.floats(-1, 3, allow_nan=False) | json_values,
        "system": st.text(max_size=20) | st.lists(blocks, max_size=2) | json_values,
        "tools": json_values,
        "tool_choice": json_values,
        "stop": json_values,
        "logit_bias": json_values,
        "stream_options": json_values,
        "lockgate": st.fixed_dictionaries(
            {}, optional={"cache": json_values, "collection": json_values}
        )
        | json_values,
        "metadata": json_values,
        "extra": json_values,
    },
)
raw_bodies = st.binary(max_size=64) | st.sampled_from(
    [b"", b"{", b"[]", b'{"model": NaN}', b'{"messages": [{"role": "user", "content": Infinity}]}']
)


@pytest.fixture(scope="module")
def gw(upstream: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    policy = mock_policy(upstream, {"fast": {"targets": ["mock/good"]}})
    with gateway(policy, tmp_path_factory.mktemp("properties")) as running:
        yield running


@pytest.fixture(scope="module")
def http(gw: RunningGateway) -> Iterator[httpx.Client]:
    headers = {"authorization": f"Bearer {gw.api_key}", "x-api-key": gw.api_key}
    with httpx.Client(base_url=gw.base_url, headers=headers, timeout=30) as client:
        yield client


def _check(response: httpx.Response, anthropic: bool) -> None:
    assert response.status_code < 500, response.text
    if response.status_code < 400:
        return
    body = response.json()
    if anthropic:
        assert body["type"] == "error" and set(body["error"]) == {"type", "message"}
    else:
        assert set(body["error"]) == {"message", "type", "param", "code"}
    assert response.headers["x-request-id"]


def _post(http: httpx.Client, path: str, content: bytes) -> httpx.Response:
    with http.stream("POST", path, content=content) as response:
        response.read()
    return response


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/messages"])
@EXAMPLES
@given(body=chat_bodies)
def test_random_chat_bodies_never_break_the_gateway(
    http: httpx.Client, path: str, body: dict[str, Any]
) -> None:
    _check(_post(http, path, json.dumps(body).encode()), anthropic=path == "/v1/messages")


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/messages"])
@EXAMPLES
@given(content=raw_bodies)
def test_random_bytes_never_break_the_gateway(
    http: httpx.Client, path: str, content: bytes
) -> None:
    _check(_post(http, path, content), anthropic=path == "/v1/messages")


@settings(max_examples=25, deadline=None, derandomize=True)
@given(
    filename=st.one_of(
        st.text(max_size=12),
        st.builds(
            "{}.{}".format,
            st.text(max_size=8),
            st.sampled_from(["txt", "md", "html", "pdf", "docx", "jsonl", "png"]),
        ),
    ),
    content=st.binary(max_size=256) | st.text(max_size=200).map(str.encode),
)
def test_random_uploads_never_break_the_gateway(
    http: httpx.Client, filename: str, content: bytes
) -> None:
    response = http.post(
        "/v1/collections/fuzz/documents", params={"filename": filename}, content=content
    )
    _check(response, anthropic=False)
