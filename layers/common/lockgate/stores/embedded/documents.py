"""RAG documents, their indexing status and collection versions in SQLite."""

from __future__ import annotations

import threading
from pathlib import Path

from lockgate.rag.model import DocumentRecord
from lockgate.stores.embedded.sqlite import connect

_SCHEMA = """
CREATE TABLE IF NOT EXISTS rag_documents (
    tenant        TEXT NOT NULL,
    collection    TEXT NOT NULL,
    doc_id        TEXT NOT NULL,
    source_uri    TEXT NOT NULL,
    title         TEXT NOT NULL DEFAULT '',
    content_hash  TEXT,
    chunk_count   INTEGER NOT NULL DEFAULT 0,
    pending_hash  TEXT,
    pending_count INTEGER NOT NULL DEFAULT 0,
    status        TEXT NOT NULL,
    error         TEXT,
    attempts      INTEGER NOT NULL DEFAULT 0,
    updated_at    REAL NOT NULL DEFAULT 0,
    size_bytes    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant, collection, doc_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rag_collections (
    tenant     TEXT NOT NULL,
    collection TEXT NOT NULL,
    version    TEXT NOT NULL,
    PRIMARY KEY (tenant, collection)
) WITHOUT ROWID;
"""

_COLUMNS = (
    "tenant, collection, doc_id, source_uri, title, content_hash, chunk_count, pending_hash,"
    " pending_count, status, error, attempts, updated_at, size_bytes"
)


def _record(row: tuple[object, ...]) -> DocumentRecord:
    return DocumentRecord(*row)  # type: ignore[arg-type]


class SqliteDocumentStore:
    """Short indexed reads and writes, done inline: they take microseconds, less than a hop to a
    worker thread would."""

    def __init__(self, path: Path) -> None:
        self._db = connect(path, timeout=5.0, synchronous="FULL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()

    async def get(self, tenant: str, collection: str, doc_id: str) -> DocumentRecord | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM rag_documents"
                " WHERE tenant = ? AND collection = ? AND doc_id = ?",
                (tenant, collection, doc_id),
            ).fetchone()
        return _record(row) if row else None

    async def put(self, record: DocumentRecord) -> None:
        values = (
            record.tenant,
            record.collection,
            record.doc_id,
            record.source_uri,
            record.title,
            record.content_hash,
            record.chunk_count,
            record.pending_hash,
            record.pending_count,
            record.status,
            record.error,
            record.attempts,
            record.updated_at,
            record.size_bytes,
        )
        with self._lock:
            self._db.execute(
                f"INSERT OR REPLACE INTO rag_documents ({_COLUMNS})"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                values,
            )

    async def remove(self, tenant: str, collection: str, doc_id: str) -> None:
        with self._lock:
            self._db.execute(
                "DELETE FROM rag_documents WHERE tenant = ? AND collection = ? AND doc_id = ?",
                (tenant, collection, doc_id),
            )

    async def list_documents(self, tenant: str, collection: str) -> list[DocumentRecord]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM rag_documents WHERE tenant = ? AND collection = ?",
                (tenant, collection),
            ).fetchall()
        return [_record(row) for row in rows]

    async def list_collections(self, tenant: str) -> list[str]:
        with self._lock:
            rows = self._db.execute(
                "SELECT DISTINCT collection FROM rag_documents WHERE tenant = ?"
                " UNION SELECT collection FROM rag_collections WHERE tenant = ?",
                (tenant, tenant),
            ).fetchall()
        return sorted(str(row[0]) for row in rows)

    async def list_unfinished(self) -> list[DocumentRecord]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM rag_documents WHERE status IN ('indexing', 'deleting')"
            ).fetchall()
        return [_record(row) for row in rows]

    async def get_version(self, tenant: str, collection: str) -> str | None:
        with self._lock:
            row = self._db.execute(
                "SELECT version FROM rag_collections WHERE tenant = ? AND collection = ?",
                (tenant, collection),
            ).fetchone()
        return str(row[0]) if row else None

    async def set_version(self, tenant: str, collection: str, version: str | None) -> None:
        with self._lock:
            if version is None:
                self._db.execute(
                    "DELETE FROM rag_collections WHERE tenant = ? AND collection = ?",
                    (tenant, collection),
                )
            else:
                self._db.execute(
                    "INSERT OR REPLACE INTO rag_collections (tenant, collection, version)"
                    " VALUES (?, ?, ?)",
                    (tenant, collection, version),
                )

    def close(self) -> None:
        self._db.close()
