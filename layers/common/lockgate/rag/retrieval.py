"""Hybrid retrieval: BM25 and k-NN run side by side inside the collection's namespace, and their
rankings are fused by reciprocal rank fusion.

RRF fuses ranks rather than scores because BM25 scores and cosines live on unrelated scales that
shift from query to query. Whether anything relevant was found is a separate question, answered
on the one calibrated number there is: the best plain cosine between the query and a chunk
(see `DEFAULT_MIN_SIMILARITY`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lockgate.embeddings.base import Embedder
from lockgate.rag.extractive import window
from lockgate.rag.model import RetrievedChunk, namespace
from lockgate.rag.ports import TextIndex
from lockgate.stores.ports import VectorIndex

DEFAULT_RRF_K = 20
DEFAULT_CANDIDATES = 50
"""Tuned by `python -m bench.retrieval` on vaswani-npl (nDCG@10), checked on xquad-en: (20, 50)
and (60, 100) tie within 0.001 across runs, and the shallower candidate depth is cheaper."""
DEFAULT_MIN_SIMILARITY = 0.275
"""Best query-chunk cosine below which the answer is "I don't know". Calibrated with
`python -m bench.retrieval_threshold` on the shipped support knowledge base: the highest
threshold that still answers at least 95% of questions the KB answers (reworded by hand); there it
answered 31/32 of those and 2.2% of 312 questions it cannot answer (XQuAD and off-topic)."""
SNIPPET_CHARS = 240


@dataclass(frozen=True, slots=True)
class RetrievalSettings:
    rrf_k: int = DEFAULT_RRF_K
    candidates: int = DEFAULT_CANDIDATES
    """How deep each of BM25 and k-NN goes before fusion."""
    min_similarity: float = DEFAULT_MIN_SIMILARITY
    mode: str = "hybrid"
    """"hybrid", "bm25" or "dense" (the single-method modes are for comparison)."""


def rrf(rankings: Sequence[Sequence[str]], k: int = DEFAULT_RRF_K) -> dict[str, float]:
    """Reciprocal rank fusion: sum over rankings of 1 / (k + rank), rank starting at 1."""
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, id_ in enumerate(ranking, start=1):
            scores[id_] = scores.get(id_, 0.0) + 1.0 / (k + rank)
    return scores


def snippet(text: str, query: str, limit: int = SNIPPET_CHARS) -> str:
    """The window from the sentence that answers the query, so a citation shows why it
    matched (`extractive.best_sentence`)."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    chosen, cut = window(text, query, limit)
    return ("…" if cut else "") + chosen


class Retriever:
    def __init__(
        self,
        text_index: TextIndex,
        vectors: VectorIndex,
        embedder: Embedder,
        settings: RetrievalSettings | None = None,
    ) -> None:
        self.text_index = text_index
        self.vectors = vectors
        self.embedder = embedder
        self.settings = settings or RetrievalSettings()

    async def retrieve(
        self,
        tenant: str,
        collection: str,
        query: str,
        k: int = 5,
        *,
        min_similarity: float | None = None,
    ) -> list[RetrievedChunk]:
        """The top k chunks of the tenant's collection, or [] when none is relevant enough."""
        if k < 1:
            raise ValueError("k must be at least 1")
        ns = namespace(tenant, collection)
        if not query.strip():
            return []
        depth = max(self.settings.candidates, k)
        mode = self.settings.mode
        dense, keyword = await asyncio.gather(
            self._dense(query, ns, depth) if mode != "bm25" else _nothing(),
            self.text_index.search(query, namespace=ns, k=depth) if mode != "dense" else _nothing(),
        )
        similarity = {hit.id: hit.score for hit in dense}
        threshold = self.settings.min_similarity if min_similarity is None else min_similarity
        if mode != "bm25" and (not similarity or max(similarity.values()) < threshold):
            return []
        payloads: dict[str, dict[str, Any]] = {hit.id: hit.payload for hit in keyword}
        payloads.update({hit.id: hit.payload for hit in dense})
        fused = rrf([[h.id for h in dense], [h.id for h in keyword]], k=self.settings.rrf_k)
        ranked = sorted(fused.items(), key=lambda item: (-item[1], item[0]))[:k]
        return [
            self._chunk(id_, score, similarity.get(id_), payloads[id_], query)
            for id_, score in ranked
        ]

    async def _dense(self, query: str, ns: str, depth: int) -> list[Any]:
        (vector,) = await self.embedder.embed([query])
        return await self.vectors.search(vector, namespace=ns, k=depth)

    @staticmethod
    def _chunk(
        id_: str, score: float, similarity: float | None, payload: dict[str, Any], query: str
    ) -> RetrievedChunk:
        text = str(payload.get("text", ""))
        page = payload.get("page")
        metadata = {"id": id_}
        if payload.get("entry") is not None:
            metadata["entry"] = str(payload["entry"])
        return RetrievedChunk(
            doc_id=str(payload.get("doc_id", "")),
            title=str(payload.get("title", "")),
            uri=str(payload.get("uri", "")),
            chunk=int(payload.get("chunk", 0)),
            score=score,
            similarity=similarity,
            text=text,
            snippet=snippet(text, query),
            section=str(payload.get("section", "")),
            page=int(page) if page is not None else None,
            metadata=metadata,
        )


async def _nothing() -> list[Any]:
    return []
