"""Bedrock embeddings (Titan and Cohere) on a real boto3 `bedrock-runtime` client.

`botocore.stub.Stubber` answers `invoke_model`, and checks the exact parameters sent (model id,
JSON body, content types), so the request shapes are verified against what we expect from
Bedrock's model documentation; the answers are ours (emulated).
"""

from __future__ import annotations

import io
import json
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber
from lockgate.policy import BedrockProviderConfig, Timeouts
from lockgate.providers.bedrock.embeddings import BedrockEmbeddings
from lockgate.providers.errors import ErrorKind, ProviderError


@pytest.fixture
def client() -> Any:
    return boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def body(payload: dict[str, Any]) -> StreamingBody:
    raw = json.dumps(payload).encode()
    return StreamingBody(io.BytesIO(raw), len(raw))


def answer(payload: dict[str, Any], tokens: int | None = None) -> dict[str, Any]:
    headers = {} if tokens is None else {"x-amzn-bedrock-input-token-count": str(tokens)}
    return {
        "body": body(payload),
        "contentType": "application/json",
        "ResponseMetadata": {"HTTPStatusCode": 200, "HTTPHeaders": headers},
    }


def expected(model: str, request: dict[str, Any]) -> dict[str, Any]:
    return {
        "modelId": model,
        "body": json.dumps(request),
        "contentType": "application/json",
        "accept": "application/json",
    }


def adapter(client: Any) -> BedrockEmbeddings:
    """One call at a time: the Stubber answers calls in the order it was given them."""
    return BedrockEmbeddings(
        "bedrock", BedrockProviderConfig(kind="bedrock"), Timeouts(), client=client, concurrency=1
    )


async def test_titan_one_call_per_text_with_its_token_count(client: Any) -> None:
    model = "amazon.titan-embed-text-v2:0"
    with Stubber(client) as stub:
        for text, vector, tokens in (("a cat", [0.6, 0.8], 3), ("a dog", [1.0, 0.0], 4)):
            stub.add_response(
                "invoke_model",
                answer({"embedding": vector, "inputTextTokenCount": tokens}),
                expected(model, {"inputText": text, "normalize": True, "dimensions": 256}),
            )
        result = await adapter(client).embed(["a cat", "a dog"], model, 256)
        stub.assert_no_pending_responses()
    assert result.vectors == [[0.6, 0.8], [1.0, 0.0]]
    assert result.prompt_tokens == 7


async def test_cohere_batches_texts_and_counts_from_the_header(client: Any) -> None:
    model = "cohere.embed-english-v3"
    texts = [f"t{i}" for i in range(100)]
    with Stubber(client) as stub:
        for batch, tokens in ((texts[:96], 96), (texts[96:], 4)):
            stub.add_response(
                "invoke_model",
                answer({"embeddings": [[0.1, 0.2]] * len(batch)}, tokens=tokens),
                expected(model, {"texts": batch, "input_type": "search_document"}),
            )
        result = await adapter(client).embed(texts, model, None)
        stub.assert_no_pending_responses()
    assert len(result.vectors) == 100 and result.prompt_tokens == 100


async def test_token_arrays_and_other_models_are_refused(client: Any) -> None:
    with pytest.raises(ProviderError) as caught:
        await adapter(client).embed([[1, 2]], "amazon.titan-embed-text-v2:0", None)
    assert caught.value.kind is ErrorKind.REQUEST
    with pytest.raises(ProviderError) as other:
        await adapter(client).embed(["x"], "meta.llama3-8b-instruct-v1:0", None)
    assert other.value.code == "unsupported_feature"


async def test_a_throttled_call_is_retryable(client: Any) -> None:
    with Stubber(client) as stub:
        stub.add_client_error(
            "invoke_model", "ThrottlingException", "slow down", http_status_code=429
        )
        with pytest.raises(ProviderError) as caught:
            await adapter(client).embed(["x"], "amazon.titan-embed-text-v2:0", None)
    assert caught.value.kind is ErrorKind.RETRYABLE
