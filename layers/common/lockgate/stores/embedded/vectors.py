"""The embedded `VectorIndex`: SQLite holds every vector, memory holds one index per namespace.

SQLite is the source of truth (vectors as float32 blobs, payloads as JSON). At start the
in-memory indexes are rebuilt from it, except that big namespaces reload the HNSW snapshot saved
by `aclose()`/`save()` when the snapshot's version still matches SQLite's (any write since
bumps the version, so a stale or half-written snapshot is ignored and rebuilt).

Namespaces are partitions, so the namespace filter is part of the search itself and one tenant's
vectors are never candidates for another's query. A partition is searched exactly (numpy) until
it holds `exact_max` vectors, then through usearch's HNSW (see `bench.vector_index` for why).

Concurrency: one process owns the file. Searches run on the event loop (well under a
millisecond to a couple of milliseconds; a thread hop would cost as much); writes run in a
worker thread, serialised by a write lock, and touch the in-memory indexes under a short lock.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lockgate.embeddings.base import Vectors
from lockgate.stores.embedded.sqlite import connect
from lockgate.stores.embedded.vectors_checks import check_name, check_prefix, unit_vector
from lockgate.stores.embedded.vectors_partition import (
    ExactPartition,
    HnswPartition,
    Matrix,
    Partition,
)
from lockgate.stores.offload import offload
from lockgate.stores.ports import VectorHit, VectorRecord

_SCHEMA = """
CREATE TABLE IF NOT EXISTS vectors (
    key       INTEGER PRIMARY KEY,
    namespace TEXT NOT NULL,
    id        TEXT NOT NULL,
    vector    BLOB NOT NULL,
    payload   TEXT NOT NULL,
    UNIQUE (namespace, id)
);
CREATE TABLE IF NOT EXISTS vector_namespaces (
    namespace TEXT PRIMARY KEY,
    version   INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS vector_meta (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
"""

_UPSERT = """
INSERT INTO vectors (namespace, id, vector, payload) VALUES (?, ?, ?, ?)
ON CONFLICT (namespace, id) DO UPDATE SET vector = excluded.vector, payload = excluded.payload
RETURNING key
"""

_BUMP = """
INSERT INTO vector_namespaces (namespace, version) VALUES (?, 1)
ON CONFLICT (namespace) DO UPDATE SET version = version + 1
"""


@dataclass(frozen=True)
class HnswOptions:
    """When a namespace switches from exact search to HNSW, and the graph's parameters."""

    exact_max: int = 4096
    connectivity: int = 16
    expansion_add: int = 64
    expansion_search: int = 64


@dataclass
class _Space:
    """One namespace in memory: its index, and each key's record id and payload."""

    index: Partition
    records: dict[int, tuple[str, dict[str, Any]]]
    keys: dict[str, int]


class EmbeddedVectorIndex:
    """`VectorIndex` over a SQLite file, for one embedding model (one dimension)."""

    def __init__(self, path: Path, *, dimensions: int, options: HnswOptions | None = None) -> None:
        if dimensions <= 0:
            raise ValueError("dimensions must be positive")
        path.parent.mkdir(parents=True, exist_ok=True)
        self._path = path
        self._snapshots = path.with_name(path.name + ".hnsw")
        self._dim = dimensions
        self._options = options or HnswOptions()
        self._db = connect(path, timeout=5.0)
        self._db.executescript(_SCHEMA)
        self._write_lock = threading.Lock()
        self._memory_lock = threading.Lock()
        self._spaces: dict[str, _Space] = {}
        self._check_dimensions()
        self._load()

    # -- the port --------------------------------------------------------------------------

    async def upsert(self, records: Sequence[VectorRecord]) -> None:
        if not records:
            return
        prepared = [
            (r.namespace, r.id, unit_vector(r.vector, self._dim), json.dumps(r.payload))
            for r in records
        ]
        for namespace, record_id, _, _ in prepared:
            check_name(namespace, "namespace")
            check_name(record_id, "record id")
        await offload(self._upsert, prepared)

    async def search(self, vector: Vectors, *, namespace: str, k: int) -> list[VectorHit]:
        if k <= 0:
            raise ValueError("k must be positive")
        query = unit_vector(vector, self._dim)
        with self._memory_lock:
            space = self._spaces.get(namespace)
            if space is None:
                return []
            keys, scores = space.index.search(query, min(k, len(space.index)))
            found = [
                (space.records.get(int(key)), float(score))
                for key, score in zip(keys, scores, strict=True)
            ]
        return [
            VectorHit(id=record[0], score=min(1.0, max(-1.0, score)), payload=dict(record[1]))
            for record, score in found
            if record is not None
        ]

    async def delete(self, ids: Sequence[str], *, namespace: str) -> None:
        if ids:
            await offload(self._delete, namespace, list(ids))

    async def delete_namespace(self, namespace_prefix: str) -> int:
        check_prefix(namespace_prefix)
        return await offload(self._delete_prefix, namespace_prefix)

    # -- lifecycle -------------------------------------------------------------------------

    def count(self, namespace: str | None = None) -> int:
        with self._memory_lock:
            if namespace is not None:
                space = self._spaces.get(namespace)
                return len(space.index) if space else 0
            return sum(len(space.index) for space in self._spaces.values())

    def save(self) -> None:
        """Writes the HNSW snapshots of big namespaces, so the next start need not rebuild."""
        with self._write_lock:
            versions = dict(self._db.execute("SELECT namespace, version FROM vector_namespaces"))
            self._snapshots.mkdir(exist_ok=True)
            kept = set()
            for namespace, space in list(self._spaces.items()):
                if not isinstance(space.index, HnswPartition):
                    continue
                stem = self._snapshot_stem(namespace)
                kept.add(stem.name)
                temporary = stem.with_suffix(".tmp")
                space.index.save(temporary)
                os.replace(temporary, stem.with_suffix(".usearch"))
                meta = {"namespace": namespace, "version": versions.get(namespace, 0)}
                stem.with_suffix(".json").write_text(json.dumps(meta), encoding="utf-8")
            for stale in self._snapshots.iterdir():
                if stale.stem not in kept:
                    stale.unlink(missing_ok=True)

    async def aclose(self) -> None:
        await offload(self.close)  # inline when the interpreter is already shutting down

    def close(self) -> None:
        self.save()
        with self._write_lock:
            self._db.close()

    # -- writes (worker thread) --------------------------------------------------------------

    def _upsert(self, prepared: list[tuple[str, str, Matrix, str]]) -> None:
        by_namespace: dict[str, list[tuple[int, str, Matrix, dict[str, Any]]]] = {}
        with self._write_lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for namespace, record_id, vector, payload in prepared:
                    (key,) = self._db.execute(
                        _UPSERT, (namespace, record_id, vector.tobytes(), payload)
                    ).fetchone()
                    by_namespace.setdefault(namespace, []).append(
                        (key, record_id, vector, json.loads(payload))
                    )
                for namespace in by_namespace:
                    self._db.execute(_BUMP, (namespace,))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            for namespace, rows in by_namespace.items():
                self._apply_upsert(namespace, rows)

    def _apply_upsert(
        self, namespace: str, rows: list[tuple[int, str, Matrix, dict[str, Any]]]
    ) -> None:
        # Later duplicates in one batch win, as they did in SQLite.
        latest = {key: (record_id, vector, payload) for key, record_id, vector, payload in rows}
        keys = np.fromiter(latest, dtype=np.int64, count=len(latest))
        matrix = np.stack([vector for _, vector, _ in latest.values()])
        with self._memory_lock:
            space = self._spaces.get(namespace)
            if space is None:
                space = self._spaces[namespace] = _Space(ExactPartition(self._dim), {}, {})
            if isinstance(space.index, ExactPartition) and (
                len(space.index) + len(latest) > self._options.exact_max
            ):
                promote = True
            else:
                promote = False
                space.index.upsert(keys, matrix)
            for key, (record_id, _, payload) in latest.items():
                space.records[key] = (record_id, payload)
                space.keys[record_id] = key
        if promote:
            # Built outside the memory lock: searches keep using the exact index meanwhile, and
            # writes wait on the write lock this thread holds.
            old_keys, old_vectors = space.index.vectors()
            graph = self._new_hnsw()
            graph.upsert(old_keys, old_vectors)
            graph.upsert(keys, matrix)
            with self._memory_lock:
                space.index = graph

    def _delete(self, namespace: str, ids: list[str]) -> None:
        with self._write_lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                keys = [
                    row[0]
                    for record_id in ids
                    for row in self._db.execute(
                        "DELETE FROM vectors WHERE namespace = ? AND id = ? RETURNING key",
                        (namespace, record_id),
                    ).fetchall()
                ]
                if keys:
                    self._db.execute(_BUMP, (namespace,))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._forget(namespace, keys)

    def _delete_prefix(self, prefix: str) -> int:
        with self._write_lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                namespaces = [
                    row[0]
                    for row in self._db.execute(
                        "SELECT namespace FROM vector_namespaces WHERE substr(namespace, 1, ?) = ?",
                        (len(prefix), prefix),
                    )
                ]
                removed = 0
                for namespace in namespaces:
                    removed += self._db.execute(
                        "DELETE FROM vectors WHERE namespace = ?", (namespace,)
                    ).rowcount
                    self._db.execute(
                        "DELETE FROM vector_namespaces WHERE namespace = ?", (namespace,)
                    )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            with self._memory_lock:
                for namespace in namespaces:
                    self._spaces.pop(namespace, None)
            return removed

    def _forget(self, namespace: str, keys: Iterable[int]) -> None:
        keys = list(keys)
        with self._memory_lock:
            space = self._spaces.get(namespace)
            if space is None or not keys:
                return
            space.index.remove(keys)
            for key in keys:
                record = space.records.pop(key, None)
                if record is not None:
                    space.keys.pop(record[0], None)
            if not space.records:
                del self._spaces[namespace]

    # -- start -----------------------------------------------------------------------------

    def _check_dimensions(self) -> None:
        row = self._db.execute("SELECT value FROM vector_meta WHERE name = 'dimensions'").fetchone()
        if row is None:
            self._db.execute(
                "INSERT INTO vector_meta (name, value) VALUES ('dimensions', ?)", (str(self._dim),)
            )
        elif int(row[0]) != self._dim:
            raise ValueError(
                f"{self._path} holds {row[0]}-d vectors, not {self._dim}-d: use another file "
                "per embedding model"
            )

    def _load(self) -> None:
        versions = dict(self._db.execute("SELECT namespace, version FROM vector_namespaces"))
        counts = self._db.execute(
            "SELECT namespace, COUNT(*) FROM vectors GROUP BY namespace"
        ).fetchall()
        for namespace, count in counts:
            space = None
            if count > self._options.exact_max:
                space = self._reload_snapshot(namespace, versions.get(namespace, 0), count)
            self._spaces[namespace] = space or self._rebuild(namespace, count)

    def _rebuild(self, namespace: str, count: int) -> _Space:
        rows = self._db.execute(
            "SELECT key, id, vector, payload FROM vectors WHERE namespace = ?", (namespace,)
        )
        keys = np.empty(count, dtype=np.int64)
        matrix = np.empty((count, self._dim), dtype=np.float32)
        records: dict[int, tuple[str, dict[str, Any]]] = {}
        for i, (key, record_id, blob, payload) in enumerate(rows):
            keys[i] = key
            matrix[i] = np.frombuffer(blob, dtype=np.float32)
            records[key] = (record_id, json.loads(payload))
        index: Partition = (
            self._new_hnsw() if count > self._options.exact_max else ExactPartition(self._dim)
        )
        index.upsert(keys, matrix)
        return _Space(index, records, {rid: key for key, (rid, _) in records.items()})

    def _reload_snapshot(self, namespace: str, version: int, count: int) -> _Space | None:
        stem = self._snapshot_stem(namespace)
        try:
            meta = json.loads(stem.with_suffix(".json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if meta.get("namespace") != namespace or meta.get("version") != version:
            return None
        graph = self._new_hnsw()
        try:
            graph.load(stem.with_suffix(".usearch"))
        except (OSError, RuntimeError, ValueError):
            return None
        if len(graph) != count:
            return None
        records = {
            key: (record_id, json.loads(payload))
            for key, record_id, payload in self._db.execute(
                "SELECT key, id, payload FROM vectors WHERE namespace = ?", (namespace,)
            )
        }
        return _Space(graph, records, {rid: key for key, (rid, _) in records.items()})

    def _new_hnsw(self) -> HnswPartition:
        o = self._options
        return HnswPartition(
            self._dim,
            connectivity=o.connectivity,
            expansion_add=o.expansion_add,
            expansion_search=o.expansion_search,
        )

    def _snapshot_stem(self, namespace: str) -> Path:
        return self._snapshots / hashlib.sha256(namespace.encode()).hexdigest()[:32]
