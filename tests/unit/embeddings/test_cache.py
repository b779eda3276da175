"""The persistent embedding cache: real SQLite in a temp dir, a deterministic embedder behind
it that records what reached it; plus re-ingesting an edited file through the real
ingestion service, which must embed only the chunks that changed."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from lockgate.embeddings.base import Vectors
from lockgate.embeddings.cache import CachedEmbedder
from lockgate.rag import wiring

from tests.unit.rag.fakes import HashingEmbedder


class Recording(HashingEmbedder):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[list[str]] = []

    async def embed(self, texts: Sequence[str]) -> Vectors:
        self.seen.append(list(texts))
        return await super().embed(texts)


async def test_only_texts_never_seen_reach_the_model(tmp_path: Path) -> None:
    inner = Recording()
    cache = CachedEmbedder(inner, tmp_path / "embeddings.db")
    first = await cache.embed(["alpha beta", "gamma", "alpha beta"])
    second = await cache.embed(["gamma", "delta", "alpha beta"])
    assert inner.seen == [["alpha beta", "gamma"], ["delta"]]
    expected = await HashingEmbedder().embed(["gamma", "delta", "alpha beta"])
    np.testing.assert_array_equal(second, expected)
    np.testing.assert_array_equal(first[0], first[2])
    assert (cache.name, cache.dimensions) == (inner.name, inner.dimensions)
    cache.close()


async def test_vectors_survive_a_restart(tmp_path: Path) -> None:
    await CachedEmbedder(Recording(), tmp_path / "e.db").embed(["kept"])
    inner = Recording()
    again = CachedEmbedder(inner, tmp_path / "e.db")
    await again.embed(["kept"])
    assert inner.seen == []
    again.close()


async def test_reingesting_an_edited_file_embeds_only_the_changed_chunks(tmp_path: Path) -> None:
    inner = Recording()
    rag = wiring.embedded(tmp_path, embedder=inner)
    sections = [
        f"## Part {i}\n\n" + f"Paragraph {i} talks about topic {i}. " * 30 for i in range(6)
    ]
    await rag.ingestion.ingest("acme", "kb", "guide.md", "\n\n".join(sections).encode())
    first = sum(len(call) for call in inner.seen)
    inner.seen.clear()
    sections[3] = "## Part 3\n\nThis part was rewritten entirely."
    await rag.ingestion.ingest("acme", "kb", "guide.md", "\n\n".join(sections).encode())
    embedded_again = [text for call in inner.seen for text in call]
    assert first >= 6
    assert embedded_again and all("rewritten" in text for text in embedded_again)
    hits = await rag.retriever.retrieve("acme", "kb", "rewritten part", 1, min_similarity=-1)
    assert hits and "rewritten" in hits[0].text
    await rag.aclose()
