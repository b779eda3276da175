"""One behaviour for every `VectorIndex` adapter.

Backends: the embedded index with exact search, the embedded index forced onto its HNSW path
(tiny `exact_max`), OpenSearch through the real `opensearch-py` client against the
request-checking stub on 127.0.0.1 (emulated: exact search, documented score formulas), and a
live OpenSearch cluster when `OPENSEARCH_URL` is set.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import pytest_asyncio
from lockgate.stores.embedded.vectors import EmbeddedVectorIndex, HnswOptions
from lockgate.stores.opensearch.client import OpenSearchConfig, connect
from lockgate.stores.opensearch.vectors import OpenSearchVectorIndex
from lockgate.stores.ports import VectorIndex, VectorRecord

from tests.support.opensearch_stub import opensearch_stub

pytestmark = pytest.mark.asyncio(loop_scope="session")

DIM = 16


@dataclass
class Backend:
    """Opens an adapter over the same storage each time (to test what survives a reopen)."""

    name: str
    open: Callable[[], Awaitable[VectorIndex]]
    close: Callable[[VectorIndex], Awaitable[None]]


@pytest.fixture(scope="module")
def stub_url() -> Iterator[str]:
    with opensearch_stub() as (url, _):
        yield url


def _opensearch_backend(config: OpenSearchConfig, name: str) -> Backend:
    index_name = f"lockgate-contract-{uuid.uuid4().hex[:12]}"

    async def open_() -> VectorIndex:
        # "true" refresh makes writes visible to the next search on a real cluster too.
        index = OpenSearchVectorIndex(connect(config), index_name, dimensions=DIM, refresh="true")
        await index.ensure_index()
        return index

    async def close(index: VectorIndex) -> None:
        assert isinstance(index, OpenSearchVectorIndex)
        await index.close()

    return Backend(name, open_, close)


@pytest_asyncio.fixture(
    loop_scope="session",
    params=["embedded-exact", "embedded-hnsw", "opensearch-stub", "opensearch-live"],
)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    name = request.param
    if name.startswith("embedded"):
        options = HnswOptions(exact_max=4) if name == "embedded-hnsw" else HnswOptions()

        async def open_() -> VectorIndex:
            return EmbeddedVectorIndex(tmp_path / "vectors.db", dimensions=DIM, options=options)

        async def close(index: VectorIndex) -> None:
            assert isinstance(index, EmbeddedVectorIndex)
            await index.aclose()

        yield Backend(name, open_, close)
    elif name == "opensearch-stub":
        yield _opensearch_backend(OpenSearchConfig(url=request.getfixturevalue("stub_url")), name)
    else:
        url = os.environ.get("OPENSEARCH_URL")
        if not url:
            pytest.skip("live OpenSearch: set OPENSEARCH_URL (and OPENSEARCH_AUTH etc.) to run")
        yield _opensearch_backend(
            OpenSearchConfig(
                url=url,
                auth=os.environ.get("OPENSEARCH_AUTH", "none"),  # type: ignore[arg-type]
                username=os.environ.get("OPENSEARCH_USERNAME"),
                password=os.environ.get("OPENSEARCH_PASSWORD"),
                region=os.environ.get("AWS_REGION"),
                service=os.environ.get("OPENSEARCH_SERVICE", "es"),  # type: ignore[arg-type]
            ),
            name,
        )


@pytest_asyncio.fixture(loop_scope="session")
async def index(backend: Backend) -> AsyncIterator[VectorIndex]:
    opened = await backend.open()
    yield opened
    await backend.close(opened)


def unit(*values: float) -> np.ndarray[Any, np.dtype[np.float32]]:
    vector = np.zeros(DIM, dtype=np.float32)
    vector[: len(values)] = values
    return (vector / np.linalg.norm(vector)).astype(np.float32)


def record(id_: str, namespace: str, vector: np.ndarray[Any, Any], **payload: Any) -> VectorRecord:
    return VectorRecord(id=id_, namespace=namespace, vector=vector, payload=payload)


async def test_results_come_nearest_first_with_plain_cosine_scores(index: VectorIndex) -> None:
    query = unit(1, 0)
    angles = {"same": 0.0, "near": 0.3, "far": 1.2, "opposite": 3.0}
    await index.upsert(
        [record(name, "t1/cache", unit(np.cos(a), np.sin(a)), n=name) for name, a in angles.items()]
    )

    hits = await index.search(query, namespace="t1/cache", k=4)

    assert [h.id for h in hits] == ["same", "near", "far", "opposite"]
    for hit in hits:
        assert hit.score == pytest.approx(np.cos(angles[hit.id]), abs=1e-5)
        assert hit.payload == {"n": hit.id}
    assert hits[-1].score < 0  # cosine, not a distance-derived score that never goes negative


async def test_scores_are_cosine_even_for_vectors_that_are_not_unit_length(
    index: VectorIndex,
) -> None:
    await index.upsert([record("a", "t1/cache", 5 * unit(1, 1))])

    (hit,) = await index.search(3 * unit(1, 0), namespace="t1/cache", k=1)

    assert hit.score == pytest.approx(np.sqrt(0.5), abs=1e-5)


async def test_k_limits_hits_and_a_small_namespace_returns_what_it_has(index: VectorIndex) -> None:
    await index.upsert([record(f"r{i}", "t1/cache", unit(1, i / 10)) for i in range(6)])

    assert [h.id for h in await index.search(unit(1, 0), namespace="t1/cache", k=2)] == ["r0", "r1"]
    assert len(await index.search(unit(1, 0), namespace="t1/cache", k=50)) == 6
    assert await index.search(unit(1, 0), namespace="nobody", k=3) == []


async def test_a_namespace_never_sees_another_namespaces_records(index: VectorIndex) -> None:
    # Tenant A's record is an exact match for the query; tenant B's are all far from it.
    await index.upsert([record("secret", "tenant-a/cache", unit(1, 0), answer="A's answer")])
    await index.upsert([record(f"b{i}", "tenant-b/cache", unit(-1, i + 1)) for i in range(3)])

    hits = await index.search(unit(1, 0), namespace="tenant-b/cache", k=10)

    assert {h.id for h in hits} == {"b0", "b1", "b2"}
    assert all("answer" not in h.payload for h in hits)


async def test_the_same_id_in_two_namespaces_is_two_records(index: VectorIndex) -> None:
    await index.upsert(
        [
            record("q", "t1/cache", unit(1, 0), who="t1"),
            record("q", "t2/cache", unit(0, 1), who="t2"),
        ]
    )

    (one,) = await index.search(unit(1, 0), namespace="t1/cache", k=5)
    (two,) = await index.search(unit(1, 0), namespace="t2/cache", k=5)

    assert (one.payload, two.payload) == ({"who": "t1"}, {"who": "t2"})
    assert two.score == pytest.approx(0.0, abs=1e-5)


async def test_upserting_an_id_again_replaces_its_vector_and_payload(index: VectorIndex) -> None:
    await index.upsert(
        [record("x", "t1/cache", unit(1, 0), v=1), record("y", "t1/cache", unit(0, 1))]
    )
    await index.upsert([record("x", "t1/cache", unit(0, -1), v=2)])

    hits = await index.search(unit(0, -1), namespace="t1/cache", k=5)

    assert (hits[0].id, hits[0].payload) == ("x", {"v": 2})
    assert len(hits) == 2
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)


async def test_delete_removes_only_the_named_ids_in_that_namespace(index: VectorIndex) -> None:
    await index.upsert([record(i, "t1/cache", unit(1, n)) for n, i in enumerate(["a", "b", "c"])])
    await index.upsert([record("a", "t2/cache", unit(1, 0))])

    await index.delete(["a", "c", "never-stored"], namespace="t1/cache")

    assert [h.id for h in await index.search(unit(1, 0), namespace="t1/cache", k=5)] == ["b"]
    assert [h.id for h in await index.search(unit(1, 0), namespace="t2/cache", k=5)] == ["a"]


async def test_delete_namespace_removes_every_namespace_under_the_prefix(
    index: VectorIndex,
) -> None:
    await index.upsert(
        [
            record("1", "t1/alias-a", unit(1, 0)),
            record("2", "t1/alias-a", unit(1, 1)),
            record("3", "t1/alias-b", unit(1, 0)),
            record("4", "t10/alias-a", unit(1, 0)),
        ]
    )

    removed = await index.delete_namespace("t1/")

    assert removed == 3
    assert await index.search(unit(1, 0), namespace="t1/alias-a", k=5) == []
    assert await index.search(unit(1, 0), namespace="t1/alias-b", k=5) == []
    assert [h.id for h in await index.search(unit(1, 0), namespace="t10/alias-a", k=5)] == ["4"]
    assert await index.delete_namespace("t1/") == 0


async def test_an_empty_prefix_is_refused_rather_than_deleting_everything(
    index: VectorIndex,
) -> None:
    await index.upsert([record("1", "t1/cache", unit(1, 0))])

    with pytest.raises(ValueError, match="empty namespace prefix"):
        await index.delete_namespace("")

    assert len(await index.search(unit(1, 0), namespace="t1/cache", k=5)) == 1


async def test_bad_input_gets_a_clear_error(index: VectorIndex) -> None:
    with pytest.raises(ValueError, match="16-d"):
        await index.upsert([record("a", "t1/cache", np.ones(DIM + 1, dtype=np.float32))])
    with pytest.raises(ValueError, match="non-zero"):
        await index.upsert([record("a", "t1/cache", np.zeros(DIM, dtype=np.float32))])
    with pytest.raises(ValueError, match="namespace"):
        await index.upsert([record("a", "", unit(1, 0))])
    with pytest.raises(ValueError, match="16-d"):
        await index.search(np.ones(3, dtype=np.float32), namespace="t1/cache", k=1)
    with pytest.raises(ValueError, match="k must be positive"):
        await index.search(unit(1, 0), namespace="t1/cache", k=0)


async def test_records_survive_closing_and_reopening(backend: Backend) -> None:
    first = await backend.open()
    await first.upsert([record(f"r{i}", "t1/cache", unit(1, i), i=i) for i in range(10)])
    await first.delete(["r0"], namespace="t1/cache")
    await backend.close(first)

    again = await backend.open()
    try:
        hits = await again.search(unit(1, 1), namespace="t1/cache", k=3)
        await again.upsert([record("late", "t1/cache", unit(1, 1))])
        after_write = await again.search(unit(1, 1), namespace="t1/cache", k=1)
    finally:
        await backend.close(again)

    assert [(h.id, h.payload) for h in hits] == [
        ("r1", {"i": 1}),
        ("r2", {"i": 2}),
        ("r3", {"i": 3}),
    ]
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert after_write[0].id in {"late", "r1"} and after_write[0].score == pytest.approx(
        1.0, abs=1e-5
    )
