"""Tenant and key records in one DynamoDB table (see `infra/components/tenants.py`).

Items, all under partition key `pk` and sort key `sk`:

- `tenant#<id>` / `#tenant`: the tenant record (JSON in `record`);
- `tenant#<id>` / `key#<key_id>`: a key record, so a tenant's keys are one Query;
- `keyhash#<sha256>` / `#ref` and `keyid#<key_id>` / `#ref`: pointers to the key record, so
  authentication and revocation are two GetItems without a scan or an index.

A key is written with its pointers in one transaction, conditional on none of them existing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from lockgate.tenants.keys import Tenant, generate_key_id, same_hash
from lockgate.tenants.models import ApiKeyRecord, TenantRecord

TENANT_SK = "#tenant"
REF_SK = "#ref"


class DynamoTenantStore:
    """`TenantStore`, `ApiKeyStore` and the authentication `KeyStore` over DynamoDB."""

    def __init__(
        self,
        table_name: str,
        *,
        dynamodb: Any | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if dynamodb is None:
            import boto3

            dynamodb = boto3.client("dynamodb")
        self._db = dynamodb
        self._table = table_name
        self._clock = clock

    # TenantStore

    def put_tenant(self, tenant: TenantRecord) -> None:
        self._db.put_item(
            TableName=self._table,
            Item={
                "pk": {"S": f"tenant#{tenant.id}"},
                "sk": {"S": TENANT_SK},
                "record": {"S": tenant.model_dump_json()},
            },
        )

    def get_tenant(self, tenant_id: str) -> TenantRecord | None:
        item = self._get(f"tenant#{tenant_id}", TENANT_SK)
        return TenantRecord.model_validate_json(item["record"]["S"]) if item else None

    def list_tenants(self) -> list[TenantRecord]:
        records = []
        for page in self._db.get_paginator("scan").paginate(
            TableName=self._table,
            FilterExpression="sk = :t",
            ExpressionAttributeValues={":t": {"S": TENANT_SK}},
            ConsistentRead=True,
        ):
            records += [TenantRecord.model_validate_json(i["record"]["S"]) for i in page["Items"]]
        return sorted(records, key=lambda r: r.id)

    # ApiKeyStore

    def put_key(self, record: ApiKeyRecord) -> None:
        body = {"S": record.model_dump_json()}
        absent = "attribute_not_exists(pk)"
        ref = {"tenant_id": {"S": record.tenant_id}, "key_id": {"S": record.key_id}}
        try:
            self._db.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": {
                                "pk": {"S": f"tenant#{record.tenant_id}"},
                                "sk": {"S": f"key#{record.key_id}"},
                                "record": body,
                            },
                            "ConditionExpression": absent,
                        }
                    },
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": {
                                "pk": {"S": f"keyhash#{record.key_hash}"},
                                "sk": {"S": REF_SK},
                                **ref,
                            },
                            "ConditionExpression": absent,
                        }
                    },
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": {
                                "pk": {"S": f"keyid#{record.key_id}"},
                                "sk": {"S": REF_SK},
                                **ref,
                            },
                            "ConditionExpression": absent,
                        }
                    },
                ]
            )
        except self._db.exceptions.TransactionCanceledException:
            raise ValueError(f"key {record.key_id} already exists") from None

    def key_by_hash(self, key_hash: str) -> ApiKeyRecord | None:
        ref = self._get(f"keyhash#{key_hash}", REF_SK)
        return self._key(ref["tenant_id"]["S"], ref["key_id"]["S"]) if ref else None

    def get_key(self, key_id: str) -> ApiKeyRecord | None:
        ref = self._get(f"keyid#{key_id}", REF_SK)
        return self._key(ref["tenant_id"]["S"], key_id) if ref else None

    def list_keys(self, tenant_id: str) -> list[ApiKeyRecord]:
        records = []
        for page in self._db.get_paginator("query").paginate(
            TableName=self._table,
            KeyConditionExpression="pk = :p AND begins_with(sk, :k)",
            ExpressionAttributeValues={":p": {"S": f"tenant#{tenant_id}"}, ":k": {"S": "key#"}},
            ConsistentRead=True,
        ):
            records += [ApiKeyRecord.model_validate_json(i["record"]["S"]) for i in page["Items"]]
        return sorted(records, key=lambda r: (r.created_at, r.key_id))

    def revoke_key(self, key_id: str, at: float) -> bool:
        record = self.get_key(key_id)
        if record is None:
            return False
        if record.revoked_at is not None and record.revoked_at <= at:
            return True
        self._put_record(record.model_copy(update={"revoked_at": at}))
        return True

    def _put_record(self, record: ApiKeyRecord) -> None:
        """Replaces a key's record (its pointers do not change)."""
        self._db.put_item(
            TableName=self._table,
            Item={
                "pk": {"S": f"tenant#{record.tenant_id}"},
                "sk": {"S": f"key#{record.key_id}"},
                "record": {"S": record.model_dump_json()},
            },
        )

    # KeyStore

    def tenant_for(self, key_hash: str) -> Tenant | None:
        record = self.key_by_hash(key_hash)
        if record is None or not same_hash(record.key_hash, key_hash):
            return None
        if not record.active(self._clock()):
            return None
        return Tenant(record.tenant_id, record.key_id)

    def add(self, key_hash: str, tenant: Tenant, *, name: str = "") -> None:
        existing = self.key_by_hash(key_hash)
        if existing is not None:
            if name and not existing.name and existing.tenant_id == tenant.id:
                self._put_record(existing.model_copy(update={"name": name}))
            return
        try:
            self.put_key(
                ApiKeyRecord(
                    key_id=generate_key_id(),
                    tenant_id=tenant.id,
                    key_hash=key_hash,
                    name=name,
                    created_at=self._clock(),
                )
            )
        except ValueError:
            # Two cold starts adding the same install key: the other one's write won.
            if self.key_by_hash(key_hash) is None:
                raise

    def count(self) -> int:
        """Keys that still work. A scan: for the first-start check, not the request path."""
        now = self._clock()
        total = 0
        for page in self._db.get_paginator("scan").paginate(
            TableName=self._table,
            FilterExpression="begins_with(sk, :k)",
            ExpressionAttributeValues={":k": {"S": "key#"}},
        ):
            for item in page["Items"]:
                total += ApiKeyRecord.model_validate_json(item["record"]["S"]).active(now)
        return total

    def _key(self, tenant_id: str, key_id: str) -> ApiKeyRecord | None:
        item = self._get(f"tenant#{tenant_id}", f"key#{key_id}")
        return ApiKeyRecord.model_validate_json(item["record"]["S"]) if item else None

    def _get(self, pk: str, sk: str) -> dict[str, Any] | None:
        response = self._db.get_item(
            TableName=self._table,
            Key={"pk": {"S": pk}, "sk": {"S": sk}},
            ConsistentRead=True,
        )
        item: dict[str, Any] | None = response.get("Item")
        return item
