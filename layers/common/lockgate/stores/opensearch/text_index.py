"""The OpenSearch `TextIndex`: BM25 on an analysed `text` field, filtered by a `namespace`
keyword inside the query (a `bool` filter clause, so only the namespace's documents are scored).

Shares the cluster (and `stores.opensearch.client.connect`) with the vector index, in an index of
its own: the BM25 side needs no vectors and the k-NN side no analysed text.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any, Literal

from opensearchpy import AsyncOpenSearch, NotFoundError

from lockgate.rag.ports import TextHit, TextRecord

Refresh = Literal["true", "false", "wait_for"]
MAX_QUERY_CHARS = 2000


class OpenSearchTextError(RuntimeError):
    """A write OpenSearch rejected, with its reasons (never the documents' text)."""


def doc_id(namespace: str, record_id: str) -> str:
    """A document id unique per (namespace, id), within OpenSearch's 512-byte id limit."""
    return hashlib.sha256(f"{namespace}\x00{record_id}".encode()).hexdigest()


class OpenSearchTextIndex:
    def __init__(
        self,
        client: AsyncOpenSearch,
        index: str,
        *,
        analyzer: str = "english",
        refresh: Refresh = "false",
    ) -> None:
        self._client = client
        self._index = index
        self._analyzer = analyzer
        self._refresh = refresh

    def index_body(self) -> dict[str, Any]:
        return {
            "settings": {"index": {"number_of_shards": 1}},
            "mappings": {
                "properties": {
                    "text": {"type": "text", "analyzer": self._analyzer},
                    "namespace": {"type": "keyword"},
                    "record_id": {"type": "keyword"},
                    "payload": {"type": "object", "enabled": False},
                }
            },
        }

    async def ensure_index(self) -> None:
        if not await self._client.indices.exists(index=self._index):
            await self._client.indices.create(index=self._index, body=self.index_body())

    async def upsert(self, records: Sequence[TextRecord]) -> None:
        if not records:
            return
        body: list[dict[str, Any]] = []
        for record in records:
            body.append(
                {"index": {"_index": self._index, "_id": doc_id(record.namespace, record.id)}}
            )
            body.append(
                {
                    "text": record.text,
                    "namespace": record.namespace,
                    "record_id": record.id,
                    "payload": record.payload,
                }
            )
        response = await self._client.bulk(body=body, refresh=self._refresh)
        _raise_for_items(response, allowed_statuses=())

    async def search(self, query: str, *, namespace: str, k: int) -> list[TextHit]:
        if k <= 0 or not query.strip():
            return []
        body = {
            "size": k,
            "_source": ["namespace", "record_id", "payload"],
            "query": {
                "bool": {
                    "must": [{"match": {"text": {"query": query[:MAX_QUERY_CHARS]}}}],
                    "filter": [{"term": {"namespace": namespace}}],
                }
            },
        }
        try:
            response = await self._client.search(index=self._index, body=body)
        except NotFoundError:
            return []
        hits: list[TextHit] = []
        for hit in response.get("hits", {}).get("hits", []):
            source = hit.get("_source", {})
            if source.get("namespace") != namespace:
                continue
            hits.append(
                TextHit(
                    id=str(source["record_id"]),
                    score=float(hit.get("_score") or 0.0),
                    payload=dict(source.get("payload") or {}),
                )
            )
        return hits

    async def delete(self, ids: Sequence[str], *, namespace: str) -> None:
        if not ids:
            return
        body = [{"delete": {"_index": self._index, "_id": doc_id(namespace, i)}} for i in ids]
        response = await self._client.bulk(body=body, refresh=self._refresh)
        _raise_for_items(response, allowed_statuses=(404,))

    async def delete_namespace(self, namespace_prefix: str) -> int:
        if not namespace_prefix:
            raise ValueError("an empty prefix would delete every namespace")
        try:
            response = await self._client.delete_by_query(
                index=self._index,
                body={"query": {"prefix": {"namespace": namespace_prefix}}},
                conflicts="proceed",
                refresh=True,
            )
        except NotFoundError:
            return 0
        return int(response.get("deleted", 0))

    async def close(self) -> None:
        await self._client.close()


def _raise_for_items(response: dict[str, Any], allowed_statuses: tuple[int, ...]) -> None:
    if not response.get("errors"):
        return
    reasons = []
    for item in response.get("items", []):
        (result,) = item.values()
        if result.get("status", 200) < 300 or result.get("status") in allowed_statuses:
            continue
        error = result.get("error") or {}
        reasons.append(f"{error.get('type', result.get('status'))}: {error.get('reason', '')}")
    if reasons:
        raise OpenSearchTextError(f"OpenSearch rejected {len(reasons)} bulk item(s): {reasons[:3]}")
