"""The OpenSearch `TextIndex`: BM25 on an analysed `text` field, filtered by a `namespace`
keyword inside the query (a `bool` filter clause, so only the namespace's documents are scored).

Shares the cluster (and `stores.opensearch.client.connect`) with the vector index, in an index of
its own: the BM25 side needs no vectors and the k-NN side no analysed text.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opensearchpy import AsyncOpenSearch

from lockgate.rag.ports import TextHit, TextRecord
from lockgate.stores.opensearch.indexing import OpenSearchIndex, Refresh

MAX_QUERY_CHARS = 2000


class OpenSearchTextError(RuntimeError):
    """A write OpenSearch rejected, with its reasons (never the documents' text)."""


class OpenSearchTextIndex(OpenSearchIndex):
    error = OpenSearchTextError

    def __init__(
        self,
        client: AsyncOpenSearch,
        index: str,
        *,
        analyzer: str = "english",
        refresh: Refresh = "false",
    ) -> None:
        super().__init__(client, index, refresh=refresh)
        self._analyzer = analyzer

    def index_body(self) -> dict[str, Any]:
        return {
            "settings": {"index": self.index_settings(number_of_shards=1)},
            "mappings": {
                "properties": {
                    "text": {"type": "text", "analyzer": self._analyzer},
                    "namespace": {"type": "keyword"},
                    "record_id": {"type": "keyword"},
                    "payload": {"type": "object", "enabled": False},
                }
            },
        }

    async def upsert(self, records: Sequence[TextRecord]) -> None:
        if not records:
            return
        await self._index_documents([(record, {"text": record.text}) for record in records])

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
        return [
            TextHit(
                id=str(hit["_source"]["record_id"]),
                score=float(hit.get("_score") or 0.0),
                payload=dict(hit["_source"].get("payload") or {}),
            )
            for hit in await self._search(body, namespace=namespace)
        ]

    async def delete_namespace(self, namespace_prefix: str) -> int:
        if not namespace_prefix:
            raise ValueError("an empty prefix would delete every namespace")
        return await self._delete_prefix(namespace_prefix)
