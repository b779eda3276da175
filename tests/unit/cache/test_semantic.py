"""SemanticCache with the real bundled MiniLM over an in-memory exact index (and, once, the
embedded SQLite/usearch index the gateway ships)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from lockgate.cache.semantic import DEFAULT_THRESHOLD, SemanticCache
from lockgate.embeddings.base import Vectors
from lockgate.embeddings.local import MiniLMEmbedder

from tests.unit.cache.support import MemoryIndex, minilm

NS = "acme/support/abc123"


class CountingEmbedder:
    def __init__(self, inner: MiniLMEmbedder) -> None:
        self.inner = inner
        self.calls = 0

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def dimensions(self) -> int:
        return self.inner.dimensions

    async def embed(self, texts: Sequence[str]) -> Vectors:
        self.calls += 1
        return await self.inner.embed(texts)


@pytest.fixture
def cache() -> SemanticCache:
    return SemanticCache(minilm(), MemoryIndex())


async def test_a_paraphrase_hits_with_its_similarity(cache: SemanticCache) -> None:
    await cache.store(NS, "How do I cancel my order?", "e1", {"key": "k1"})
    hit = await cache.lookup(NS, "How can I cancel my order?")
    assert hit is not None
    assert hit.id == "e1" and hit.payload == {"key": "k1"}
    assert DEFAULT_THRESHOLD <= hit.similarity <= 1.0


async def test_an_unrelated_question_misses(cache: SemanticCache) -> None:
    await cache.store(NS, "How do I cancel my order?", "e1", {"key": "k1"})
    assert await cache.lookup(NS, "What payment methods do you accept?") is None


async def test_a_different_order_number_is_refused_at_any_similarity(
    cache: SemanticCache,
) -> None:
    await cache.store(NS, "I want a refund for order 123", "e123", {"key": "k123"})
    assert await cache.lookup(NS, "I want a refund for order 456") is None
    await cache.store(NS, "I want a refund for order 456", "e456", {"key": "k456"})
    hit = await cache.lookup(NS, "i want a refund for order 456 please")
    assert hit is not None and hit.id == "e456"


async def test_negation_is_refused(cache: SemanticCache) -> None:
    await cache.store(NS, "Cancel my order", "e1", {"key": "k1"})
    assert await cache.lookup(NS, "Don't cancel my order") is None


async def test_namespaces_never_mix(cache: SemanticCache) -> None:
    await cache.store(NS, "How do I cancel my order?", "e1", {"key": "k1"})
    assert await cache.lookup("globex/support/abc123", "How do I cancel my order?") is None
    assert await cache.lookup("acme/support/def456", "How do I cancel my order?") is None


async def test_a_stricter_threshold_turns_a_paraphrase_into_a_miss(cache: SemanticCache) -> None:
    await cache.store(NS, "How do I cancel my order?", "e1", {"key": "k1"})
    assert await cache.lookup(NS, "How can I cancel my order?", threshold=0.999) is None
    assert await cache.lookup(NS, "How do I cancel my order?", threshold=0.999) is not None


async def test_store_after_a_miss_reuses_the_vector() -> None:
    embedder = CountingEmbedder(minilm())
    cache = SemanticCache(embedder, MemoryIndex())
    assert await cache.lookup(NS, "Where is my parcel?") is None
    await cache.store(NS, "Where is my parcel?", "e1", {"key": "k1"})
    assert embedder.calls == 1


async def test_purge_by_prefix_and_forget(cache: SemanticCache) -> None:
    await cache.store(NS, "How do I cancel my order?", "e1", {"key": "k1"})
    await cache.store("acme/sales/x", "How do I cancel my order?", "e2", {"key": "k2"})
    await cache.store("globex/support/x", "How do I cancel my order?", "e3", {"key": "k3"})
    assert await cache.purge("acme/") == 2
    assert await cache.lookup("globex/support/x", "How do I cancel my order?") is not None
    await cache.forget("globex/support/x", "e3")
    assert await cache.lookup("globex/support/x", "How do I cancel my order?") is None


async def test_bad_arguments_are_refused(cache: SemanticCache) -> None:
    with pytest.raises(ValueError, match="reserved"):
        await cache.store(NS, "q", "e1", {"_text": "x"})
    with pytest.raises(ValueError, match="threshold"):
        await cache.lookup(NS, "q", threshold=1.5)
    with pytest.raises(ValueError, match="threshold"):
        SemanticCache(minilm(), MemoryIndex(), threshold=0)


async def test_works_over_the_embedded_vector_index(tmp_path: Path) -> None:
    vectors = pytest.importorskip("lockgate.stores.embedded.vectors")
    index = vectors.EmbeddedVectorIndex(tmp_path / "vectors.db", dimensions=384)
    try:
        cache = SemanticCache(minilm(), index)
        await cache.store(NS, "How do I cancel my order?", "e1", {"key": "k1"})
        await cache.store(NS, "Refund for order 123", "e2", {"key": "k2"})
        hit = await cache.lookup(NS, "How can I cancel my order?")
        assert hit is not None and hit.payload == {"key": "k1"}
        assert await cache.lookup(NS, "Refund for order 456") is None
        assert await cache.lookup("globex/support/abc123", "How do I cancel my order?") is None
    finally:
        await index.aclose()
