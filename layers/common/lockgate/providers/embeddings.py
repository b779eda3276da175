"""The `EmbeddingProvider` port behind `/v1/embeddings`, and its OpenAI-compatible and local
adapters (Bedrock's is in `providers/bedrock/embeddings.py`).

Unlike the `Embedder` port the caches use, which normalises and hides the provider, this one
answers a client: it returns the provider's own vectors and the token count it bills.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import openai
import orjson

from lockgate.embeddings.base import Embedder
from lockgate.embeddings.local import TOKENIZER_PACKAGE, package_file
from lockgate.policy import OpenAIProviderConfig, Timeouts
from lockgate.providers import errors

Inputs = Sequence[str] | Sequence[Sequence[int]]
"""Texts, or (OpenAI-compatible targets only) token-id arrays."""


@dataclass(frozen=True, slots=True)
class Embeddings:
    vectors: list[list[float]]
    prompt_tokens: int


class EmbeddingProvider(Protocol):
    """Raises only `ProviderError`: `REQUEST` kind for input the target can never take."""

    async def embed(self, inputs: Inputs, model: str, dimensions: int | None) -> Embeddings: ...


def texts_only(inputs: Inputs, target: str) -> list[str]:
    if all(isinstance(item, str) for item in inputs):
        return [str(item) for item in inputs]
    raise errors.ProviderError(
        f"{target} embeds text only; token-id arrays need an OpenAI-compatible target "
        "(with LangChain, pass check_embedding_ctx_length=False)",
        kind=errors.ErrorKind.REQUEST,
        status=400,
        code="invalid_input",
    )


class OpenAIEmbeddings:
    """Any `/v1/embeddings` server. One request per `batch_size` inputs (the API's limit)."""

    def __init__(
        self, config: OpenAIProviderConfig, timeouts: Timeouts, *, batch_size: int = 2048
    ) -> None:
        api_key = config.api_key
        self._client = openai.AsyncOpenAI(
            api_key=api_key or "unused",
            base_url=config.base_url,
            organization=config.organization,
            default_headers=config.headers or None,
            timeout=openai.Timeout(timeouts.response_s, connect=timeouts.connect_s),
            max_retries=0,
        )
        self._batch_size = batch_size

    async def embed(self, inputs: Inputs, model: str, dimensions: int | None) -> Embeddings:
        batches = [
            list(inputs[i : i + self._batch_size]) for i in range(0, len(inputs), self._batch_size)
        ]
        parts = await asyncio.gather(*(self._batch(b, model, dimensions) for b in batches))
        return Embeddings(
            [vector for part in parts for vector in part.vectors],
            sum(part.prompt_tokens for part in parts),
        )

    async def _batch(self, batch: list[Any], model: str, dimensions: int | None) -> Embeddings:
        body: dict[str, Any] = {"model": model, "input": batch, "encoding_format": "float"}
        if dimensions is not None:
            body["dimensions"] = dimensions
        try:
            raw = await self._client.post("/embeddings", body=body, cast_to=bytes)
            answer = orjson.loads(raw)
            rows = sorted(answer["data"], key=lambda row: row["index"])
            vectors = [list(row["embedding"]) for row in rows]
            tokens = int((answer.get("usage") or {}).get("prompt_tokens") or 0)
        except openai.APIStatusError as exc:
            message = f"embeddings failed: {exc.message}"[:300]
            raise errors.from_status(exc.status_code, message) from None
        except openai.APITimeoutError:
            raise errors.timed_out("response") from None
        except openai.APIError as exc:
            raise errors.connection_failed(type(exc).__name__) from None
        except (ValueError, TypeError, KeyError) as exc:
            raise errors.malformed(type(exc).__name__) from None
        if len(vectors) != len(batch):
            raise errors.malformed(f"{len(vectors)} vectors for {len(batch)} inputs")
        return Embeddings(vectors, tokens)

    async def aclose(self) -> None:
        await self._client.close()


class LocalEmbeddings:
    """The bundled MiniLM, shared with the caches; its own tokenizer counts the tokens."""

    def __init__(self, embedder: Embedder) -> None:
        self._embedder = embedder
        self._tokenizer: Any = None

    async def embed(self, inputs: Inputs, model: str, dimensions: int | None) -> Embeddings:
        texts = texts_only(inputs, "the local model")
        if dimensions is not None and dimensions != self._embedder.dimensions:
            raise errors.ProviderError(
                f"{model} has {self._embedder.dimensions} dimensions; it cannot give {dimensions}",
                kind=errors.ErrorKind.REQUEST,
                status=400,
                code="invalid_dimensions",
            )
        vectors = await self._embedder.embed(texts)
        return Embeddings(vectors.tolist(), await asyncio.to_thread(self._count, texts))

    def _count(self, texts: list[str]) -> int:
        if self._tokenizer is None:
            from tokenizers import Tokenizer

            path = package_file(TOKENIZER_PACKAGE, "model", "tokenizer.json")
            self._tokenizer = Tokenizer.from_file(str(path))
        return sum(len(e.ids) for e in self._tokenizer.encode_batch(texts))
