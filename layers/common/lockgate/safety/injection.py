"""Prompt-injection detection in layers, cheapest first, over user input and RAG chunks alike.

1. Rules (regex, `rules.py`): high-precision phrasings; a hit decides.
2. Fast classifier over hashed n-grams and rule hits: a confidently benign text stops here,
   without an embedding (most ordinary prompts).
3. Similarity to known attacks (MiniLM embeddings of the training injections): the nearest
   known attack is close and nearer than any benign training prompt.
4. Full classifier over [embedding, n-grams, rules]: the score the threshold applies to.

Long texts are scanned in overlapping windows, so an attack appended to a long document is
seen by every layer rather than cut off by the embedder's 256-token limit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lockgate.embeddings.base import Embedder, Vectors
from lockgate.safety.features import Features, ngram_features, normalise, rule_features
from lockgate.safety.model import InjectionModel
from lockgate.safety.rules import match_rules

WINDOW_CHARS = 1200
WINDOW_OVERLAP = 200
SIMILARITY_MARGIN = 0.02


@dataclass(frozen=True, slots=True)
class TextVerdict:
    index: int
    score: float
    """0..1: 1.0 for a rule hit, the similarity for a known-attack match, else the classifier."""
    injection: bool
    layer: str
    """`rules`, `fast` (let through unembedded), `similarity` or `classifier`."""
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
    if len(text) <= WINDOW_CHARS:
        return [text]
    step = WINDOW_CHARS - WINDOW_OVERLAP
    return [text[i : i + WINDOW_CHARS] for i in range(0, len(text) - WINDOW_OVERLAP, step)]


class InjectionDetector:
    def __init__(
        self,
        embedder: Embedder,
        model: InjectionModel | None = None,
        *,
        threshold: float | None = None,
    ) -> None:
        self._model = model or InjectionModel.load()
        if embedder.dimensions != self._model.dimensions:
            raise ValueError(
                f"the injection model was trained on {self._model.embedder} "
                f"({self._model.dimensions} dimensions), not {embedder.name}"
            )
        self._embedder = embedder
        self.threshold = self._model.threshold if threshold is None else threshold

    @property
    def model(self) -> InjectionModel:
        return self._model

    async def scan(
        self,
        texts: Sequence[str],
        *,
        threshold: float | None = None,
        vectors: Vectors | None = None,
    ) -> Verdict:
        """Scores each text. `vectors`, when the caller already embedded `texts` with the same
        model (the semantic cache does), saves the embedding for texts of one window."""
        limit = self.threshold if threshold is None else threshold
        model = self._model
        verdicts: list[TextVerdict | None] = [None] * len(texts)
        pending: list[tuple[int, str, Features]] = []  # text index, window, fast features
        for index, text in enumerate(texts):
            parts = windows(text)
            for part in parts:
                norm = normalise(part)
                hits = match_rules(norm)
                if hits:
                    verdicts[index] = TextVerdict(index, 1.0, True, "rules", hits[0].reason)
                    break
                features = np.concatenate([ngram_features(norm), rule_features(norm)])
                pending.append((index, part, features))
            else:
                continue
            pending = [p for p in pending if p[0] != index]

        best: dict[int, TextVerdict] = {}
        to_embed: list[tuple[int, str, Features]] = []
        for index, part, features in pending:
            fast = _sigmoid(float(features @ model.fast_w) + model.fast_b)
            if fast < model.fast_pass_below and fast < limit:
                _keep(
                    best, TextVerdict(index, fast, False, "fast", "looks like an ordinary prompt")
                )
            else:
                to_embed.append((index, part, features))

        if to_embed:
            embedded = self._reuse(vectors, texts, to_embed)
            if embedded is None:
                embedded = await self._embedder.embed([part for _, part, _ in to_embed])
            for (index, _, features), vector in zip(to_embed, embedded, strict=True):
                _keep(best, self._judge(index, vector, features, limit))

        for index, verdict in best.items():
            if verdicts[index] is None:
                verdicts[index] = verdict
        return Verdict(
            tuple(
                v if v is not None else TextVerdict(i, 0.0, False, "fast", "empty")
                for i, v in enumerate(verdicts)
            )
        )

    def _judge(self, index: int, vector: Vectors, features: Features, limit: float) -> TextVerdict:
        model = self._model
        to_attack = float((model.attacks @ vector).max())
        to_benign = float((model.benign @ vector).max()) if len(model.benign) else -1.0
        if to_attack >= model.similarity_threshold and to_attack >= to_benign + SIMILARITY_MARGIN:
            return TextVerdict(
                index,
                to_attack,
                True,
                "similarity",
                f"closely resembles a known prompt-injection attack (cosine {to_attack:.2f})",
            )
        score = _sigmoid(
            float(vector @ model.full_w[: model.dimensions])
            + float(features @ model.full_w[model.dimensions :])
            + model.full_b
        )
        if score >= limit:
            return TextVerdict(
                index,
                score,
                True,
                "classifier",
                f"reads like an attempt to override the instructions (score {score:.2f})",
            )
        return TextVerdict(index, score, False, "classifier", "below the threshold")

    @staticmethod
    def _reuse(
        vectors: Vectors | None, texts: Sequence[str], to_embed: list[tuple[int, str, Features]]
    ) -> Vectors | None:
        if vectors is None or len(vectors) != len(texts):
            return None
        if any(part != texts[index] for index, part, _ in to_embed):
            return None
        return np.stack([vectors[index] for index, _, _ in to_embed])


def _keep(best: dict[int, TextVerdict], verdict: TextVerdict) -> None:
    """Per text, the most damning window."""
    current = best.get(verdict.index)
    if (
        current is None
        or (verdict.injection and not current.injection)
        or (verdict.injection == current.injection and verdict.score > current.score)
    ):
        best[verdict.index] = verdict


def _sigmoid(z: float) -> float:
    return float(1.0 / (1.0 + np.exp(-np.clip(z, -30.0, 30.0))))
