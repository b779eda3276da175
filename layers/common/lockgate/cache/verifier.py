"""The verifier: a second opinion on a semantic-cache candidate that passed the guard's rules.

The guard's rules refuse the near misses that have a name (a number, a negation, a swapped
direction...). What is left is the ordinary case: two questions on one topic that ask different
things ("How do I activate my card?" / "How do I freeze my card?", cosine 0.86). A logistic
regression over the cosine and the pair's word alignment (content words left unmatched on each
side, overlap, order, the question word and so answer type) says how likely the cached answer
is right. It sees text and the cosine only, so a hit needs no stored vector, and it costs tens
of microseconds. Trained by `python -m lockgate.cache.train_verifier` on licence-permissive
public pairs; the weights are one small `.npz` next to this module.
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from lockgate.cache.guard import Features, features, soft_difference, unmatched

MODEL_DIR = Path(__file__).parent / "model"
WEIGHTS = MODEL_DIR / "verifier.npz"
CARD = MODEL_DIR / "verifier.json"

WH_WORDS = frozenset({"what", "why", "how", "when", "where", "who", "which", "whom", "whose"})
"""The question word decides the kind of answer: "why was it declined" is not "when"."""
MODALS = frozenset({"can", "should", "must", "will", "would", "could", "may", "might"})
FEATURE_NAMES = (
    "cosine", "cosine_above_0.85", "cosine_above_0.92", "content_jaccard", "words_jaccard",
    "bigram_jaccard", "cosine_x_jaccard", "substituted_0", "substituted_1", "substituted_2+",
    "added_only", "unmatched_total", "content_a", "content_b", "same_content_other_order",
    "wh_differs", "modal_differs", "length_ratio", "quantifier_or_time_differs",
)  # fmt: skip
"""A replaced content word ("freeze" for "activate" my card) is the near miss the cosine
misses; words only added on one side ("my new card") rarely change the answer."""

Array = npt.NDArray[np.float64]


def pair_features(query: str, cached: str, cosine: float) -> Array:
    a, b = features(query), features(cached)
    return np.array(_row(a, b, cosine), dtype=np.float64)


def _row(a: Features, b: Features, cosine: float) -> list[float]:
    ua, ub = len(unmatched(a.content, b.content)), len(unmatched(b.content, a.content))
    ca, cb = a.content, b.content
    content_union = len(ca | cb)
    content_jaccard = len(ca & cb) / content_union if content_union else 1.0
    words_a, words_b = set(a.words), set(b.words)
    words_union = len(words_a | words_b)
    bigrams_a, bigrams_b = _bigrams(a), _bigrams(b)
    bigram_union = len(bigrams_a | bigrams_b)
    order_a, order_b = _content_sequence(a), _content_sequence(b)
    same_other_order = float(sorted(order_a) == sorted(order_b) and order_a != order_b)
    wh_a, wh_b = words_a & WH_WORDS, words_b & WH_WORDS
    modal_a, modal_b = words_a & MODALS, words_b & MODALS
    len_a, len_b = len(a.words) or 1, len(b.words) or 1
    substituted = min(ua, ub)
    return [
        cosine,
        max(0.0, cosine - 0.85),
        max(0.0, cosine - 0.92),
        content_jaccard,
        len(words_a & words_b) / words_union if words_union else 1.0,
        len(bigrams_a & bigrams_b) / bigram_union if bigram_union else 1.0,
        cosine * content_jaccard,
        float(substituted == 0),
        float(substituted == 1),
        float(substituted >= 2),
        float(substituted == 0 and ua + ub > 0),
        min(ua + ub, 8),
        math.log1p(len(ca)),
        math.log1p(len(cb)),
        same_other_order,
        float(bool(wh_a) and bool(wh_b) and wh_a != wh_b),
        float(bool(modal_a) and bool(modal_b) and modal_a != modal_b),
        min(len_a, len_b) / max(len_a, len_b),
        float(soft_difference(a, b) is not None),
    ]


def _content_sequence(f: Features) -> list[str]:
    return [w for w in f.words if w[:4] in {c[:4] for c in f.content}]


def _bigrams(f: Features) -> set[tuple[str, str]]:
    seq = _content_sequence(f)
    return set(itertools.pairwise(seq))


@dataclass(frozen=True, slots=True)
class Verifier:
    weights: Array
    bias: float
    mean: Array
    scale: Array
    threshold: float
    """Probability from which a candidate is served: chosen on the tuning split (see the card)."""

    def probability(self, query: str, cached: str, cosine: float) -> float:
        x = (pair_features(query, cached, cosine) - self.mean) / self.scale
        z = float(x @ self.weights) + self.bias
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))

    def save(self, path: Path = WEIGHTS) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(
            path,
            weights=self.weights,
            bias=np.float64(self.bias),
            mean=self.mean,
            scale=self.scale,
            threshold=np.float64(self.threshold),
            names=np.array(FEATURE_NAMES),
        )

    @classmethod
    def load(cls, path: Path = WEIGHTS) -> Verifier:
        data = np.load(path)
        if tuple(str(n) for n in data["names"]) != FEATURE_NAMES:
            raise RuntimeError(
                f"the cache verifier {path} was trained with other features; "
                "rebuild it with `python -m lockgate.cache.train_verifier`"
            )
        return cls(
            weights=data["weights"].astype(np.float64),
            bias=float(data["bias"]),
            mean=data["mean"].astype(np.float64),
            scale=data["scale"].astype(np.float64),
            threshold=float(data["threshold"]),
        )


def read_card(path: Path = CARD) -> dict[str, object]:
    card: dict[str, object] = json.loads(path.read_text(encoding="utf-8"))
    return card
