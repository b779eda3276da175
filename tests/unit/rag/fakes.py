"""Small deterministic stand-ins for the Embedder and VectorIndex ports, for unit tests that
check ingestion and retrieval logic rather than the model or a vector store."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np
from lockgate.embeddings.base import Vectors
from lockgate.stores.ports import VectorHit, VectorRecord

_WORD = re.compile(r"\w+")


class HashingEmbedder:
    """Bag of words hashed into 256 dimensions, L2-normalised: texts sharing words are close."""

    def __init__(self, dimensions: int = 256) -> None:
        self._dimensions = dimensions
        self.calls = 0

    @property
    def name(self) -> str:
        return "hashing-test"

    @property
    def dimensions(self) -> int:
        return self._dimensions

    async def embed(self, texts: Sequence[str]) -> Vectors:
        self.calls += 1
        out = np.zeros((len(texts), self._dimensions), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in _WORD.findall(text.lower()):
                digest = hashlib.blake2b(word.encode(), digest_size=4).digest()
                out[row, int.from_bytes(digest, "little") % self._dimensions] += 1.0
            norm = float(np.linalg.norm(out[row]))
            if norm:
                out[row] /= norm
        return out


class MemoryVectorIndex:
    """Exact cosine over a dict, filtered to the namespace before ranking."""

    def __init__(self) -> None:
        self.records: dict[tuple[str, str], VectorRecord] = {}
        self.fail_upserts_after: int | None = None
        self.upserts = 0

    async def upsert(self, records: Sequence[VectorRecord]) -> None:
        self.upserts += 1
        if self.fail_upserts_after is not None and self.upserts > self.fail_upserts_after:
            raise ConnectionError("vector store unavailable")
        for record in records:
            self.records[(record.namespace, record.id)] = record

    async def search(self, vector: Vectors, *, namespace: str, k: int) -> list[VectorHit]:
        hits = [
            VectorHit(r.id, float(np.dot(vector, r.vector)), r.payload)
            for (ns, _), r in self.records.items()
            if ns == namespace
        ]
        return sorted(hits, key=lambda h: -h.score)[:k]

    async def delete(self, ids: Sequence[str], *, namespace: str) -> None:
        for id_ in ids:
            self.records.pop((namespace, id_), None)

    async def delete_namespace(self, namespace_prefix: str) -> int:
        doomed = [key for key in self.records if key[0].startswith(namespace_prefix)]
        for key in doomed:
            del self.records[key]
        return len(doomed)

    def ids(self, namespace: str) -> set[str]:
        return {id_ for ns, id_ in self.records if ns == namespace}
