"""OpenSearch index lifecycle against the request-checking stub on 127.0.0.1, through the real
`opensearch-py` client: creation racing between cold starts, replica settings for one-node
domains, and OpenSearch Serverless (emulated by the stub as AWS documents it: no `refresh`, no
caller-chosen `_id`, no shard or replica settings; that Serverless behaves so is known only from
AWS's documentation)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from lockgate.rag.ports import TextRecord
from lockgate.stores.opensearch import indexing
from lockgate.stores.opensearch.client import OpenSearchConfig, connect
from lockgate.stores.opensearch.text_index import OpenSearchTextIndex
from lockgate.stores.opensearch.vectors import OpenSearchVectorIndex
from lockgate.stores.ports import VectorRecord

from tests.support.opensearch_stub import OpenSearchStub, opensearch_stub

ASYNC = pytest.mark.asyncio(loop_scope="session")
DIM = 8


@pytest.fixture
def stub() -> Iterator[tuple[str, OpenSearchStub]]:
    with opensearch_stub() as running:
        yield running


@pytest.fixture
def serverless() -> Iterator[tuple[str, OpenSearchStub]]:
    with opensearch_stub(serverless=True) as running:
        yield running


def unit(seed: int) -> np.ndarray[Any, np.dtype[np.float32]]:
    x = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    return (x / np.linalg.norm(x)).astype(np.float32)


@ASYNC
async def test_concurrent_cold_starts_all_succeed(stub: tuple[str, OpenSearchStub]) -> None:
    url, server = stub
    starts = [
        OpenSearchVectorIndex(connect(OpenSearchConfig(url=url)), "sem", dimensions=DIM)
        for _ in range(4)
    ]
    texts = [OpenSearchTextIndex(connect(OpenSearchConfig(url=url)), "text") for _ in range(4)]
    await asyncio.gather(*(i.ensure_index() for i in [*starts, *texts]))
    creates = [r for r in server.requests if r.method == "PUT"]
    assert len(creates) > 2  # the race happened: several found the index missing
    assert set(server.indices) == {"sem", "text"}
    for index in [*starts, *texts]:
        await index.close()


@ASYNC
@pytest.mark.parametrize(
    ("replicas", "expected"),
    [
        ("0-1", {"auto_expand_replicas": "0-1"}),
        ("0", {"number_of_replicas": 0}),
        ("2", {"number_of_replicas": 2}),
    ],
)
async def test_replicas_follow_the_setting(
    stub: tuple[str, OpenSearchStub], replicas: str, expected: dict[str, object]
) -> None:
    url, server = stub
    client = connect(OpenSearchConfig(url=url, replicas=replicas))
    await OpenSearchVectorIndex(client, "sem", dimensions=DIM).ensure_index()
    await OpenSearchTextIndex(client, "text").ensure_index()
    await client.close()
    for name in ("sem", "text"):
        settings = server.indices[name].settings["index"]
        assert {k: settings[k] for k in expected} == expected


def test_a_malformed_replica_setting_fails_at_connect() -> None:
    with pytest.raises(ValueError, match="replicas"):
        connect(OpenSearchConfig(url="http://127.0.0.1:9", replicas="some"))


@ASYNC
async def test_serverless_gets_no_refresh_no_own_ids_and_no_replica_settings(
    serverless: tuple[str, OpenSearchStub],
) -> None:
    url, server = serverless
    client = connect(OpenSearchConfig(url=url, service="aoss"))
    vectors = OpenSearchVectorIndex(client, "sem", dimensions=DIM, refresh="true")
    texts = OpenSearchTextIndex(client, "text", refresh="wait_for")
    await vectors.ensure_index()
    await texts.ensure_index()

    await vectors.upsert([VectorRecord("a", "t1/x", unit(1), {"v": 1})])
    await vectors.upsert([VectorRecord("a", "t1/x", unit(2), {"v": 2})])  # replaces, no dupe
    await vectors.upsert([VectorRecord("b", "t1/x", unit(3), {"v": 3})])
    hits = await vectors.search(unit(2), namespace="t1/x", k=5)
    assert [(h.id, h.payload) for h in hits] == [("a", {"v": 2}), ("b", {"v": 3})]
    await vectors.delete(["a"], namespace="t1/x")
    assert [h.id for h in await vectors.search(unit(2), namespace="t1/x", k=5)] == ["b"]

    await texts.upsert([TextRecord("c1", "t1/docs", "refunds take five days", {})])
    await texts.upsert([TextRecord("c1", "t1/docs", "refunds take three days", {})])
    assert len(server.indices["text"].docs) == 1
    assert await texts.delete_namespace("t1/") == 1
    await client.close()

    assert all("refresh" not in r.params for r in server.requests)
    for bulk in server.recorded("/_bulk"):
        actions = [json.loads(line) for line in bulk.body.strip().split("\n")]
        assert all("_id" not in meta for a in actions for op, meta in a.items() if op == "index")


@ASYNC
async def test_the_stub_refuses_what_serverless_refuses(
    serverless: tuple[str, OpenSearchStub],
) -> None:
    """The emulation itself: a managed-domain client's writes fail against it."""
    url, _ = serverless
    client = connect(OpenSearchConfig(url=url))  # es flavour, talking to Serverless
    index = OpenSearchVectorIndex(client, "sem", dimensions=DIM)
    with pytest.raises(Exception, match="managed"):
        await index.ensure_index()
    await client.close()


@ASYNC
async def test_serverless_deletes_what_a_query_finds_page_by_page(
    serverless: tuple[str, OpenSearchStub], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Serverless has no `_delete_by_query`: matches are found in pages and deleted by id."""
    monkeypatch.setattr(indexing, "PAGE", 3)
    url, server = serverless
    client = connect(OpenSearchConfig(url=url, service="aoss"))
    vectors = OpenSearchVectorIndex(client, "sem", dimensions=DIM)
    await vectors.ensure_index()
    for namespace, count in (("t1/a", 7), ("t1/b", 2), ("t2/x", 2)):
        await vectors.upsert([VectorRecord(f"r{i}", namespace, unit(i), {}) for i in range(count)])
    assert await vectors.delete_namespace("t1/") == 9
    await client.close()
    left = {doc["namespace"] for doc in server.indices["sem"].docs.values()}
    assert left == {"t2/x"} and len(server.indices["sem"].docs) == 2
    assert not server.recorded("/_delete_by_query")
