"""RAG documents, their indexing status and collection versions in DynamoDB.

Key design (see `infra/components/documents.py`): partition `pk` = tenant, sort `sk` =
`<collection>#doc#<doc_id>` for a document and `<collection>#version` for the collection's
version. A tenant's documents and collections are one Query each, never a Scan; names are
checked to hold no `#` before they get here (`lockgate.rag.model.check_name`). A document being
indexed or deleted also has a marker in the partition `#unfinished` (sk =
`<tenant>#<collection>#<doc_id>`), so what a crash left half done is one Query too.

boto3 is synchronous: every call runs in the store pool (`stores.offload`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import fields
from typing import Any

from lockgate.rag.model import DocumentRecord
from lockgate.stores.offload import offload

_FIELDS = [f.name for f in fields(DocumentRecord)]
_NUMBERS = {"chunk_count", "pending_count", "attempts", "size_bytes"}
_FLOATS = {"updated_at"}


def _doc_sk(collection: str, doc_id: str) -> str:
    return f"{collection}#doc#{doc_id}"


def _version_sk(collection: str) -> str:
    return f"{collection}#version"


UNFINISHED = "#unfinished"
_UNFINISHED_STATES = ("indexing", "deleting")


def _marker(tenant: str, collection: str, doc_id: str) -> dict[str, dict[str, str]]:
    return {"pk": {"S": UNFINISHED}, "sk": {"S": f"{tenant}#{collection}#{doc_id}"}}


class DynamoDocumentStore:
    def __init__(self, table_name: str, *, dynamodb: Any | None = None) -> None:
        if dynamodb is None:
            import boto3

            dynamodb = boto3.client("dynamodb")
        self._ddb = dynamodb
        self._table = table_name

    async def get(self, tenant: str, collection: str, doc_id: str) -> DocumentRecord | None:
        response = await offload(
            self._ddb.get_item,
            TableName=self._table,
            Key={"pk": {"S": tenant}, "sk": {"S": _doc_sk(collection, doc_id)}},
            ConsistentRead=True,
        )
        item = response.get("Item")
        return _record(item) if item else None

    async def put(self, record: DocumentRecord) -> None:
        item: dict[str, dict[str, Any]] = {
            "pk": {"S": record.tenant},
            "sk": {"S": _doc_sk(record.collection, record.doc_id)},
        }
        for name in _FIELDS:
            value = getattr(record, name)
            if value is None:
                continue
            item[name] = {"N": repr(value)} if name in _NUMBERS | _FLOATS else {"S": str(value)}
        await offload(self._ddb.put_item, TableName=self._table, Item=item)
        marker = _marker(record.tenant, record.collection, record.doc_id)
        if record.status in _UNFINISHED_STATES:
            await offload(self._ddb.put_item, TableName=self._table, Item=marker)
        else:
            await offload(self._ddb.delete_item, TableName=self._table, Key=marker)

    async def remove(self, tenant: str, collection: str, doc_id: str) -> None:
        await offload(
            self._ddb.delete_item,
            TableName=self._table,
            Key={"pk": {"S": tenant}, "sk": {"S": _doc_sk(collection, doc_id)}},
        )
        await offload(
            self._ddb.delete_item,
            TableName=self._table,
            Key=_marker(tenant, collection, doc_id),
        )

    async def list_unfinished(self) -> list[DocumentRecord]:
        markers = await offload(self._query, UNFINISHED, "")
        records = []
        for marker in markers:
            tenant, collection, doc_id = marker["sk"]["S"].split("#", 2)
            record = await self.get(tenant, collection, doc_id)
            if record is not None and record.status in _UNFINISHED_STATES:
                records.append(record)
        return records

    async def list_documents(self, tenant: str, collection: str) -> list[DocumentRecord]:
        items = await offload(self._query, tenant, f"{collection}#doc#")
        return [_record(item) for item in items]

    async def list_collections(self, tenant: str) -> list[str]:
        items = await offload(self._query, tenant, "", "sk")
        return sorted({item["sk"]["S"].split("#", 1)[0] for item in items})

    async def get_version(self, tenant: str, collection: str) -> str | None:
        response = await offload(
            self._ddb.get_item,
            TableName=self._table,
            Key={"pk": {"S": tenant}, "sk": {"S": _version_sk(collection)}},
            ConsistentRead=True,
        )
        item = response.get("Item")
        return str(item["version"]["S"]) if item else None

    async def set_version(self, tenant: str, collection: str, version: str | None) -> None:
        key = {"pk": {"S": tenant}, "sk": {"S": _version_sk(collection)}}
        if version is None:
            await offload(self._ddb.delete_item, TableName=self._table, Key=key)
        else:
            await offload(
                self._ddb.put_item,
                TableName=self._table,
                Item={**key, "version": {"S": version}},
            )

    def _query(self, tenant: str, prefix: str, projection: str | None = None) -> list[Any]:
        return list(self._pages(tenant, prefix, projection))

    def _pages(self, tenant: str, prefix: str, projection: str | None) -> Iterator[Any]:
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "ConsistentRead": True,
            "KeyConditionExpression": "pk = :pk"
            + (" AND begins_with(sk, :prefix)" if prefix else ""),
            "ExpressionAttributeValues": {":pk": {"S": tenant}}
            | ({":prefix": {"S": prefix}} if prefix else {}),
        }
        if projection:
            kwargs["ProjectionExpression"] = projection
        while True:
            response = self._ddb.query(**kwargs)
            yield from response.get("Items", [])
            last = response.get("LastEvaluatedKey")
            if not last:
                return
            kwargs["ExclusiveStartKey"] = last


def _record(item: dict[str, dict[str, Any]]) -> DocumentRecord:
    values: dict[str, Any] = {}
    for name in _FIELDS:
        attribute = item.get(name)
        if attribute is None:
            continue
        if "N" in attribute:
            values[name] = float(attribute["N"]) if name in _FLOATS else int(attribute["N"])
        else:
            values[name] = attribute["S"]
    return DocumentRecord(**values)
