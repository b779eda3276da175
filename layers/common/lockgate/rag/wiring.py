"""Factories that assemble the RAG services for each shape; the composition roots
(`lockgate.bootstrap`, the ingest Lambda) call these rather than repeat the assembly."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lockgate.embeddings.base import Embedder
from lockgate.policy import IngestionPolicy
from lockgate.rag.ingest import IngestionService
from lockgate.rag.parsing import DocumentParser
from lockgate.rag.ports import DocumentStore, TextIndex
from lockgate.rag.retrieval import RetrievalSettings, Retriever
from lockgate.rag.serving import ReopeningVectors, ServedText, ServedVectors, ServingVersions
from lockgate.settings import Settings
from lockgate.stores.ports import VectorIndex

log = logging.getLogger("lockgate.rag")

RAG_DB = "rag.db"
EMBEDDINGS_DB = "embeddings.db"
VECTORS_DB = "rag-vectors.db"


@dataclass
class RagComponents:
    documents: DocumentStore
    text_index: TextIndex
    vectors: VectorIndex
    embedder: Embedder
    ingestion: IngestionService
    retriever: Retriever
    closers: list[Any] = field(default_factory=list)

    async def aclose(self) -> None:
        for closer in self.closers:
            result = closer()
            if hasattr(result, "__await__"):
                await result


def assemble(
    documents: DocumentStore,
    text_index: TextIndex,
    vectors: VectorIndex,
    embedder: Embedder,
    *,
    settings: RetrievalSettings | None = None,
    closers: list[Any] | None = None,
    parser: DocumentParser | None = None,
) -> RagComponents:
    """Ingestion writes to the indexes; retrieval reads them through `serving`'s filter, so
    it only ever sees committed document versions."""
    parser = parser or DocumentParser()
    ingestion = IngestionService(documents, text_index, vectors, embedder, parser=parser)
    serving = ServingVersions(documents)
    ingestion.on_change.append(serving.changed)
    if isinstance(vectors, ReopeningVectors):
        serving.on_foreign_change.append(vectors.reopen)
    retriever = Retriever(
        ServedText(text_index, serving), ServedVectors(vectors, serving), embedder, settings
    )
    return RagComponents(
        documents=documents,
        text_index=text_index,
        vectors=vectors,
        embedder=embedder,
        ingestion=ingestion,
        retriever=retriever,
        closers=[*(closers or []), parser.close],
    )


def embedded(
    data_dir: Path,
    *,
    embedder: Embedder | None = None,
    vectors: VectorIndex | None = None,
    settings: RetrievalSettings | None = None,
    limits: IngestionPolicy | None = None,
) -> RagComponents:
    """SQLite for documents, tantivy (else FTS5) for BM25, the embedded vector index, MiniLM;
    documents parsed in a worker process.

    The vector index is reopened from its file when another process (`lockgate ingest`
    while the server runs) changed a collection. Pass `vectors` to share one vector index (and
    its file) with the semantic cache instead."""
    from lockgate.embeddings.cache import CachedEmbedder
    from lockgate.stores.embedded.documents import SqliteDocumentStore
    from lockgate.stores.embedded.sqlite import private_dir
    from lockgate.stores.embedded.text_index import open_text_index

    private_dir(data_dir)

    if embedder is None:
        from lockgate.embeddings.local import MiniLMEmbedder

        embedder = MiniLMEmbedder()
    closers: list[Any] = []
    if vectors is None:
        from lockgate.stores.embedded.vectors import EmbeddedVectorIndex

        dimensions = embedder.dimensions
        own = ReopeningVectors(
            lambda: EmbeddedVectorIndex(data_dir / VECTORS_DB, dimensions=dimensions)
        )
        vectors = own
        closers.append(own.aclose)
    documents = SqliteDocumentStore(data_dir / RAG_DB)
    text_index = open_text_index(data_dir, data_dir / RAG_DB)
    remembered = CachedEmbedder(embedder, data_dir / EMBEDDINGS_DB)  # ingestion only
    closers += [documents.close, text_index.close, remembered.close]
    rag = assemble(
        documents,
        text_index,
        vectors,
        embedder,
        settings=settings,
        closers=closers,
        parser=DocumentParser(limits),
    )
    rag.ingestion.embedder = remembered
    return rag


async def aws(
    config: Settings,
    *,
    embedder: Embedder | None = None,
    settings: RetrievalSettings | None = None,
    limits: IngestionPolicy | None = None,
) -> RagComponents:
    """DynamoDB for documents, OpenSearch for BM25 and k-NN (SigV4 unless told otherwise);
    documents parsed in a thread (a Lambda has no `/dev/shm` for a worker process's locks, and
    is itself one document at a time under its own memory limit).

    The same OpenSearch configuration as the semantic cache (`Settings.opensearch`)."""
    from lockgate.stores.aws.documents import DynamoDocumentStore
    from lockgate.stores.opensearch.client import connect
    from lockgate.stores.opensearch.text_index import OpenSearchTextIndex
    from lockgate.stores.opensearch.vectors import OpenSearchVectorIndex

    if not config.documents_table:
        raise ValueError("the aws backend needs LOCKGATE_DOCUMENTS_TABLE")
    if embedder is None:
        from lockgate.embeddings.local import MiniLMEmbedder

        embedder = MiniLMEmbedder()
    client = connect(config.opensearch())
    text_index = OpenSearchTextIndex(client, config.rag_text_index)
    vectors = OpenSearchVectorIndex(client, config.rag_vector_index, dimensions=embedder.dimensions)
    await text_index.ensure_index()
    await vectors.ensure_index()
    documents = DynamoDocumentStore(config.documents_table)
    return assemble(
        documents,
        text_index,
        vectors,
        embedder,
        settings=settings,
        closers=[client.close],
        parser=DocumentParser(limits, isolated=False),
    )


async def keep_repaired(ingestion: IngestionService, interval_s: float = 60.0) -> None:
    """Repairs what crashed writers left half done, now and then every `interval_s` (a row
    abandoned moments before a start is only recognisable as abandoned a while later)."""
    while True:
        try:
            for result in await ingestion.repair():
                log.warning("repaired %s: %s", result.source_uri, result.outcome)
        except Exception:
            log.exception("repairing interrupted documents failed; retrying")
        await asyncio.sleep(interval_s)
