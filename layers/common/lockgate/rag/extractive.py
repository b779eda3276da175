"""Answers taken from the sources themselves: the sentence that answers, quoted and cited.

The bundled SmolLM2-135M writes fluent English but often not from its sources ("The sources
are: [1] and [2]."). When the model is that small, or its answer carries nothing from the
sources, the gateway answers with the best-matching sentences of the best source instead, and
says so (`answer_mode: "extractive"`). The same sentence scoring picks each citation's snippet,
so a citation shows the sentence that matched rather than the start of its chunk.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from lockgate.rag.model import RetrievedChunk

_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
_WORD = re.compile(r"[^\W_]+", re.U)
_HEADING = re.compile(r"^#+\s*")
_CITATION = re.compile(r"\[\d{1,2}\]")
STOPWORDS = frozenset(
    """a an the and or but if of in on at by for with about as into to from up out is are was were
    be been being have has had do does did will would shall should can could may might must i me
    my we our you your he she it its they them their this that these those what which who whom
    how when where why there here not no so than too very just also any some all please get got
    want need know tell much many does""".split()  # noqa: SIM905
)
EXTRACT_CHARS = 400
MIN_ANSWER_WORDS = 4


def _stem(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def content_words(text: str) -> set[str]:
    return {_stem(w) for w in _WORD.findall(text.lower()) if w not in STOPWORDS and len(w) > 1}


def split_sentences(text: str) -> list[str]:
    parts = (_HEADING.sub("", s).strip() for s in _SENTENCE.split(text))
    return [p for p in parts if p]


def best_sentence(sentences: Sequence[str], query: str) -> int:
    """Index of the sentence that answers: the one sharing most content words with the query,
    or, when that one is itself a question (a FAQ heading), the statement after it."""
    wanted = content_words(query)
    best, best_score = 0, -1.0
    for i, sentence in enumerate(sentences):
        words = content_words(sentence)
        score = len(wanted & words) + 0.01 * min(len(words), 20)
        if score > best_score:
            best, best_score = i, score
    if sentences[best].endswith("?"):
        following = next((j for j in range(best + 1, len(sentences))
                          if not sentences[j].endswith("?")), None)  # fmt: skip
        if following is not None:
            return following
    return best


def window(text: str, query: str, limit: int) -> tuple[str, bool]:
    """The best sentence and those after it, up to `limit` characters, and whether the window
    starts inside the text (so a caller can mark the cut)."""
    sentences = split_sentences(text)
    if not sentences:
        return "", False
    start = best_sentence(sentences, query)
    chosen = sentences[start]
    for sentence in sentences[start + 1 :]:
        if sentence.endswith("?") or len(chosen) + 1 + len(sentence) > limit:
            break
        chosen = f"{chosen} {sentence}"
    if len(chosen) > limit:
        chosen = chosen[:limit].rsplit(" ", 1)[0] + "…"
    return chosen, start > 0


def extractive_answer(query: str, chunks: Sequence[RetrievedChunk]) -> str:
    """The best source's answering sentences, cited as [1]."""
    if not chunks:
        return ""
    text, _ = window(chunks[0].text, query, EXTRACT_CHARS)
    return f"{text} [1]"


def is_weak(answer: str, chunks: Sequence[RetrievedChunk]) -> bool:
    """Whether a generated answer says nothing from its sources: empty, only citation markers
    and filler, or with fewer than two content words found in any source."""
    words = content_words(_CITATION.sub(" ", answer)) - {"source", "sources", "answer"}
    if len(words) < MIN_ANSWER_WORDS:
        return True
    grounded = set().union(*(content_words(c.text) for c in chunks)) if chunks else set()
    return len(words & grounded) < 2
