"""The OpenSearch text index through the real opensearch-py client.

Against the OpenSearch stub (emulated: no cluster runs here). The stub executes filters but has
no analyser or BM25, so this file teaches it `match` as "shares a lowercase word" (every hit
scores 1.0): these tests check the request shapes a cluster would get and the namespace
handling, not ranking. With OPENSEARCH_URL set, the live test runs the same calls on a cluster.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from lockgate.rag.ports import TextRecord
from lockgate.stores.opensearch.client import OpenSearchConfig, connect
from lockgate.stores.opensearch.text_index import OpenSearchTextIndex

import tests.support.opensearch_stub as stub_module
from tests.support.opensearch_stub import OpenSearchStub, opensearch_stub

pytestmark = pytest.mark.asyncio(loop_scope="session")

_stub_matches = stub_module._matches


def _matches_with_match(query: dict[str, Any], doc: dict[str, Any]) -> bool:
    if isinstance(query, dict) and set(query) == {"match"}:
        ((field, spec),) = query["match"].items()
        text = spec["query"] if isinstance(spec, dict) else spec
        words = set(re.findall(r"\w+", str(text).lower()))
        return bool(words & set(re.findall(r"\w+", str(doc.get(field, "")).lower())))
    if isinstance(query, dict) and set(query) == {"bool"}:
        spec = query["bool"]
        clauses = [c for key in ("must", "filter") for c in _as_list(spec.get(key, []))]
        return all(_matches_with_match(c, doc) for c in clauses)
    return _stub_matches(query, doc)


def _as_list(value: Any) -> list[dict[str, Any]]:
    return value if isinstance(value, list) else [value]


@pytest.fixture(scope="module")
def stub() -> Iterator[tuple[str, OpenSearchStub]]:
    with opensearch_stub() as served:
        yield served


@pytest.fixture
async def index(
    stub: tuple[str, OpenSearchStub], monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[OpenSearchTextIndex, OpenSearchStub]]:
    monkeypatch.setattr(stub_module, "_matches", _matches_with_match)
    url, server = stub
    text = OpenSearchTextIndex(connect(OpenSearchConfig(url)), f"rag-{uuid.uuid4().hex[:8]}")
    await text.ensure_index()
    yield text, server
    await text.close()


def records() -> list[TextRecord]:
    return [
        TextRecord("c1", "rag/acme/kb", "Refunds take five days", {"doc_id": "d1", "chunk": 0}),
        TextRecord("c2", "rag/acme/kb", "Shipping is free", {"doc_id": "d1", "chunk": 1}),
        TextRecord("c1", "rag/globex/kb", "Refunds are instant", {"doc_id": "d9", "chunk": 0}),
    ]


async def test_search_filters_by_namespace_inside_the_query(
    index: tuple[OpenSearchTextIndex, OpenSearchStub],
) -> None:
    text, server = index
    await text.upsert(records())
    hits = await text.search("refunds", namespace="rag/acme/kb", k=5)
    assert [(h.id, h.payload["doc_id"]) for h in hits] == [("c1", "d1")]
    body = server.recorded("/_search")[-1].body
    assert body["query"]["bool"]["filter"] == [{"term": {"namespace": "rag/acme/kb"}}]
    assert body["query"]["bool"]["must"] == [{"match": {"text": {"query": "refunds"}}}]
    assert body["size"] == 5


async def test_mapping_has_an_analysed_text_field_and_unindexed_payload(
    index: tuple[OpenSearchTextIndex, OpenSearchStub],
) -> None:
    text, server = index
    create = next(r for r in server.requests if r.method == "PUT" and r.path == f"/{text._index}")
    properties = create.body["mappings"]["properties"]
    assert properties["text"] == {"type": "text", "analyzer": "english"}
    assert properties["namespace"] == {"type": "keyword"}
    assert properties["payload"]["enabled"] is False


async def test_delete_by_id_and_by_namespace_prefix(
    index: tuple[OpenSearchTextIndex, OpenSearchStub],
) -> None:
    text, _ = index
    await text.upsert(records())
    await text.delete(["c1", "missing"], namespace="rag/acme/kb")
    assert await text.search("refunds", namespace="rag/acme/kb", k=5) == []
    assert [h.id for h in await text.search("refunds", namespace="rag/globex/kb", k=5)] == ["c1"]
    assert await text.delete_namespace("rag/globex/") == 1
    assert await text.search("refunds", namespace="rag/globex/kb", k=5) == []


@pytest.mark.skipif(not os.environ.get("OPENSEARCH_URL"), reason="needs a live OpenSearch")
async def test_live_cluster_ranks_by_bm25() -> None:
    url = os.environ["OPENSEARCH_URL"]
    text = OpenSearchTextIndex(
        connect(OpenSearchConfig(url)), f"lockgate-test-{uuid.uuid4().hex[:8]}", refresh="true"
    )
    try:
        await text.ensure_index()
        await text.upsert(records())
        hits = await text.search("refunds five days", namespace="rag/acme/kb", k=5)
        assert [h.id for h in hits] == ["c1"]
    finally:
        await text._client.indices.delete(index=text._index)
        await text.close()
