"""The OpenSearch `VectorIndex`: a k-NN index (faiss HNSW) with a `namespace` keyword field.

Mapping: `knn_vector` with `method: {name: hnsw, engine: faiss, space_type: innerproduct}` by
default. faiss supports `innerproduct` on every OpenSearch 2.x/3.x release, and `cosinesimil`
only from 2.19; our vectors are unit length, so the inner product is the cosine and both rank
the same. `space_type="cosinesimil"` is accepted for clusters that want it.

Scores: OpenSearch turns distances into scores with per-space formulas that have changed between
versions, so hits carry the plain cosine computed here from the stored vector returned in
`_source` (vectors are sent unit-normalised, so it is a dot product).

Namespace filtering is the k-NN query's own `filter` (efficient filtering, faiss 2.9+): the
search looks for the k nearest among the namespace's documents, rather than filtering k global
neighbours afterwards, so a small tenant is not starved by a large one. Hits are checked against
the namespace again before they are returned.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from opensearchpy import AsyncOpenSearch

from lockgate.embeddings.base import Vectors
from lockgate.stores.embedded.vectors_checks import check_name, check_prefix, unit_vector
from lockgate.stores.opensearch.indexing import Keyed, OpenSearchIndex, Refresh
from lockgate.stores.ports import VectorHit, VectorRecord

SpaceType = Literal["innerproduct", "cosinesimil"]


class OpenSearchError(RuntimeError):
    """A write OpenSearch rejected, with its reasons (never the request's vectors)."""


class OpenSearchVectorIndex(OpenSearchIndex):
    """`VectorIndex` over one OpenSearch index, for one embedding model (one dimension)."""

    error = OpenSearchError

    def __init__(
        self,
        client: AsyncOpenSearch,
        index: str,
        *,
        dimensions: int,
        space_type: SpaceType = "innerproduct",
        m: int = 16,
        ef_construction: int = 128,
        ef_search: int = 100,
        refresh: Refresh = "false",
        field: str = "vector",
    ) -> None:
        if dimensions <= 0:
            raise ValueError("dimensions must be positive")
        if space_type not in ("innerproduct", "cosinesimil"):
            raise ValueError("space_type must be innerproduct or cosinesimil")
        super().__init__(client, index, refresh=refresh)
        self._dim = dimensions
        self._space = space_type
        self._m = m
        self._ef_construction = ef_construction
        self._ef_search = ef_search
        self._field = field

    def index_body(self) -> dict[str, Any]:
        """The index's settings and mapping, as `ensure_index` creates it."""
        return {
            "settings": {
                "index": self.index_settings(
                    knn=True, **{"knn.algo_param.ef_search": self._ef_search}
                )
            },
            "mappings": {
                "properties": {
                    self._field: {
                        "type": "knn_vector",
                        "dimension": self._dim,
                        "method": {
                            "name": "hnsw",
                            "engine": "faiss",
                            "space_type": self._space,
                            "parameters": {"m": self._m, "ef_construction": self._ef_construction},
                        },
                    },
                    "namespace": {"type": "keyword"},
                    "record_id": {"type": "keyword"},
                    "payload": {"type": "object", "enabled": False},
                }
            },
        }

    async def ensure_index(self) -> None:
        """Creates the index if missing; fails clearly if it exists with another dimension."""
        if await self._create_if_missing():
            return
        mapping: dict[str, Any] = await self._client.indices.get_mapping(index=self._index)
        first: dict[str, Any] = next(iter(mapping.values()), {})
        found = first.get("mappings", {}).get("properties", {})
        dimension = found.get(self._field, {}).get("dimension")
        if dimension != self._dim:
            raise ValueError(
                f"OpenSearch index {self._index!r} holds {dimension}-d {self._field!r} vectors, "
                f"not {self._dim}-d: use another index per embedding model"
            )

    async def upsert(self, records: Sequence[VectorRecord]) -> None:
        if not records:
            return
        documents: list[tuple[Keyed, dict[str, Any]]] = []
        for record in records:
            check_name(record.namespace, "namespace")
            check_name(record.id, "record id")
            vector = unit_vector(record.vector, self._dim)
            documents.append((record, {self._field: vector.tolist()}))
        await self._index_documents(documents)

    async def search(self, vector: Vectors, *, namespace: str, k: int) -> list[VectorHit]:
        if k <= 0:
            raise ValueError("k must be positive")
        query = unit_vector(vector, self._dim)
        body = {
            "size": k,
            "_source": [self._field, "namespace", "record_id", "payload"],
            "query": {
                "knn": {
                    self._field: {
                        "vector": query.tolist(),
                        "k": k,
                        "filter": {"term": {"namespace": namespace}},
                    }
                }
            },
        }
        hits: list[VectorHit] = []
        for hit in await self._search(body, namespace=namespace):
            source = hit["_source"]
            hits.append(
                VectorHit(
                    id=str(source["record_id"]),
                    score=self._cosine(query, source.get(self._field), hit.get("_score")),
                    payload=dict(source.get("payload") or {}),
                )
            )
        hits.sort(key=lambda h: h.score, reverse=True)
        return hits[:k]

    async def delete_namespace(self, namespace_prefix: str) -> int:
        check_prefix(namespace_prefix)
        return await self._delete_prefix(namespace_prefix)

    def _cosine(self, query: Vectors, stored: Any, score: Any) -> float:
        if stored is not None:
            value = float(np.dot(query, unit_vector(stored, self._dim)))
        elif self._space == "innerproduct" and score is not None:
            value = _cosine_from_innerproduct_score(float(score))
        else:
            raise OpenSearchError("OpenSearch returned a hit without its vector")
        return min(1.0, max(-1.0, value))


def _cosine_from_innerproduct_score(score: float) -> float:
    """Inverts the k-NN plugin's innerproduct score (score = 1 + ip for ip >= 0, else
    1 / (1 - ip)); only used when the stored vector is not returned."""
    return score - 1.0 if score >= 1.0 else 1.0 - 1.0 / score
