"""What the OpenSearch indexes have in common: one index each, documents keyed by
(namespace, id) with `namespace`, `record_id` and `payload` fields, bulk writes and deletes that
fail with the items' reasons, searches kept to one namespace, and deletes by namespace prefix."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any, Literal, Protocol

from opensearchpy import AsyncOpenSearch, NotFoundError

Refresh = Literal["false", "true", "wait_for"]


class Keyed(Protocol):
    """A record as the indexes store it: an id within a namespace, and a payload."""

    @property
    def id(self) -> str: ...

    @property
    def namespace(self) -> str: ...

    @property
    def payload(self) -> dict[str, Any]: ...


def doc_id(namespace: str, record_id: str) -> str:
    """A document id unique per (namespace, id), within OpenSearch's 512-byte id limit."""
    return hashlib.sha256(f"{namespace}\x00{record_id}".encode()).hexdigest()


def raise_for_items(
    response: dict[str, Any],
    allowed_statuses: tuple[int, ...],
    error: type[Exception],
) -> None:
    """Raises `error` naming the bulk items OpenSearch rejected (at most three reasons shown)."""
    if not response.get("errors"):
        return
    reasons = []
    for item in response.get("items", []):
        (result,) = item.values()
        if result.get("status", 200) < 300 or result.get("status") in allowed_statuses:
            continue
        failure = result.get("error") or {}
        reasons.append(f"{failure.get('type', result.get('status'))}: {failure.get('reason', '')}")
    if reasons:
        raise error(f"OpenSearch rejected {len(reasons)} bulk item(s): {reasons[:3]}")


class OpenSearchIndex:
    """One OpenSearch index; subclasses give its body, their own fields and their checks."""

    error: type[Exception] = RuntimeError
    """What a rejected bulk write raises."""

    def __init__(self, client: AsyncOpenSearch, index: str, *, refresh: Refresh) -> None:
        self._client = client
        self._index = index
        self._refresh = refresh

    def index_body(self) -> dict[str, Any]:
        """The index's settings and mapping, as `ensure_index` creates it."""
        raise NotImplementedError

    async def ensure_index(self) -> None:
        await self._create_if_missing()

    async def delete(self, ids: Sequence[str], *, namespace: str) -> None:
        if not ids:
            return
        body = [{"delete": {"_index": self._index, "_id": doc_id(namespace, i)}} for i in ids]
        await self._bulk(body, allowed_statuses=(404,))

    async def close(self) -> None:
        await self._client.close()

    async def _create_if_missing(self) -> bool:
        """Creates the index unless it exists; True when it was created."""
        if await self._client.indices.exists(index=self._index):
            return False
        await self._client.indices.create(index=self._index, body=self.index_body())
        return True

    async def _index_documents(self, documents: Sequence[tuple[Keyed, dict[str, Any]]]) -> None:
        """Writes each record with its own fields first, then its namespace, id and payload."""
        body: list[dict[str, Any]] = []
        for record, fields in documents:
            body.append(
                {"index": {"_index": self._index, "_id": doc_id(record.namespace, record.id)}}
            )
            body.append(
                {
                    **fields,
                    "namespace": record.namespace,
                    "record_id": record.id,
                    "payload": record.payload,
                }
            )
        await self._bulk(body, allowed_statuses=())

    async def _bulk(self, body: list[dict[str, Any]], *, allowed_statuses: tuple[int, ...]) -> None:
        response = await self._client.bulk(body=body, refresh=self._refresh)
        raise_for_items(response, allowed_statuses, self.error)

    async def _search(self, body: dict[str, Any], *, namespace: str) -> list[dict[str, Any]]:
        """The hits of the namespace's documents; none when the index does not exist yet."""
        try:
            response = await self._client.search(index=self._index, body=body)
        except NotFoundError:
            return []
        return [
            hit
            for hit in response.get("hits", {}).get("hits", [])
            if hit.get("_source", {}).get("namespace") == namespace
        ]

    async def _delete_prefix(self, namespace_prefix: str) -> int:
        """Deletes every document whose namespace starts with the (checked) prefix."""
        try:
            response = await self._client.delete_by_query(
                index=self._index,
                body={"query": {"prefix": {"namespace": namespace_prefix}}},
                conflicts="proceed",
                refresh=True,
            )
        except NotFoundError:
            return 0
        return int(response.get("deleted", 0))
