"""BedrockTitanEmbedder on the real boto3 client; Bedrock itself is emulated by
`botocore.stub.Stubber`, which also checks the exact invoke_model parameters sent."""

from __future__ import annotations

import io
import json

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber
from lockgate.embeddings.bedrock import TITAN_V2, BedrockTitanEmbedder
from lockgate.embeddings.errors import EmbeddingError


def body(payload: dict[str, object]) -> StreamingBody:
    raw = json.dumps(payload).encode()
    return StreamingBody(io.BytesIO(raw), len(raw))


def expected(text: str, dims: int = 256) -> dict[str, object]:
    return {
        "modelId": TITAN_V2,
        "body": json.dumps({"inputText": text, "dimensions": dims, "normalize": True}),
        "contentType": "application/json",
        "accept": "application/json",
    }


async def test_one_call_per_text_in_order() -> None:
    client = boto3.client("bedrock-runtime", region_name="us-east-1")
    embedder = BedrockTitanEmbedder(dimensions=256, client=client, concurrency=1)
    with Stubber(client) as stub:
        for i, text in enumerate(["first", "second"]):
            vector = [0.0] * 256
            vector[i] = 2.0
            stub.add_response(
                "invoke_model",
                {
                    "body": body({"embedding": vector, "inputTextTokenCount": 1}),
                    "contentType": "application/json",
                },
                expected(text),
            )
        vectors = await embedder.embed(["first", "second"])
        stub.assert_no_pending_responses()
    assert vectors.shape == (2, 256)
    assert vectors[0, 0] == pytest.approx(1.0) and vectors[1, 1] == pytest.approx(1.0)
    assert embedder.name == "bedrock/amazon.titan-embed-text-v2:0@256"


async def test_a_refusal_is_an_embedding_error() -> None:
    client = boto3.client("bedrock-runtime", region_name="us-east-1")
    embedder = BedrockTitanEmbedder(dimensions=256, client=client)
    with Stubber(client) as stub:
        stub.add_client_error("invoke_model", "AccessDeniedException", "no access", 403)
        with pytest.raises(EmbeddingError, match="AccessDeniedException"):
            await embedder.embed(["hello"])


async def test_wrong_dimensions_are_refused() -> None:
    client = boto3.client("bedrock-runtime", region_name="us-east-1")
    embedder = BedrockTitanEmbedder(dimensions=256, client=client)
    with Stubber(client) as stub:
        stub.add_response(
            "invoke_model",
            {"body": body({"embedding": [0.1] * 512}), "contentType": "application/json"},
            expected("hello"),
        )
        with pytest.raises(EmbeddingError, match="512 dimensions, expected 256"):
            await embedder.embed(["hello"])


def test_only_titan_v2_sizes() -> None:
    with pytest.raises(ValueError, match="256, 512, 1024"):
        BedrockTitanEmbedder(dimensions=300)


async def test_empty_input_makes_no_call() -> None:
    embedder = BedrockTitanEmbedder(dimensions=512, client=object())
    assert (await embedder.embed([])).shape == (0, 512)
