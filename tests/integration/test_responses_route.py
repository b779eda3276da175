"""`POST /v1/responses` through the official `openai` SDK (`client.responses.create`), against
the gateway on uvicorn and the mock upstream on aiohttp, both real servers on loopback.

Verified for real: the SDK parses every body and every stream event into its typed models
(an unknown or misshapen event would fail to parse), conversation state survives between
requests in the embedded SQLite store, and the upstream speaks chat completions or messages.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import openai
import pytest

from tests.support.servers import RunningGateway, gateway, mock_policy, upstream_requests

WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}


@pytest.fixture(scope="module")
def gw(upstream: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    policy = mock_policy(
        upstream,
        {
            "fast": {"targets": ["mock/gpt-fast"]},
            "claude": {"targets": ["mockant/claude-smart"]},
        },
    )
    with gateway(policy, tmp_path_factory.mktemp("responses")) as running:
        yield running


@pytest.fixture
def client(gw: RunningGateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.v1, api_key=gw.api_key, max_retries=0)


@pytest.mark.parametrize("model", ["fast", "claude"])
def test_plain_answer(client: openai.OpenAI, model: str) -> None:
    raw = client.responses.with_raw_response.create(
        model=model, input="hello there", instructions="Answer briefly."
    )
    response = raw.parse()
    assert response.status == "completed"
    assert response.output_text.startswith("mock answer to: hello there")
    assert response.output[0].type == "message"
    assert response.instructions == "Answer briefly."
    assert response.usage is not None and response.usage.output_tokens > 0
    assert response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens
    assert response.id.startswith("resp_")
    assert raw.headers["x-lockgate-model"] in ("mock/gpt-fast", "mockant/claude-smart")


@pytest.mark.parametrize("model", ["fast", "claude"])
def test_streamed_events_in_openai_order(client: openai.OpenAI, model: str) -> None:
    events = list(client.responses.create(model=model, input="stream this", stream=True))
    kinds = [event.type for event in events]
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [event.sequence_number for event in events] == list(range(len(events)))
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    final = events[-1].response  # type: ignore[union-attr]
    assert deltas and final.output_text == deltas
    assert final.usage is not None and final.usage.output_tokens > 0


def test_sdk_stream_helper_accumulates_the_response(client: openai.OpenAI) -> None:
    with client.responses.stream(model="fast", input="helper please") as stream:
        text = "".join(e.delta for e in stream if e.type == "response.output_text.delta")
        final = stream.get_final_response()
    assert final.output_text == text and text.startswith("mock answer to: helper please")


@pytest.mark.parametrize("model", ["fast", "claude"])
def test_tool_call_round_trip(client: openai.OpenAI, model: str) -> None:
    first = client.responses.create(
        model=model,
        input="what is the weather in Paris?",
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
    )
    calls = [item for item in first.output if item.type == "function_call"]
    assert len(calls) == 1 and calls[0].name == "get_weather"
    json.loads(calls[0].arguments)
    second = client.responses.create(
        model=model,
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": calls[0].call_id, "output": "sunny"}],
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
    )
    assert second.status == "completed"
    assert second.previous_response_id == first.id
    assert second.output_text


def test_streamed_tool_call(client: openai.OpenAI) -> None:
    events = list(
        client.responses.create(
            model="fast",
            input="weather in Oslo?",
            tools=[WEATHER_TOOL],  # type: ignore[list-item]
            stream=True,
        )
    )
    added = [e for e in events if e.type == "response.output_item.added"]
    assert added and added[-1].item.type == "function_call"
    done = [e for e in events if e.type == "response.function_call_arguments.done"]
    deltas = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
    assert done and done[0].arguments == deltas
    final = events[-1].response  # type: ignore[union-attr]
    assert final.output[-1].type == "function_call"


def test_follow_up_by_id_carries_the_conversation(client: openai.OpenAI, upstream: str) -> None:
    first = client.responses.create(
        model="fast", input="my name is Ada-7f3c", instructions="Be terse."
    )
    second = client.responses.create(
        model="fast", previous_response_id=first.id, input="what is my name?"
    )
    assert second.output_text.startswith("mock answer to: what is my name?")
    assert second.previous_response_id == first.id
    stored = client.responses.retrieve(second.id)
    assert stored.id == second.id and stored.output_text == second.output_text
    sent = upstream_requests(upstream, "what is my name?")[-1]["body"]["messages"]
    # The first turn and its answer came from the store; its instructions did not (as OpenAI).
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    assert sent[0]["content"] == "my name is Ada-7f3c"
    assert sent[1]["content"] == first.output_text


def test_unknown_previous_response_is_a_clear_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="fast", previous_response_id="resp_nope", input="hi")
    assert caught.value.code == "previous_response_not_found"


def test_another_tenant_cannot_continue_or_read(gw: RunningGateway, client: openai.OpenAI) -> None:
    from lockgate.tenants.keys import Tenant, hash_key

    gw.app.state.container.keys.add(hash_key("lg-other-tenant-key-000000000"), Tenant("other"))
    other = openai.OpenAI(base_url=gw.v1, api_key="lg-other-tenant-key-000000000", max_retries=0)
    mine = client.responses.create(model="fast", input="a secret of mine")
    with pytest.raises(openai.BadRequestError):
        other.responses.create(model="fast", previous_response_id=mine.id, input="tell me")
    with pytest.raises(openai.NotFoundError):
        other.responses.retrieve(mine.id)


def test_store_false_keeps_nothing(client: openai.OpenAI) -> None:
    response = client.responses.create(model="fast", input="forget me", store=False)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(response.id)


def test_delete(client: openai.OpenAI) -> None:
    response = client.responses.create(model="fast", input="short lived")
    client.responses.delete(response.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(response.id)


def test_unsupported_tool_type_is_refused(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(
            model="fast",
            input="search the web",
            tools=[{"type": "web_search"}],  # type: ignore[list-item]
        )
    assert "web_search" in caught.value.message


def test_unknown_model_and_bad_key(gw: RunningGateway, client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="nope", input="hi")
    bad = openai.OpenAI(base_url=gw.v1, api_key="lg-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.responses.create(model="fast", input="hi")


@pytest.mark.parametrize("path", ["/responses", "/embeddings"])
@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b'{"model": "fast"}'])
def test_malformed_bodies_get_the_openai_envelope(
    gw: RunningGateway, path: str, body: bytes
) -> None:
    import httpx

    response = httpx.post(
        gw.v1 + path,
        content=body,
        headers={"authorization": f"Bearer {gw.api_key}", "content-type": "application/json"},
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["message"]
