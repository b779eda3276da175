"""Fusion, snippets and the relevance threshold."""

from __future__ import annotations

import pytest
from lockgate.rag.retrieval import RetrievalSettings, Retriever, rrf, snippet

from tests.unit.rag.conftest import Rag


def test_rrf_rewards_agreement_between_rankings() -> None:
    scores = rrf([["a", "b", "c"], ["c", "b", "d"]], k=60)
    top_two = sorted(scores, key=scores.__getitem__, reverse=True)[:2]
    assert set(top_two) == {"b", "c"}
    assert scores["b"] == pytest.approx(2 / 62)
    assert scores["a"] == pytest.approx(1 / 61) and scores["d"] == pytest.approx(1 / 63)


def test_snippet_shows_the_sentence_that_matched() -> None:
    text = "Intro about the company history and values. " * 5 + "Refunds take seven days to arrive."
    assert snippet(text, "how long do refunds take", limit=60).startswith("…Refunds take seven")
    assert snippet("Short.", "x") == "Short."


async def test_nothing_relevant_means_no_chunks(rag: Rag) -> None:
    await rag.service.ingest("acme", "kb", "a.md", b"# Shipping\n\nParcels ship on Mondays.")
    assert await rag.retriever.retrieve("acme", "kb", "quantum chromodynamics lattice", 3) == []
    assert len(await rag.retriever.retrieve("acme", "kb", "when do parcels ship", 3)) == 1
    assert await rag.retriever.retrieve("acme", "empty", "when do parcels ship", 3) == []


async def test_hybrid_finds_what_either_method_alone_finds(rag: Rag) -> None:
    await rag.service.ingest(
        "acme", "kb", "a.md",
        b"# FAQ\n\n## Codes\n\nError XJ-42 means the card was declined.\n\n"
        b"## Delivery\n\nParcels ship on Mondays and arrive within a week.",
    )  # fmt: skip
    hybrid = await rag.retriever.retrieve("acme", "kb", "XJ-42", 1, min_similarity=0)
    assert "XJ-42" in hybrid[0].text
    bm25 = Retriever(rag.text, rag.vectors, rag.embedder, RetrievalSettings(mode="bm25"))
    assert [c.similarity for c in await bm25.retrieve("acme", "kb", "parcels", 1)] == [None]
