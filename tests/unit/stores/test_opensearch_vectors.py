"""What the OpenSearch adapter sends (as recorded by the request-checking stub on 127.0.0.1),
how it is authenticated, and that the stub rejects what a real cluster would."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
from lockgate.stores.opensearch.client import OpenSearchConfig, connect
from lockgate.stores.opensearch.vectors import (
    OpenSearchVectorIndex,
    _cosine_from_innerproduct_score,
)
from lockgate.stores.ports import VectorRecord
from opensearchpy import AWSV4SignerAsyncAuth, RequestError

from tests.support.opensearch_stub import OpenSearchStub, opensearch_stub

ASYNC = pytest.mark.asyncio(loop_scope="session")

DIM = 8


@pytest.fixture
def stub() -> Iterator[tuple[str, OpenSearchStub]]:
    with opensearch_stub() as running:
        yield running


def unit(seed: int) -> np.ndarray[Any, np.dtype[np.float32]]:
    x = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    return (x / np.linalg.norm(x)).astype(np.float32)


@ASYNC
async def test_requests_have_the_shapes_opensearch_expects(
    stub: tuple[str, OpenSearchStub],
) -> None:
    url, server = stub
    index = OpenSearchVectorIndex(connect(OpenSearchConfig(url=url)), "sem", dimensions=DIM)
    await index.ensure_index()
    await index.upsert([VectorRecord("a", "t1/x", unit(1), {"p": 1})])
    await index.search(unit(1), namespace="t1/x", k=3)
    await index.delete_namespace("t1/")
    await index.close()

    (create,) = [r for r in server.requests if r.method == "PUT" and r.path == "/sem"]
    field = create.body["mappings"]["properties"]["vector"]
    assert create.body["settings"]["index"]["knn"] is True
    assert field["method"] == {
        "name": "hnsw",
        "engine": "faiss",
        "space_type": "innerproduct",
        "parameters": {"m": 16, "ef_construction": 128},
    }
    assert create.body["mappings"]["properties"]["namespace"] == {"type": "keyword"}
    (bulk,) = server.recorded("/_bulk")
    action, source = (json.loads(line) for line in bulk.body.strip().split("\n"))
    assert bulk.path == "/sem/_bulk"  # index-scoped, so IAM can grant the index's paths only
    assert set(action) == {"index"} and "_index" not in action["index"]
    assert source["namespace"] == "t1/x" and len(source["vector"]) == DIM
    (search,) = server.recorded("/_search")
    knn = search.body["query"]["knn"]["vector"]
    assert knn["filter"] == {"term": {"namespace": "t1/x"}}  # inside the k-NN search
    assert knn["k"] == 3 and search.body["size"] == 3
    (purge,) = server.recorded("/_delete_by_query")
    assert purge.body == {"query": {"prefix": {"namespace": "t1/"}}}


@ASYNC
async def test_an_existing_index_of_another_dimension_is_refused(
    stub: tuple[str, OpenSearchStub],
) -> None:
    url, _ = stub
    await OpenSearchVectorIndex(
        connect(OpenSearchConfig(url=url)), "sem", dimensions=DIM
    ).ensure_index()
    other = OpenSearchVectorIndex(connect(OpenSearchConfig(url=url)), "sem", dimensions=384)

    with pytest.raises(ValueError, match="8-d 'vector' vectors, not 384-d"):
        await other.ensure_index()
    await other.close()


@ASYNC
async def test_innerproduct_works_before_faiss_had_cosinesimil() -> None:
    with opensearch_stub(version="2.11.0") as (url, _):
        old = OpenSearchVectorIndex(connect(OpenSearchConfig(url=url)), "a", dimensions=DIM)
        await old.ensure_index()
        await old.close()
        cosine = OpenSearchVectorIndex(
            connect(OpenSearchConfig(url=url)), "b", dimensions=DIM, space_type="cosinesimil"
        )
        with pytest.raises(RequestError, match="does not support space type"):
            await cosine.ensure_index()
        await cosine.close()


@pytest.mark.parametrize("cosine", [1.0, 0.73, 0.0, -0.4, -1.0])
def test_the_innerproduct_score_formula_inverts_to_the_cosine(cosine: float) -> None:
    score = 1 + cosine if cosine >= 0 else 1 / (1 - cosine)
    assert _cosine_from_innerproduct_score(score) == pytest.approx(cosine)


def test_sigv4_signs_for_the_configured_service(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret-example")
    client = connect(
        OpenSearchConfig(
            url="https://search.example:443", auth="sigv4", region="eu-west-1", service="aoss"
        )
    )
    auth = client.transport.kwargs["http_auth"]
    assert isinstance(auth, AWSV4SignerAsyncAuth)
    headers = auth("POST", "https://search.example/sem/_search", b"{}", {})
    assert "/eu-west-1/aoss/aws4_request" in headers["Authorization"]
    assert "secret-example" not in json.dumps(dict(headers))


def test_bad_connection_settings_fail_clearly_and_never_show_the_password() -> None:
    with pytest.raises(ValueError, match="username and a password"):
        connect(OpenSearchConfig(url="https://h", auth="basic", username="u"))
    with pytest.raises(ValueError, match="https://host"):
        connect(OpenSearchConfig(url="search.example:9200"))
    assert "hunter2" not in repr(
        OpenSearchConfig(url="https://h", auth="basic", password="hunter2")
    )


def test_the_stub_rejects_malformed_requests_like_opensearch(
    stub: tuple[str, OpenSearchStub],
) -> None:
    url, _ = stub
    mapping = {
        "type": "knn_vector",
        "dimension": DIM,
        "method": {"name": "hnsw", "engine": "faiss"},
    }
    no_knn = httpx.put(f"{url}/x", json={"mappings": {"properties": {"v": mapping}}})
    assert no_knn.status_code == 400 and "index.knn" in no_knn.json()["error"]["reason"]
    body = {"settings": {"index": {"knn": True}}, "mappings": {"properties": {"v": mapping}}}
    assert httpx.put(f"{url}/x", json=body).status_code == 200

    unterminated = httpx.post(
        f"{url}/_bulk",
        content='{"index": {"_index": "x", "_id": "1"}}\n{"v": [1,2,3,4,5,6,7,8]}',
        headers={"content-type": "application/x-ndjson"},
    )
    assert unterminated.status_code == 400
    assert "terminated by a newline" in unterminated.json()["error"]["reason"]
    wrong_dim = httpx.post(
        f"{url}/x/_search", json={"query": {"knn": {"v": {"vector": [1.0, 2.0], "k": 1}}}}
    )
    assert wrong_dim.status_code == 400 and "dimension" in wrong_dim.json()["error"]["reason"]
    bad_filter = httpx.post(
        f"{url}/x/_search",
        json={"query": {"knn": {"v": {"vector": [1.0] * DIM, "k": 1, "filter": {"nope": {}}}}}},
    )
    assert (
        bad_filter.status_code == 400 and bad_filter.json()["error"]["type"] == "parsing_exception"
    )
