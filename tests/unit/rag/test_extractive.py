"""Extractive answers and the check that decides when a generated answer needs one."""

from __future__ import annotations

from lockgate.rag.extractive import best_sentence, extractive_answer, is_weak, split_sentences
from lockgate.rag.model import RetrievedChunk

FAQ = (
    "## How can I track my order?\n\nYou can track your order from the Orders page.\n\n"
    "## What is your return policy?\n\nOur return policy allows you to return products within "
    "30 days of purchase for a full refund. Items must be in their original packaging."
)


def chunk(text: str) -> RetrievedChunk:
    return RetrievedChunk(
        doc_id="d", title="Returns", uri="returns.md", chunk=0, score=0.1, similarity=0.7,
        text=text, snippet="",
    )  # fmt: skip


def test_the_answer_is_the_statement_under_the_matching_question() -> None:
    sentences = split_sentences(FAQ)
    index = best_sentence(sentences, "How many days do I have to return a product for a refund?")
    assert sentences[index].startswith("Our return policy allows you to return products")


def test_extractive_answer_quotes_and_cites_the_best_source() -> None:
    answer = extractive_answer("How long do I have to return something?", [chunk(FAQ)])
    assert "within 30 days of purchase" in answer
    assert answer.endswith("[1]")
    assert "How can I track" not in answer


def test_citation_markers_alone_are_a_weak_answer() -> None:
    sources = [chunk(FAQ)]
    assert is_weak("The sources are: [1] and [2].", sources)
    assert is_weak("", sources)
    assert is_weak("I love sunny days at the beach with friends.", sources)
    assert not is_weak("You can return products within 30 days for a full refund [1].", sources)
