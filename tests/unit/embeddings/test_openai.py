"""OpenAIEmbedder through the official SDK against a small /v1/embeddings server on 127.0.0.1."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
import pytest
from aiohttp import web
from lockgate.embeddings.errors import EmbeddingError
from lockgate.embeddings.openai import OpenAIEmbedder

from tests.support.servers import serve

SECRET = "sk-test-very-secret-key"


@asynccontextmanager
async def embeddings_server(
    seen: list[dict[str, Any]], *, status: int = 200, dims: int = 8
) -> AsyncIterator[str]:
    async def handle(request: web.Request) -> web.Response:
        body = await request.json()
        seen.append({"body": body, "auth": request.headers.get("Authorization")})
        if status != 200:
            return web.json_response({"error": {"message": "nope"}}, status=status)
        data = []
        # Out of order and not unit length, as some servers answer.
        for i, text in reversed(list(enumerate(body["input"]))):
            vector = np.full(dims, 0.5, dtype=np.float32)
            vector[len(text) % dims] = 3.0 + i
            item: dict[str, Any] = {"object": "embedding", "index": i}
            if body.get("encoding_format") == "base64":
                item["embedding"] = base64.b64encode(vector.tobytes()).decode()
            else:
                item["embedding"] = vector.tolist()
            data.append(item)
        usage = {"prompt_tokens": 3, "total_tokens": 3}
        return web.json_response(
            {"object": "list", "data": data, "model": body["model"], "usage": usage}
        )

    app = web.Application()
    app.router.add_post("/v1/embeddings", handle)
    async with serve(app) as url:
        yield url + "/v1"


async def test_embeds_in_input_order_normalised_and_batched() -> None:
    seen: list[dict[str, Any]] = []
    async with embeddings_server(seen) as url:
        embedder = OpenAIEmbedder(
            "my-embedder", dimensions=8, base_url=url, api_key=SECRET, batch_size=2
        )
        vectors = await embedder.embed(["a", "bb", "", "dddd", "eeeee"])
        await embedder.aclose()
    assert vectors.shape == (5, 8) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)
    assert [len(call["body"]["input"]) for call in seen] == [2, 2, 1]
    assert seen[0]["auth"] == f"Bearer {SECRET}"
    assert seen[0]["body"]["dimensions"] == 8
    # row 1 ("bb") has its peak at index 2 in the server's scheme; order kept across batches
    assert int(np.argmax(vectors[1])) == 2 and int(np.argmax(vectors[4])) == 5
    # an empty text is sent as a space (the API refuses empty input)
    assert seen[1]["body"]["input"][0] == " "


async def test_known_models_do_not_send_dimensions() -> None:
    seen: list[dict[str, Any]] = []
    async with embeddings_server(seen, dims=1536) as url:
        embedder = OpenAIEmbedder("text-embedding-3-small", base_url=url, api_key=SECRET)
        assert embedder.dimensions == 1536
        await embedder.embed(["hello"])
        await embedder.aclose()
    assert "dimensions" not in seen[0]["body"]


async def test_an_http_error_is_an_embedding_error_without_the_key() -> None:
    async with embeddings_server([], status=401) as url:
        embedder = OpenAIEmbedder("m", dimensions=8, base_url=url, api_key=SECRET)
        with pytest.raises(EmbeddingError, match="HTTP 401") as caught:
            await embedder.embed(["hello"])
        await embedder.aclose()
    assert SECRET not in str(caught.value)


async def test_wrong_dimensions_are_refused() -> None:
    async with embeddings_server([], dims=4) as url:
        embedder = OpenAIEmbedder("m", dimensions=8, base_url=url, api_key=SECRET)
        with pytest.raises(EmbeddingError, match="4 dimensions, expected 8"):
            await embedder.embed(["hello"])
        await embedder.aclose()


def test_an_unknown_model_needs_its_dimensions() -> None:
    with pytest.raises(ValueError, match="pass dimensions"):
        OpenAIEmbedder("some-local-model", api_key=SECRET)
