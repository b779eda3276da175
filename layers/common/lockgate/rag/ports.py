"""The ports RAG adds: a keyword (BM25) index beside the `VectorIndex`, and the document store
that records what each collection holds and how its indexing went."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from lockgate.rag.model import DocumentRecord


@dataclass(frozen=True, slots=True)
class TextRecord:
    id: str
    namespace: str
    text: str
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TextHit:
    id: str
    score: float
    """BM25, larger is better; only comparable within one query."""
    payload: dict[str, Any]


class TextIndex(Protocol):
    """BM25 keyword search, filtered to one namespace inside the search."""

    async def upsert(self, records: Sequence[TextRecord]) -> None: ...

    async def search(self, query: str, *, namespace: str, k: int) -> list[TextHit]: ...

    async def delete(self, ids: Sequence[str], *, namespace: str) -> None: ...

    async def delete_namespace(self, namespace_prefix: str) -> int: ...


class DocumentStore(Protocol):
    """Documents per (tenant, collection), their indexing status, and each collection's version."""

    async def get(self, tenant: str, collection: str, doc_id: str) -> DocumentRecord | None: ...

    async def put(self, record: DocumentRecord) -> None: ...

    async def remove(self, tenant: str, collection: str, doc_id: str) -> None: ...

    async def list_documents(self, tenant: str, collection: str) -> list[DocumentRecord]: ...

    async def list_collections(self, tenant: str) -> list[str]: ...

    async def list_unfinished(self) -> list[DocumentRecord]:
        """Every tenant's documents left `indexing` or `deleting`: after a crash, what to
        repair."""
        ...

    async def get_version(self, tenant: str, collection: str) -> str | None: ...

    async def set_version(self, tenant: str, collection: str, version: str | None) -> None:
        """Stores the collection's version; None forgets the collection."""
        ...
