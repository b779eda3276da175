"""Prompt-injection detection over user input and RAG chunks alike, without an embedding.

1. Rules (regex, `rules.py`): high-precision phrasings; a hit decides.
2. A linear classifier over hashed byte and word n-grams plus the rule hits (`features.py`,
   `model.py`): the score the threshold applies to.

Both together cost well under a millisecond per window, so the guard adds almost nothing to a
request. Long texts are scanned in overlapping windows, so an attack appended to a long
document is scored on its own rather than diluted by the document; past `MAX_WINDOWS`, only
the head and the tail are scanned, where an attack on a prompt sits (an instruction buried in
the middle of a very long document is the one case this gives up, to bound the cost).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from lockgate.safety.features import features, normalise
from lockgate.safety.model import InjectionModel
from lockgate.safety.rules import match_rules

WINDOW_CHARS = 1200
WINDOW_OVERLAP = 200
_WORD = re.compile(r"\w+", re.UNICODE)
MAX_WINDOWS = 8
SHORT_CHARS = 12
"""A message of one short word ("ok", "yes.", "42") carries no instruction to judge, and the
words an attack makes a model say are the ones people reply with: only the rules judge it."""


@dataclass(frozen=True, slots=True)
class TextVerdict:
    index: int
    score: float
    """0..1: 1.0 for a rule hit, else the classifier's score of the most suspicious window."""
    injection: bool
    layer: str
    """`rules` or `classifier`: which layer decided."""
    reason: str


@dataclass(frozen=True, slots=True)
class Verdict:
    texts: tuple[TextVerdict, ...]

    @property
    def injection(self) -> bool:
        return any(t.injection for t in self.texts)

    @property
    def score(self) -> float:
        return max((t.score for t in self.texts), default=0.0)

    @property
    def offending(self) -> tuple[int, ...]:
        return tuple(t.index for t in self.texts if t.injection)

    @property
    def reason(self) -> str | None:
        """The first offending text's reason, for the error message and the log."""
        return next((t.reason for t in self.texts if t.injection), None)

    @property
    def layer(self) -> str | None:
        return next((t.layer for t in self.texts if t.injection), None)


def windows(text: str) -> list[str]:
    """Overlapping windows of the text; for a very long one, the first and last few."""
    if len(text) <= WINDOW_CHARS:
        return [text]
    step = WINDOW_CHARS - WINDOW_OVERLAP
    starts = list(range(0, len(text) - WINDOW_OVERLAP, step))
    if len(starts) > MAX_WINDOWS:
        half = MAX_WINDOWS // 2
        starts = starts[:half] + starts[-half:]
    return [text[i : i + WINDOW_CHARS] for i in starts]


class InjectionDetector:
    def __init__(self, model: InjectionModel | None = None, *, threshold: float | None = None):
        self._model = model or InjectionModel.load()
        self.threshold = self._model.threshold if threshold is None else threshold

    @property
    def model(self) -> InjectionModel:
        return self._model

    async def scan(self, texts: Sequence[str], *, threshold: float | None = None) -> Verdict:
        """Scores each text. Async for the callers' sake; the work is a few numpy calls."""
        return self.scan_now(texts, threshold=threshold)

    def scan_now(self, texts: Sequence[str], *, threshold: float | None = None) -> Verdict:
        limit = self.threshold if threshold is None else threshold
        return Verdict(tuple(self._judge(i, text, limit) for i, text in enumerate(texts)))

    def _judge(self, index: int, text: str, limit: float) -> TextVerdict:
        if not text.strip():
            return TextVerdict(index, 0.0, False, "classifier", "empty")
        worst = 0.0
        for part in windows(text):
            norm = normalise(part)
            hits = match_rules(norm)
            if hits:
                return TextVerdict(index, 1.0, True, "rules", hits[0].reason)
            if len(norm) > SHORT_CHARS or len(_WORD.findall(norm)) > 1:
                worst = max(worst, self._model.score(*features(norm, hits)))
        if worst >= limit:
            return TextVerdict(
                index,
                worst,
                True,
                "classifier",
                f"reads like an attempt to override the instructions (score {worst:.2f})",
            )
        return TextVerdict(index, worst, False, "classifier", "below the threshold")
