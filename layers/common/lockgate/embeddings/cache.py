"""A persistent embedding cache in front of an Embedder, for ingestion.

MiniLM costs about 4 GFLOP for a 200-token chunk: on two cores that is the ~20 chunks/s the
first ingestion of a collection runs at, whatever the batching. Re-ingesting an edited file
re-chunks all of it, though, and most chunks come out as they were: keyed by the hash of the
model name and the exact text, their vectors come from SQLite and only the changed chunks reach
the model. Query-time embeddings do not go through this cache (each query would cost a write).
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from lockgate.embeddings.base import Embedder, Vectors
from lockgate.stores.embedded.sqlite import connect

_SCHEMA = "CREATE TABLE IF NOT EXISTS embeddings (key BLOB PRIMARY KEY, vector BLOB NOT NULL)"
_LOOKUP_BATCH = 500  # SQLite's bound-parameter limit is far above; keeps statements small


class CachedEmbedder:
    """The Embedder port, remembering every vector it computed in a SQLite file."""

    def __init__(self, inner: Embedder, path: Path) -> None:
        self.inner = inner
        self._db = connect(path)
        self._db.execute(_SCHEMA)
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def dimensions(self) -> int:
        return self.inner.dimensions

    async def embed(self, texts: Sequence[str]) -> Vectors:
        keys = [self._key(text) for text in texts]
        known = await asyncio.to_thread(self._lookup, sorted(set(keys)))
        missing = list(dict.fromkeys(t for t, k in zip(texts, keys, strict=True) if k not in known))
        if missing:
            fresh = await self.inner.embed(missing)
            rows = [
                (self._key(t), v.astype(np.float32).tobytes())
                for t, v in zip(missing, fresh, strict=True)
            ]
            await asyncio.to_thread(self._store, rows)
            known.update((key, vector) for key, vector in rows)
        out = np.empty((len(texts), self.dimensions), dtype=np.float32)
        for row, key in enumerate(keys):
            out[row] = np.frombuffer(known[key], dtype=np.float32)
        return out

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _key(self, text: str) -> bytes:
        return hashlib.sha256(f"{self.inner.name}\0{text}".encode()).digest()

    def _lookup(self, keys: list[bytes]) -> dict[bytes, bytes]:
        found: dict[bytes, bytes] = {}
        with self._lock:
            for start in range(0, len(keys), _LOOKUP_BATCH):
                part = keys[start : start + _LOOKUP_BATCH]
                marks = ",".join("?" * len(part))
                rows = self._db.execute(
                    f"SELECT key, vector FROM embeddings WHERE key IN ({marks})", part
                ).fetchall()
                found.update((bytes(key), bytes(vector)) for key, vector in rows)
        return found

    def _store(self, rows: list[tuple[bytes, bytes]]) -> None:
        with self._lock, self._db:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR REPLACE INTO embeddings VALUES (?, ?)", rows)
