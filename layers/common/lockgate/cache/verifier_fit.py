"""Fits the cache verifier on labelled question pairs: numpy only, deterministic.

Only the pairs that would reach the verifier are fitted on and judged: cosine at least
`MIN_COSINE` and no hard rule of the guard refusing them.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from lockgate.cache.guard import check
from lockgate.cache.near_misses import Pair
from lockgate.cache.verifier import Verifier, Vocabulary, lexical_tokens, pair_features

Array = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]
MIN_COSINE = 0.6
SEED = 20240613
HIDDEN = 16
"""Rectified units on the dense features; 0 gives the purely linear verifier."""
L2_DENSE = 1e-3
L2_HIDDEN = 1e-3
L2_LEXICAL = 3e-4
LEXICAL_MIN_COUNT = 3
"""A word's own weight is learned only when it is left unmatched in this many training pairs."""
LEXICAL_KEEP = 0.02
"""Smaller learned word weights are dropped from the shipped file (they change nothing)."""
ITERATIONS = 1500
LEARNING_RATE = 0.05


@dataclass
class Candidates:
    """Pairs with their labels; those reaching the verifier (`reach`) with their features."""

    pairs: list[Pair]
    label: Bools
    reach: Bools
    x: Array
    tokens: list[set[str]]


class Featuriser:
    """Features of each pair, computed once however many folds it appears in."""

    def __init__(self, vectors: dict[str, npt.NDArray[np.float32]], words: Vocabulary) -> None:
        self.vectors = vectors
        self.words = words
        self.memo: dict[tuple[str, str], tuple[bool, Array, set[str]]] = {}

    def __call__(self, pairs: Sequence[Pair]) -> Candidates:
        rows, tokens, reach = [], [], []
        for p in pairs:
            key = (p.a, p.b)
            if key not in self.memo:
                cos = float(self.vectors[p.a] @ self.vectors[p.b])
                ok = cos >= MIN_COSINE and check(p.b, p.a, strict=False, soft=False).ok
                row = pair_features(p.b, p.a, cos, self.words) if ok else np.zeros(0)
                self.memo[key] = (ok, row, lexical_tokens(p.b, p.a) if ok else set())
            ok, row, toks = self.memo[key]
            reach.append(ok)
            if ok:
                rows.append(row)
                tokens.append(toks)
        return Candidates(
            list(pairs),
            np.array([p.same for p in pairs], dtype=bool),
            np.array(reach, dtype=bool),
            np.stack(rows) if rows else np.zeros((0, 0)),
            tokens,
        )


def fit(
    c: Candidates, words: Vocabulary, hidden: int = HIDDEN, lexical_max: float | None = None
) -> Verifier:
    """Class-balanced logistic loss on the standardised dense features (linear, plus `hidden`
    rectified units) and one weight per frequent lexical token, by full-batch Adam: the same
    weights in every process. `lexical_max` caps the word weights (for comparisons on the
    folds; capping at 0 did worse there). The threshold is left at 0.5 for the caller."""
    x, y, tokens = c.x, c.label[c.reach].astype(np.float64), c.tokens
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale == 0] = 1.0
    z = (x - mean) / scale
    counts = Counter(t for row in tokens for t in row)
    index = {
        t: i for i, t in enumerate(sorted(t for t, n in counts.items() if n >= LEXICAL_MIN_COUNT))
    }
    # sorted: set order changes per process, and the order of the sums with it
    cells = [(r, index[t]) for r, row in enumerate(tokens) for t in sorted(row) if t in index]
    rows = np.array([r for r, _ in cells], dtype=np.int64)
    cols = np.array([c for _, c in cells], dtype=np.int64)
    balance = np.where(y == 1, 0.5 / max(y.mean(), 1e-9), 0.5 / max(1 - y.mean(), 1e-9))
    rng = np.random.default_rng(SEED)
    d = z.shape[1]
    params = [
        np.zeros(d),
        np.zeros(len(index)),
        np.zeros(1),
        rng.normal(0, 1 / math.sqrt(d), (d, hidden)),
        np.zeros(hidden),
        rng.normal(0, 0.1 / math.sqrt(max(hidden, 1)), hidden),
    ]
    first = [np.zeros_like(p) for p in params]
    second = [np.zeros_like(p) for p in params]
    for step in range(1, ITERATIONS + 1):
        w, v, b, w1, b1, w2 = params
        lexical = np.bincount(rows, weights=v[cols], minlength=len(y))
        pre = z @ w1 + b1
        h = np.maximum(pre, 0.0)
        p = 1.0 / (1.0 + np.exp(-np.clip(z @ w + b[0] + lexical + h @ w2, -30, 30)))
        g = (p - y) * balance / len(y)
        gh = np.outer(g, w2) * (pre > 0)
        grads = [
            z.T @ g + L2_DENSE * w,
            np.bincount(cols, weights=g[rows], minlength=len(index)) + L2_LEXICAL * v,
            np.array([g.sum()]),
            z.T @ gh + L2_HIDDEN * w1,
            gh.sum(axis=0),
            h.T @ g + L2_HIDDEN * w2,
        ]
        for i, grad in enumerate(grads):
            first[i] = 0.9 * first[i] + 0.1 * grad
            second[i] = 0.999 * second[i] + 0.001 * grad**2
            m_hat = first[i] / (1 - 0.9**step)
            v_hat = second[i] / (1 - 0.999**step)
            params[i] -= LEARNING_RATE * m_hat / (np.sqrt(v_hat) + 1e-8)
        if lexical_max is not None:
            np.minimum(params[1], lexical_max, out=params[1])
    w, v, b, w1, b1, w2 = params
    lexical_weights = {
        t: round(float(v[i]), 4) for t, i in index.items() if abs(v[i]) >= LEXICAL_KEEP
    }
    return Verifier(
        w, float(b[0]), mean, scale, 0.5, lexical_weights, words, (w1, b1, w2) if hidden else None
    )


def probabilities(verifier: Verifier, c: Candidates) -> Array:
    """Every pair's probability, as `Verifier.probability` gives it, in one pass; 0 for the
    pairs that never reach the verifier."""
    out = np.zeros(len(c.pairs))
    if not c.reach.any():
        return out
    x = (c.x - verifier.mean) / verifier.scale
    z = x @ verifier.weights + verifier.bias
    if verifier.hidden is not None:
        w1, b1, w2 = verifier.hidden
        z += np.maximum(x @ w1 + b1, 0.0) @ w2
    z += np.array([math.fsum(verifier.lexical.get(t, 0.0) for t in row) for row in c.tokens])
    out[c.reach] = 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))
    return out
