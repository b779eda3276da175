"""RAG unit fixtures: the real SQLite stores in a temp dir, deterministic embedder and vectors."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from lockgate.rag.ingest import IngestionService
from lockgate.rag.retrieval import RetrievalSettings, Retriever
from lockgate.stores.embedded.documents import SqliteDocumentStore
from lockgate.stores.embedded.text_index import SqliteTextIndex

from tests.unit.rag.fakes import HashingEmbedder, MemoryVectorIndex


@dataclass
class Rag:
    documents: SqliteDocumentStore
    text: SqliteTextIndex
    vectors: MemoryVectorIndex
    embedder: HashingEmbedder
    service: IngestionService
    retriever: Retriever


@pytest.fixture
def rag(tmp_path: Path) -> Iterator[Rag]:
    documents = SqliteDocumentStore(tmp_path / "rag.db")
    text = SqliteTextIndex(tmp_path / "rag.db")
    vectors = MemoryVectorIndex()
    embedder = HashingEmbedder()
    service = IngestionService(documents, text, vectors, embedder, batch_size=4)
    retriever = Retriever(text, vectors, embedder, RetrievalSettings(min_similarity=0.2))
    yield Rag(documents, text, vectors, embedder, service, retriever)
    documents.close()
    text.close()
