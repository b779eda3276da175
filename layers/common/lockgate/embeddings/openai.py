"""OpenAI embeddings (or any server speaking `/v1/embeddings`) behind the Embedder port."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import openai

from lockgate.embeddings.base import Vectors
from lockgate.embeddings.errors import EmbeddingError

KNOWN_DIMENSIONS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}
MAX_INPUTS_PER_REQUEST = 2048
"""The API's limit on inputs in one embeddings request."""


class OpenAIEmbedder:
    """Vectors from the embeddings API, re-normalised so a dot product is the cosine.

    OpenAI's own vectors are unit length already; other servers behind `base_url` (vLLM, Ollama,
    LiteLLM) do not all promise it, and the cache's thresholds are on plain cosine.
    """

    def __init__(
        self,
        model: str = "text-embedding-3-small",
        *,
        dimensions: int | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        timeout_s: float = 10.0,
        batch_size: int = MAX_INPUTS_PER_REQUEST,
        client: openai.AsyncOpenAI | None = None,
    ) -> None:
        if not model:
            raise ValueError("an embeddings model name is required")
        if dimensions is not None and dimensions < 1:
            raise ValueError("dimensions must be positive")
        resolved = dimensions or KNOWN_DIMENSIONS.get(model)
        if resolved is None:
            raise ValueError(
                f"the dimensions of embeddings model {model!r} are not known; pass dimensions="
            )
        if not 1 <= batch_size <= MAX_INPUTS_PER_REQUEST:
            raise ValueError(f"batch_size must be between 1 and {MAX_INPUTS_PER_REQUEST}")
        self._model = model
        self._dimensions = resolved
        self._request_dimensions = dimensions
        self._batch_size = batch_size
        self._client = client or openai.AsyncOpenAI(
            api_key=api_key or os.environ.get(api_key_env) or "unused",
            base_url=base_url,
            timeout=openai.Timeout(timeout_s, connect=min(timeout_s, 5.0)),
            max_retries=1,
        )

    @property
    def name(self) -> str:
        return f"openai/{self._model}@{self._dimensions}"

    @property
    def dimensions(self) -> int:
        return self._dimensions

    async def embed(self, texts: Sequence[str]) -> Vectors:
        if isinstance(texts, str):
            raise TypeError("embed takes a sequence of texts, not one string")
        out = np.empty((len(texts), self._dimensions), dtype=np.float32)
        for start in range(0, len(texts), self._batch_size):
            batch = list(texts[start : start + self._batch_size])
            out[start : start + len(batch)] = await self._embed_batch(batch)
        return out

    async def _embed_batch(self, batch: list[str]) -> Vectors:
        # The API refuses empty strings; a single space embeds "nothing" just as well.
        inputs = [text if text else " " for text in batch]
        try:
            if self._request_dimensions is None:
                response = await self._client.embeddings.create(
                    model=self._model, input=inputs, encoding_format="float"
                )
            else:
                response = await self._client.embeddings.create(
                    model=self._model,
                    input=inputs,
                    encoding_format="float",
                    dimensions=self._request_dimensions,
                )
        except openai.APIStatusError as exc:
            raise EmbeddingError(
                f"embeddings request to {self._model} failed with HTTP {exc.status_code}"
            ) from None
        except openai.APIError as exc:
            raise EmbeddingError(
                f"embeddings request to {self._model} failed: {type(exc).__name__}"
            ) from None
        rows = sorted(response.data, key=lambda item: item.index)
        if len(rows) != len(batch) or [r.index for r in rows] != list(range(len(batch))):
            raise EmbeddingError(
                f"embeddings response has {len(rows)} vectors for {len(batch)} inputs"
            )
        vectors = np.asarray([row.embedding for row in rows], dtype=np.float32)
        if vectors.shape != (len(batch), self._dimensions):
            raise EmbeddingError(
                f"embeddings from {self._model} have {vectors.shape[-1]} dimensions, "
                f"expected {self._dimensions}"
            )
        return _normalise(vectors)

    async def aclose(self) -> None:
        await self._client.close()


def _normalise(vectors: Vectors) -> Vectors:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    if not np.all(np.isfinite(norms)) or np.any(norms == 0):
        raise EmbeddingError("embeddings response holds a zero or non-finite vector")
    unit: Vectors = (vectors / norms).astype(np.float32)
    return unit
