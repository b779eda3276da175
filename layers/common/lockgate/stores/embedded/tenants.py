"""Tenant records in SQLite, one JSON document per tenant."""

from __future__ import annotations

import threading
from pathlib import Path

from lockgate.stores.embedded.sqlite import connect
from lockgate.tenants.models import TenantRecord

_SCHEMA = "CREATE TABLE IF NOT EXISTS tenants (id TEXT PRIMARY KEY, record TEXT NOT NULL)"


class SqliteTenantStore:
    def __init__(self, path: Path) -> None:
        self._db = connect(path)
        self._db.execute(_SCHEMA)
        self._lock = threading.Lock()

    def put_tenant(self, tenant: TenantRecord) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO tenants (id, record) VALUES (?, ?) "
                "ON CONFLICT (id) DO UPDATE SET record = excluded.record",
                (tenant.id, tenant.model_dump_json()),
            )

    def get_tenant(self, tenant_id: str) -> TenantRecord | None:
        with self._lock:
            row = self._db.execute(
                "SELECT record FROM tenants WHERE id = ?", (tenant_id,)
            ).fetchone()
        return TenantRecord.model_validate_json(row[0]) if row else None

    def list_tenants(self) -> list[TenantRecord]:
        with self._lock:
            rows = self._db.execute("SELECT record FROM tenants ORDER BY id").fetchall()
        return [TenantRecord.model_validate_json(row[0]) for row in rows]

    def close(self) -> None:
        self._db.close()
