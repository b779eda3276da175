"""Embeddings on Bedrock: Amazon Titan Text Embeddings and Cohere Embed, via `invoke_model`.

Titan takes one text per call, Cohere up to 96 texts; calls run a few at a time, in threads
(boto3 blocks). Both bodies are the models' own JSON, as Bedrock documents them. Titan reports
its token count in the body; Cohere's comes in the `X-Amzn-Bedrock-Input-Token-Count` response
header.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from lockgate.policy import BedrockProviderConfig, Timeouts
from lockgate.providers import errors
from lockgate.providers.bedrock.provider import BedrockProvider, provider_error
from lockgate.providers.embeddings import Embeddings, Inputs, texts_only

COHERE_BATCH = 96
CONCURRENCY = 4
"""Calls in flight at once, each on a worker thread."""
TOKEN_HEADER = "x-amzn-bedrock-input-token-count"


class BedrockEmbeddings:
    def __init__(
        self,
        name: str,
        config: BedrockProviderConfig,
        timeouts: Timeouts,
        *,
        client: Any = None,
        concurrency: int = CONCURRENCY,
    ) -> None:
        self._runtime = BedrockProvider(name, config, timeouts, client=client)
        self._gate = asyncio.Semaphore(concurrency)

    async def embed(self, inputs: Inputs, model: str, dimensions: int | None) -> Embeddings:
        texts = texts_only(inputs, "Bedrock")
        client = await self._runtime.client()
        if model.startswith("cohere."):
            calls = [
                self._invoke(client, model, _cohere_body(texts[i : i + COHERE_BATCH], dimensions))
                for i in range(0, len(texts), COHERE_BATCH)
            ]
            parts = await asyncio.gather(*calls)
            vectors = [v for body, _ in parts for v in _cohere_vectors(body)]
            return Embeddings(vectors, sum(tokens for _, tokens in parts))
        if not model.startswith("amazon.titan-embed"):
            raise errors.ProviderError(
                f"Bedrock model {model!r} is not a Titan or Cohere embeddings model",
                kind=errors.ErrorKind.TARGET,
                code="unsupported_feature",
            )
        answers = await asyncio.gather(
            *(self._invoke(client, model, _titan_body(text, dimensions)) for text in texts)
        )
        return Embeddings(
            [list(body["embedding"]) for body, _ in answers],
            sum(int(body.get("inputTextTokenCount") or tokens) for body, tokens in answers),
        )

    async def _invoke(
        self, client: Any, model: str, body: dict[str, Any]
    ) -> tuple[dict[str, Any], int]:
        def call() -> tuple[dict[str, Any], int]:
            response = client.invoke_model(
                modelId=model,
                body=json.dumps(body),
                contentType="application/json",
                accept="application/json",
            )
            headers = (response.get("ResponseMetadata") or {}).get("HTTPHeaders") or {}
            return json.loads(response["body"].read()), int(headers.get(TOKEN_HEADER) or 0)

        try:
            async with self._gate:
                return await asyncio.to_thread(call)
        except (BotoCoreError, ClientError) as exc:
            raise provider_error(exc) from None
        except (ValueError, KeyError) as exc:
            raise errors.malformed(type(exc).__name__) from None

    async def aclose(self) -> None:
        await self._runtime.aclose()


def _titan_body(text: str, dimensions: int | None) -> dict[str, Any]:
    body: dict[str, Any] = {"inputText": text or " ", "normalize": True}
    if dimensions is not None:
        body["dimensions"] = dimensions
    return body


def _cohere_body(texts: list[str], dimensions: int | None) -> dict[str, Any]:
    if dimensions is not None:
        raise errors.ProviderError(
            "Cohere Embed on Bedrock has fixed dimensions; leave 'dimensions' out",
            kind=errors.ErrorKind.REQUEST,
            status=400,
            code="invalid_dimensions",
        )
    return {"texts": [t or " " for t in texts], "input_type": "search_document"}


def _cohere_vectors(body: dict[str, Any]) -> list[list[float]]:
    embeddings = body["embeddings"]
    if isinstance(embeddings, dict):  # asked for by type: {"float": [...]}
        embeddings = embeddings["float"]
    return [list(v) for v in embeddings]
