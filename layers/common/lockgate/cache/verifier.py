"""The verifier: a second opinion on a semantic-cache candidate that passed the guard's rules.

The guard's rules refuse the near misses that have a name (a number, a negation, a swapped
direction...). What is left is the ordinary case: two questions on one topic that ask different
things ("How do I activate my card?" / "How do I freeze my card?", cosine 0.86). A logistic
regression over the cosine and the pair's word alignment says how likely the cached answer is
right. Its inputs:

- dense features: content words left unmatched on each side, weighted by how rare they are
  (an unmatched "freeze" says more than an unmatched "way"), overlap, order, the question word
  (so answer type), person ("your name" / "my name") and tense ("when did I" / "when should I");
- lexical weights: one learned weight per word that is left unmatched, and per one-for-one
  word substitution, so "top-up" for "transfer" costs more than "help" for "assist".

A small hidden layer of rectified units over the dense features rides on the linear score: it
lets a feature's weight depend on the others (how much the cosine counts on how the words
align); on the training folds it cut the wrong hits at a fifth of true pairs served from 9.5 to
7.2 %. It sees text and the cosine only, so a hit needs no stored vector; with the guard's
rules it costs about a tenth of a millisecond of CPU per candidate. Trained by
`python -m lockgate.cache.train_verifier` on licence-permissive public pairs; the weights are
one small `.npz` next to this module.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from lockgate.cache.guard import Features, features, soft_difference, stem, unmatched

MODEL_DIR = Path(__file__).parent / "model"
WEIGHTS = MODEL_DIR / "verifier.npz"
CARD = MODEL_DIR / "verifier.json"

WH_WORDS = frozenset({"what", "why", "how", "when", "where", "who", "which", "whom", "whose"})
"""The question word decides the kind of answer: "why was it declined" is not "when"."""
MODALS = frozenset({"can", "should", "must", "will", "would", "could", "may", "might"})
AUXILIARIES = MODALS | frozenset(
    {"do", "does", "did", "is", "are", "was", "were", "has", "have", "had", "shall"}
)
PAST = frozenset({"did", "was", "were", "had"})
""""When did I change my oil" asks for a record, "when should I" for advice."""
PERSONS = (
    frozenset({"i", "me", "my", "mine", "myself"}),
    frozenset({"you", "your", "yours", "yourself"}),
    frozenset({"he", "she", "they", "him", "her", "them", "his", "their"}),
    frozenset({"we", "us", "our"}),
)
"""Whose thing is asked about: "what is your name" is not "what is my name"."""
IDF_CAP = 30.0
FEATURE_NAMES = (
    "cosine", "cosine_above_0.85", "cosine_above_0.92", "content_jaccard", "words_jaccard",
    "bigram_jaccard", "cosine_x_jaccard", "substituted_0", "substituted_1", "substituted_2+",
    "added_only", "unmatched_total", "content_a", "content_b", "same_content_other_order",
    "wh_differs", "modal_differs", "length_ratio", "quantifier_or_time_differs",
    "idf_unmatched_query", "idf_unmatched_cached", "idf_substituted", "idf_unmatched_larger",
    "idf_rarest_unmatched", "idf_jaccard", "cosine_x_idf_jaccard", "idf_unmatched_share_query",
    "idf_unmatched_share_cached", "first_content_matched", "person_differs", "you_vs_me",
    "auxiliary_differs", "past_differs", "negation_differs", "spelled_number_differs",
)  # fmt: skip
"""A replaced content word ("freeze" for "activate" my card) is the near miss the cosine
misses; words only added on one side ("my new card") rarely change the answer."""

Array = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Vocabulary:
    """Inverse document frequency of word stems, from licence-permissive public questions."""

    idf: Mapping[str, float]
    default: float
    """For stems never seen (rare, so telling)."""

    def weight(self, stem_: str) -> float:
        return self.idf.get(stem_, self.default)


NO_VOCABULARY = Vocabulary({}, 1.0)


def pair_features(
    query: str, cached: str, cosine: float, vocabulary: Vocabulary = NO_VOCABULARY
) -> Array:
    a, b = features(query), features(cached)
    return np.array(_row(a, b, cosine, vocabulary), dtype=np.float64)


def lexical_tokens(query: str, cached: str) -> set[str]:
    """The words the lexical weights apply to: each unmatched stem ("d:freeze") and, when
    exactly one word was replaced by one other, the substitution ("x:activ|freeze")."""
    a, b = features(query), features(cached)
    only_a, only_b = unmatched(a.content, b.content), unmatched(b.content, a.content)
    tokens = {f"d:{w}" for w in only_a | only_b}
    if len(only_a) == 1 and len(only_b) == 1:
        x, y = sorted((next(iter(only_a)), next(iter(only_b))))
        tokens.add(f"x:{x}|{y}")
    return tokens


def _row(a: Features, b: Features, cosine: float, vocabulary: Vocabulary) -> list[float]:
    only_a, only_b = unmatched(a.content, b.content), unmatched(b.content, a.content)
    ua, ub = len(only_a), len(only_b)
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
    weight = vocabulary.weight
    # fsum: exact, so the result does not depend on the sets' (per-process) order
    idf_a, idf_b = math.fsum(map(weight, only_a)), math.fsum(map(weight, only_b))
    total_a, total_b = math.fsum(map(weight, ca)) or 1.0, math.fsum(map(weight, cb)) or 1.0
    idf_jaccard = (total_a - idf_a + total_b - idf_b) / (total_a + total_b)
    rarest = max(map(weight, only_a | only_b), default=0.0)
    first_matched = bool(order_a) and bool(order_b)
    first_matched = first_matched and not unmatched(frozenset({stem(order_a[0])}), cb)
    aux_a, aux_b = words_a & AUXILIARIES, words_b & AUXILIARIES
    persons_differ = sum(bool(words_a & p) != bool(words_b & p) for p in PERSONS)
    first, second = PERSONS[0], PERSONS[1]
    you_vs_me = (words_a & second and not words_b & second and words_b & first) or (
        words_b & second and not words_a & second and words_a & first
    )
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
        min(idf_a, IDF_CAP) / 10,
        min(idf_b, IDF_CAP) / 10,
        min(idf_a, idf_b) / 10,
        max(idf_a, idf_b) / 10,
        rarest / 10,
        idf_jaccard,
        cosine * idf_jaccard,
        idf_a / total_a,
        idf_b / total_b,
        float(first_matched),
        float(persons_differ),
        float(bool(you_vs_me)),
        float(bool(aux_a) and bool(aux_b) and not aux_a & aux_b),
        float(bool(words_a & PAST) != bool(words_b & PAST)),
        float(a.negations != b.negations),
        float(a.numbers != b.numbers),
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
    lexical: Mapping[str, float] = field(default_factory=dict)
    """Learned weight per `lexical_tokens` token; a token not listed weighs nothing."""
    vocabulary: Vocabulary = NO_VOCABULARY
    hidden: tuple[Array, Array, Array] | None = None
    """(input weights, biases, output weights) of the hidden layer on the standardised dense
    features; None for a purely linear verifier."""

    def probability(self, query: str, cached: str, cosine: float) -> float:
        x = (pair_features(query, cached, cosine, self.vocabulary) - self.mean) / self.scale
        z = float(x @ self.weights) + self.bias
        if self.hidden is not None:
            w1, b1, w2 = self.hidden
            z += float(np.maximum(x @ w1 + b1, 0.0) @ w2)
        if self.lexical:
            z += math.fsum(self.lexical.get(t, 0.0) for t in lexical_tokens(query, cached))
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))

    def save(self, path: Path = WEIGHTS) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tokens = sorted(self.lexical)
        stems = sorted(self.vocabulary.idf)
        w1, b1, w2 = self.hidden or (np.zeros((len(self.weights), 0)), np.zeros(0), np.zeros(0))
        np.savez_compressed(
            path,
            weights=self.weights,
            bias=np.float64(self.bias),
            mean=self.mean,
            scale=self.scale,
            threshold=np.float64(self.threshold),
            names=np.array(FEATURE_NAMES),
            lexical_tokens=np.array(tokens, dtype=str),
            lexical_weights=np.array([self.lexical[t] for t in tokens], dtype=np.float32),
            idf_stems=np.array(stems, dtype=str),
            idf_values=np.array([self.vocabulary.idf[s] for s in stems], dtype=np.float32),
            idf_default=np.float64(self.vocabulary.default),
            hidden_weights=w1,
            hidden_bias=b1,
            hidden_out=w2,
        )

    @classmethod
    def load(cls, path: Path = WEIGHTS) -> Verifier:
        data = np.load(path)
        if tuple(str(n) for n in data["names"]) != FEATURE_NAMES:
            raise RuntimeError(
                f"the cache verifier {path} was trained with other features; "
                "rebuild it with `python -m lockgate.cache.train_verifier`"
            )
        lexical = dict(
            zip(
                (str(t) for t in data["lexical_tokens"]),
                (float(w) for w in data["lexical_weights"]),
                strict=True,
            )
        )
        idf = dict(
            zip(
                (str(s) for s in data["idf_stems"]),
                (float(v) for v in data["idf_values"]),
                strict=True,
            )
        )
        hidden = None
        if "hidden_out" in data.files and data["hidden_out"].size:
            hidden = (
                data["hidden_weights"].astype(np.float64),
                data["hidden_bias"].astype(np.float64),
                data["hidden_out"].astype(np.float64),
            )
        return cls(
            weights=data["weights"].astype(np.float64),
            bias=float(data["bias"]),
            mean=data["mean"].astype(np.float64),
            scale=data["scale"].astype(np.float64),
            threshold=float(data["threshold"]),
            lexical=lexical,
            vocabulary=Vocabulary(idf, float(data["idf_default"])),
            hidden=hidden,
        )


def read_card(path: Path = CARD) -> dict[str, object]:
    card: dict[str, object] = json.loads(path.read_text(encoding="utf-8"))
    return card
