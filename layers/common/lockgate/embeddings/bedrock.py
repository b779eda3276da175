"""Amazon Titan Text Embeddings V2 on Bedrock behind the Embedder port."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

import boto3
import numpy as np
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from lockgate.embeddings.base import Vectors
from lockgate.embeddings.errors import EmbeddingError

TITAN_V2 = "amazon.titan-embed-text-v2:0"
TITAN_V2_DIMENSIONS = (256, 512, 1024)
TITAN_V2_MAX_CHARS = 50_000
"""Titan V2 takes up to 8,192 tokens or 50,000 characters per text; longer input is refused."""


class BedrockTitanEmbedder:
    """One `invoke_model` per text (Titan has no batch call), a few at a time, in threads.

    boto3 is synchronous, so each call runs in a worker thread; `concurrency` bounds how many
    run at once so a large batch neither floods the account's quota nor the thread pool.
    """

    def __init__(
        self,
        *,
        model_id: str = TITAN_V2,
        dimensions: int = 1024,
        region: str | None = None,
        endpoint_url: str | None = None,
        concurrency: int = 4,
        client: Any = None,
    ) -> None:
        if dimensions not in TITAN_V2_DIMENSIONS:
            raise ValueError(f"Titan V2 dimensions must be one of {TITAN_V2_DIMENSIONS}")
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self._model_id = model_id
        self._dimensions = dimensions
        self._region = region
        self._endpoint_url = endpoint_url
        self._concurrency = concurrency
        self._client = client
        self._client_lock = asyncio.Lock()

    @property
    def name(self) -> str:
        return f"bedrock/{self._model_id}@{self._dimensions}"

    @property
    def dimensions(self) -> int:
        return self._dimensions

    async def embed(self, texts: Sequence[str]) -> Vectors:
        if isinstance(texts, str):
            raise TypeError("embed takes a sequence of texts, not one string")
        for i, text in enumerate(texts):
            if len(text) > TITAN_V2_MAX_CHARS:
                raise EmbeddingError(
                    f"text {i} has {len(text)} characters; Titan V2 takes at most "
                    f"{TITAN_V2_MAX_CHARS}"
                )
        out = np.empty((len(texts), self._dimensions), dtype=np.float32)
        if not texts:
            return out
        client = await self._get_client()
        gate = asyncio.Semaphore(self._concurrency)

        async def one(i: int) -> None:
            async with gate:
                out[i] = await asyncio.to_thread(self._invoke, client, texts[i])

        await asyncio.gather(*(one(i) for i in range(len(texts))))
        return out

    def _invoke(self, client: Any, text: str) -> Vectors:
        body = json.dumps(
            {"inputText": text or " ", "dimensions": self._dimensions, "normalize": True}
        )
        try:
            response = client.invoke_model(
                modelId=self._model_id,
                body=body,
                contentType="application/json",
                accept="application/json",
            )
            payload = json.loads(response["body"].read())
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "ClientError")
            raise EmbeddingError(f"Bedrock {self._model_id} refused the request: {code}") from None
        except BotoCoreError as exc:
            raise EmbeddingError(
                f"Bedrock {self._model_id} call failed: {type(exc).__name__}"
            ) from None
        except (ValueError, KeyError) as exc:
            raise EmbeddingError(
                f"Bedrock {self._model_id} sent an unreadable body: {type(exc).__name__}"
            ) from None
        vector = np.asarray(payload.get("embedding") or [], dtype=np.float32)
        if vector.shape != (self._dimensions,):
            raise EmbeddingError(
                f"Bedrock {self._model_id} returned {vector.shape[0]} dimensions, "
                f"expected {self._dimensions}"
            )
        norm = float(np.linalg.norm(vector))
        if not np.isfinite(norm) or norm == 0:
            raise EmbeddingError(f"Bedrock {self._model_id} returned a zero vector")
        return vector / norm

    async def _get_client(self) -> Any:
        """Made on first use, in a thread: credential discovery reads files and the network."""
        if self._client is None:
            async with self._client_lock:
                if self._client is None:
                    self._client = await asyncio.to_thread(self._make_client)
        return self._client

    def _make_client(self) -> Any:
        config = Config(connect_timeout=5, read_timeout=30, retries={"mode": "standard"})
        try:
            return boto3.session.Session().client(
                "bedrock-runtime",
                region_name=self._region,
                endpoint_url=self._endpoint_url,
                config=config,
            )
        except BotoCoreError as exc:
            raise EmbeddingError(f"cannot create a Bedrock client: {type(exc).__name__}") from None
