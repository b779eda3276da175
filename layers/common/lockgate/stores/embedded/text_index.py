"""BM25 keyword search in SQLite FTS5.

The namespace filter runs inside the full-text query: each row also indexes one opaque token
derived from its namespace, and every MATCH is `ns:<token> AND (<query terms>)`, so FTS5
intersects the posting lists and ranks only that namespace's rows; a LIMIT can never be filled
by another tenant's rows and then filtered away. Deletes by id go through a plain side table
keyed on (namespace, id), since FTS5 cannot index an id column.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import threading
from collections.abc import Sequence
from pathlib import Path

from lockgate.rag.ports import TextHit, TextRecord
from lockgate.stores.embedded.sqlite import connect

_SCHEMA = """
CREATE TABLE IF NOT EXISTS rag_text (
    rowid     INTEGER PRIMARY KEY,
    namespace TEXT NOT NULL,
    id        TEXT NOT NULL,
    payload   TEXT NOT NULL,
    UNIQUE (namespace, id)
);
CREATE VIRTUAL TABLE IF NOT EXISTS rag_fts USING fts5(text, ns, tokenize='porter unicode61');
"""

# Words so common that OR-ing them in only slows the query and adds noise to the ranking.
_STOPWORDS = """a an and are as at be but by can do does for from has have how i if in is it its me
my of on or our so than that the their them then there these they this to was we what when where
which who why will with you your"""
STOPWORDS = frozenset(_STOPWORDS.split())
MAX_TERMS = 32
_WORD = re.compile(r"\w+", re.UNICODE)


def match_expression(query: str) -> str | None:
    """The user's words as an OR of quoted terms: no FTS5 syntax from the query gets through."""
    terms: list[str] = []
    for word in _WORD.findall(query.lower()):
        if word not in STOPWORDS and word not in terms:
            terms.append(word)
    if not terms:
        terms = list(dict.fromkeys(_WORD.findall(query.lower())))
    if not terms:
        return None
    return " OR ".join(f'"{t}"' for t in terms[:MAX_TERMS])


def _ns_token(namespace: str) -> str:
    return "ns" + hashlib.sha256(namespace.encode()).hexdigest()[:24]


class SqliteTextIndex:
    def __init__(self, path: Path) -> None:
        self._db = connect(path, timeout=5.0, synchronous="FULL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()

    async def upsert(self, records: Sequence[TextRecord]) -> None:
        if records:
            await asyncio.to_thread(self._upsert, records)

    async def search(self, query: str, *, namespace: str, k: int) -> list[TextHit]:
        expression = match_expression(query)
        if expression is None or k <= 0:
            return []
        return await asyncio.to_thread(self._search, expression, namespace, k)

    async def delete(self, ids: Sequence[str], *, namespace: str) -> None:
        if ids:
            await asyncio.to_thread(self._delete, list(ids), namespace)

    async def delete_namespace(self, namespace_prefix: str) -> int:
        return await asyncio.to_thread(self._delete_prefix, namespace_prefix)

    def count(self, namespace: str | None = None) -> int:
        with self._lock:
            if namespace is None:
                row = self._db.execute("SELECT COUNT(*) FROM rag_text").fetchone()
            else:
                row = self._db.execute(
                    "SELECT COUNT(*) FROM rag_text WHERE namespace = ?", (namespace,)
                ).fetchone()
        return int(row[0])

    def close(self) -> None:
        self._db.close()

    def _upsert(self, records: Sequence[TextRecord]) -> None:
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            for record in records:
                self._remove(record.namespace, record.id)
                cursor = self._db.execute(
                    "INSERT INTO rag_text (namespace, id, payload) VALUES (?, ?, ?)",
                    (record.namespace, record.id, json.dumps(record.payload)),
                )
                self._db.execute(
                    "INSERT INTO rag_fts (rowid, text, ns) VALUES (?, ?, ?)",
                    (cursor.lastrowid, record.text, _ns_token(record.namespace)),
                )

    def _remove(self, namespace: str, id_: str) -> int:
        row = self._db.execute(
            "SELECT rowid FROM rag_text WHERE namespace = ? AND id = ?", (namespace, id_)
        ).fetchone()
        if row is None:
            return 0
        self._db.execute("DELETE FROM rag_fts WHERE rowid = ?", (row[0],))
        self._db.execute("DELETE FROM rag_text WHERE rowid = ?", (row[0],))
        return 1

    def _search(self, expression: str, namespace: str, k: int) -> list[TextHit]:
        match = f'ns:"{_ns_token(namespace)}" AND ({expression})'
        with self._lock:
            rows = self._db.execute(
                "SELECT t.id, t.payload, bm25(rag_fts, 1.0, 0.0) AS rank"
                " FROM rag_fts JOIN rag_text t ON t.rowid = rag_fts.rowid"
                " WHERE rag_fts MATCH ? AND t.namespace = ?"
                " ORDER BY rank LIMIT ?",
                (match, namespace, k),
            ).fetchall()
        return [
            TextHit(id=row[0], score=-float(row[2]), payload=json.loads(row[1])) for row in rows
        ]

    def _delete(self, ids: list[str], namespace: str) -> None:
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            for id_ in ids:
                self._remove(namespace, id_)

    def _delete_prefix(self, prefix: str) -> int:
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            rows = self._db.execute(
                "SELECT rowid FROM rag_text WHERE substr(namespace, 1, ?) = ?",
                (len(prefix), prefix),
            ).fetchall()
            for (rowid,) in rows:
                self._db.execute("DELETE FROM rag_fts WHERE rowid = ?", (rowid,))
                self._db.execute("DELETE FROM rag_text WHERE rowid = ?", (rowid,))
        return len(rows)
