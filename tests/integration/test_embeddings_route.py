"""`POST /v1/embeddings` through the official `openai` SDK (`client.embeddings.create`), against
the gateway on uvicorn: the bundled MiniLM run for real, and an OpenAI-compatible target served
by the mock upstream (aiohttp on loopback), with fallback between them.

The SDK asks for `encoding_format="base64"` when none is given and decodes it itself, so both
encodings are exercised.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import openai
import pytest

from tests.support.servers import RunningGateway, gateway, mock_policy, upstream_requests

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def gw(upstream: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    policy = mock_policy(upstream, {"fast": {"targets": ["mock/gpt-fast"]}})
    policy["providers"]["local"] = {"kind": "local"}
    policy["providers"]["down"] = {
        "kind": "openai",
        "base_url": "http://127.0.0.1:9/v1",
        "api_key": "sk-unused",
    }
    policy["embeddings"] = {
        "minilm": {"targets": ["local/all-MiniLM-L6-v2"]},
        "remote": {"targets": ["mock/text-embedding-mock"]},
        "resilient": {"targets": ["down/text-embedding-3-small", "mock/text-embedding-mock"]},
    }
    data_dir = tmp_path_factory.mktemp("embeddings")
    with gateway(policy, data_dir, warm_local_model=False) as running:
        yield running


@pytest.fixture
def client(gw: RunningGateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.v1, api_key=gw.api_key, max_retries=0)


def test_minilm_floats_are_unit_vectors_that_rank_by_meaning(client: openai.OpenAI) -> None:
    texts = ["How do I reset my password?", "I forgot my login password", "Bananas are yellow"]
    raw = client.embeddings.with_raw_response.create(
        model="minilm", input=texts, encoding_format="float"
    )
    result = raw.parse()
    vectors = np.array([row.embedding for row in result.data])
    assert vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2
    assert result.model == "minilm"
    assert result.usage.prompt_tokens >= 3 * 5  # MiniLM's own tokenizer counted them
    assert raw.headers["x-lockgate-model"] == "local/all-MiniLM-L6-v2"


def test_base64_decodes_to_the_same_vectors(client: openai.OpenAI) -> None:
    text = "the same sentence twice"
    floats = client.embeddings.create(model="minilm", input=text, encoding_format="float")
    default = client.embeddings.create(model="minilm", input=text)  # the SDK asks for base64
    assert np.allclose(floats.data[0].embedding, default.data[0].embedding, atol=1e-6)


def test_openai_compatible_target_batches_and_reports_its_usage(
    client: openai.OpenAI, upstream: str
) -> None:
    inputs = [f"doc-9e1 number {i}" for i in range(5)]
    result = client.embeddings.create(model="remote", input=inputs, encoding_format="float")
    assert [row.index for row in result.data] == list(range(5))
    assert result.usage.prompt_tokens == 5 * 3  # the mock's count, passed on
    sent = upstream_requests(upstream, "doc-9e1")[-1]
    assert sent["path"] == "/v1/embeddings" and sent["body"]["input"] == inputs
    assert sent["body"]["model"] == "text-embedding-mock"


def test_token_arrays_pass_to_openai_targets_and_are_refused_by_minilm(
    client: openai.OpenAI,
) -> None:
    result = client.embeddings.create(model="remote", input=[[1, 2, 3]], encoding_format="float")
    assert len(result.data) == 1 and result.usage.prompt_tokens == 3
    with pytest.raises(openai.BadRequestError) as caught:
        client.embeddings.create(model="minilm", input=[[1, 2, 3]])
    assert "token-id arrays" in caught.value.message


def test_a_failing_target_falls_back(gw: RunningGateway, client: openai.OpenAI) -> None:
    raw = client.embeddings.with_raw_response.create(
        model="resilient", input="fallback please", encoding_format="float"
    )
    assert raw.headers["x-lockgate-model"] == "mock/text-embedding-mock"
    assert raw.headers["x-lockgate-attempts"] == "2"


def test_usage_is_accounted_under_the_alias(gw: RunningGateway, client: openai.OpenAI) -> None:
    client.embeddings.create(model="remote", input="count me", encoding_format="float")
    usage = client.get("/usage", cast_to=object)
    assert usage["by_model"]["remote"]["requests"] >= 1  # type: ignore[index]


def test_bad_requests(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        client.embeddings.create(model="nope", input="hi")
    with pytest.raises(openai.BadRequestError):
        client.embeddings.create(model="minilm", input="hi", dimensions=16)
    with pytest.raises(openai.BadRequestError):
        client.embeddings.create(model="minilm", input=[""])


def test_models_lists_the_embedding_aliases(client: openai.OpenAI) -> None:
    names = [m.id for m in client.models.list()]
    assert names[-3:] == ["minilm", "remote", "resilient"]


def test_embeddings_count_against_the_tenant_token_limit(gw: RunningGateway) -> None:
    from lockgate.tenants.models import RateLimits
    from lockgate.tenants.service import TenantService

    service: TenantService = gw.app.state.container.tenants
    service.create_tenant("embedder", limits=RateLimits(tokens_per_minute=40))
    client = openai.OpenAI(
        base_url=gw.v1, api_key=service.create_key("embedder").key, max_retries=0
    )
    raw = client.embeddings.with_raw_response.create(
        model="remote", input=["one two three"] * 5, encoding_format="float"
    )
    assert raw.parse().usage.prompt_tokens == 15  # the provider's count settles the estimate
    remaining = int(raw.headers["x-ratelimit-remaining-tokens"])
    assert 0 < remaining < 40
    with pytest.raises(openai.RateLimitError):
        client.embeddings.create(model="remote", input=["word " * 30] * 3)
