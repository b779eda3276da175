"""What the OpenSearch indexes have in common: one index each, documents keyed by
(namespace, id) with `namespace`, `record_id` and `payload` fields, bulk writes and deletes that
fail with the items' reasons, searches kept to one namespace, and deletes by namespace prefix.

Every request names the index in its path (`<index>/_bulk`, not `/_bulk`), so an IAM policy
scoped to the index's paths allows all of them. Creating the index is idempotent across
processes: two cold starts that both find it missing both create it, and the loser's
`resource_already_exists_exception` counts as success.

On OpenSearch Serverless (`Flavor.serverless`) documents get the collection's own ids, and there
is no `_delete_by_query` and no `refresh`: a record is replaced by finding its (namespace, id),
deleting what was found by id in bulk, and writing it again."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any, Literal, Protocol

from opensearchpy import AsyncOpenSearch, NotFoundError, RequestError

from lockgate.stores.opensearch.client import flavor_of

Refresh = Literal["false", "true", "wait_for"]
PAGE = 1000
"""Documents per search page and per bulk delete when deleting what a query finds."""


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


def error_type(exc: RequestError) -> str | None:
    """The OpenSearch error type (`resource_already_exists_exception`, ...). The async
    connection hands the body over unparsed, so it is read here."""
    info: Any = exc.info
    if not isinstance(info, dict):
        try:
            info = json.loads(str(exc.error))
        except ValueError:
            return str(exc.error)
    error = info.get("error") if isinstance(info, dict) else None
    return str(error.get("type")) if isinstance(error, dict) else str(error)


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
        self._flavor = flavor_of(client)

    def index_body(self) -> dict[str, Any]:
        """The index's settings and mapping, as `ensure_index` creates it."""
        raise NotImplementedError

    async def ensure_index(self) -> None:
        await self._create_if_missing()

    def index_settings(self, **specific: object) -> dict[str, object]:
        """The `settings.index` of the index body: the subclass's own, plus replicas on a
        managed domain; Serverless chooses shards and replicas itself."""
        if self._flavor.serverless:
            specific.pop("number_of_shards", None)
        return {**specific, **self._flavor.replica_settings()}

    async def delete(self, ids: Sequence[str], *, namespace: str) -> None:
        if not ids:
            return
        if self._flavor.serverless:
            await self._delete_records(namespace, ids)
            return
        body = [{"delete": {"_id": doc_id(namespace, i)}} for i in ids]
        await self._bulk(body, allowed_statuses=(404,))

    async def close(self) -> None:
        await self._client.close()

    async def _create_if_missing(self) -> bool:
        """Creates the index unless it exists; True when it was created."""
        if await self._client.indices.exists(index=self._index):
            return False
        try:
            await self._client.indices.create(index=self._index, body=self.index_body())
        except RequestError as exc:
            if error_type(exc) != "resource_already_exists_exception":
                raise
            return False  # another process created it between our check and our create
        return True

    async def _index_documents(self, documents: Sequence[tuple[Keyed, dict[str, Any]]]) -> None:
        """Writes each record with its own fields first, then its namespace, id and payload."""
        body: list[dict[str, Any]] = []
        if self._flavor.serverless:
            by_namespace: dict[str, list[str]] = {}
            for record, _ in documents:
                by_namespace.setdefault(record.namespace, []).append(record.id)
            for namespace, ids in by_namespace.items():
                await self._delete_records(namespace, ids)
        for record, fields in documents:
            if self._flavor.serverless:
                body.append({"index": {}})
            else:
                body.append({"index": {"_id": doc_id(record.namespace, record.id)}})
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
        response = await self._client.bulk(body=body, index=self._index, **self._refreshing())
        raise_for_items(response, allowed_statuses, self.error)

    def _refreshing(self, refresh: str | None = None) -> dict[str, str]:
        """The `refresh` parameter, where the cluster takes one."""
        return {} if self._flavor.serverless else {"refresh": refresh or self._refresh}

    async def _delete_records(self, namespace: str, ids: Sequence[str]) -> int:
        """Deletes the namespace's records by their `record_id` field (on Serverless the
        documents carry ids of the collection's choosing)."""
        query = {
            "bool": {
                "filter": [
                    {"term": {"namespace": namespace}},
                    {"terms": {"record_id": list(ids)}},
                ]
            }
        }
        return await self._delete_query(query)

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
        return await self._delete_query({"prefix": {"namespace": namespace_prefix}})

    async def _delete_query(self, query: dict[str, Any]) -> int:
        if self._flavor.serverless:
            return await self._delete_found(query)
        try:
            response = await self._client.delete_by_query(
                index=self._index,
                body={"query": query},
                conflicts="proceed",
                **self._refreshing("true"),
            )
        except NotFoundError:
            return 0
        return int(response.get("deleted", 0))

    async def _delete_found(self, query: dict[str, Any]) -> int:
        """Deletes what `query` finds, by id: pages through the matches (sorted on the unique
        (namespace, record_id) pair, so `search_after` skips none), then bulk deletes."""
        found: list[str] = []
        body: dict[str, Any] = {
            "size": PAGE,
            "_source": False,
            "query": query,
            "sort": [{"namespace": "asc"}, {"record_id": "asc"}],
        }
        while True:
            try:
                response = await self._client.search(index=self._index, body=body)
            except NotFoundError:
                return 0
            hits = response.get("hits", {}).get("hits", [])
            found += [str(hit["_id"]) for hit in hits]
            if len(hits) < PAGE:
                break
            body["search_after"] = hits[-1]["sort"]
        for start in range(0, len(found), PAGE):
            chunk = found[start : start + PAGE]
            await self._bulk([{"delete": {"_id": i}} for i in chunk], allowed_statuses=(404,))
        return len(found)
