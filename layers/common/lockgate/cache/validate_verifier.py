"""Cross-validates the cache verifier on question-disjoint folds of its own training sources.

    python -m lockgate.cache.validate_verifier [--data ../shared/data] [--cache .bench-cache]

For each of `verifier_folds.FOLDS` folds the verifier is trained, exactly as
`train_verifier` trains it, on the pairs made among the other folds' questions (plus the
rule-made near misses of their questions), and judged on the pairs made among the fold's own
questions. It reports, per fold and pooled over the out-of-fold pairs, the share of true pairs
served at most `WRONG_BUDGETS` wrong hits and the wrong-hit rate at `SHARE_LEVELS` served, at
the shipped cosine floor, with the folds' spread: a change is worth keeping only when it gains
more than that spread. Only licence-permissive training sources are read.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from lockgate.cache.guard import check
from lockgate.cache.near_misses import Pair, near_misses
from lockgate.cache.train_verifier import (
    DEFAULT_DATA,
    MIN_COSINE,
    SEED,
    Embeddings,
    fit,
    fit_hidden,
    static_intents,
    vocabulary,
    idf_texts,
)
from lockgate.cache.verifier import Vocabulary, lexical_tokens, pair_features
from lockgate.cache.verifier_folds import (
    FOLDS,
    Utterance,
    cosine_neighbours,
    fold_of,
    intent_pairs,
    neighbours,
    utterances,
)

Array = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]
WRONG_BUDGETS = (0.03, 0.05, 0.10)
SHARE_LEVELS = (0.20, 0.30)
RULE_QUESTIONS = 1000
RULE_POSITIVES = 500
"""Per fold: questions and same-intent pairs the near misses are made from (five folds give
the 5,000 and 2,500 the shipped training uses)."""


@dataclass
class Candidates:
    """The pairs that reach the verifier (cosine at the floor, no hard rule refusing), with
    their features, and every pair's label."""

    pairs: list[Pair]
    label: Bools
    reach: Bools
    x: Array
    tokens: list[set[str]]


Scorer = Callable[[Array, Sequence[set[str]]], Array]
Trainer = Callable[[Array, Array, Sequence[set[str]]], Scorer]


def logistic(x: Array, y: Array, tokens: Sequence[set[str]]) -> Scorer:
    """The shipped model: `train_verifier.fit`, scored as `Verifier.probability` scores."""
    w, b, mean, scale, lexical = fit(x, y, tokens)

    def score(xs: Array, toks: Sequence[set[str]]) -> Array:
        z = ((xs - mean) / scale) @ w + b
        z += np.array([sum(lexical.get(t, 0.0) for t in row) for row in toks])
        return 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))

    return score


def wide_deep(x: Array, y: Array, tokens: Sequence[set[str]]) -> Scorer:
    """The logistic model plus a small hidden layer on the dense features."""
    model = fit_hidden(x, y, tokens)

    def score(xs: Array, toks: Sequence[set[str]]) -> Array:
        w, b, mean, scale, lexical, w1, b1, w2 = model
        z_in = (xs - mean) / scale
        z = z_in @ w + b + np.maximum(z_in @ w1 + b1, 0.0) @ w2
        z += np.array([sum(lexical.get(t, 0.0) for t in row) for row in toks])
        return 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))

    return score


TRAINERS: dict[str, Trainer] = {"logistic": logistic, "wide_deep": wide_deep}


class Featuriser:
    """Features of each pair, computed once however many folds it appears in."""

    def __init__(self, embeddings: Embeddings, words: Vocabulary) -> None:
        self.embeddings = embeddings
        self.words = words
        self.memo: dict[tuple[str, str], tuple[bool, npt.NDArray[np.float64], set[str]]] = {}

    def __call__(self, pairs: Sequence[Pair]) -> Candidates:
        rows, tokens, reach = [], [], []
        for p in pairs:
            key = (p.a, p.b)
            if key not in self.memo:
                vectors = self.embeddings.vectors
                cos = float(vectors[p.a] @ vectors[p.b])
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
            np.array([p.same for p in pairs]),
            np.array(reach, dtype=bool),
            np.stack(rows) if rows else np.zeros((0, 0)),
            tokens,
        )


@dataclass
class FoldData:
    train: list[Pair]
    natural: dict[str, list[Pair]]
    """Validation pairs per source."""
    rules: list[Pair]


def fold_data(
    data: Path, per_anchor: tuple[int, ...] = (1, 1, 1), embeddings: Embeddings | None = None
) -> list[FoldData]:
    """Per fold: training pairs among the other folds' questions, validation pairs among its
    own, and the rule-made near misses of each side."""
    static = static_intents(data)
    sources = utterances(data)
    near = {name: neighbours(items) for name, items in sources.items()}
    nearest: dict[str, list[list[int]] | None] = dict.fromkeys(sources)
    if len(per_anchor) > 3 and embeddings is not None:
        embeddings.add(u.text for items in sources.values() for u in items)
        for name, items in sources.items():
            vectors = np.stack([embeddings.vectors[u.text] for u in items])
            nearest[name] = cosine_neighbours(items, vectors)
    folds = {
        name: [fold_of(u.text) for u in items] for name, items in sources.items()
    }
    rules = [_rules(sources, folds, k) for k in range(FOLDS)]
    out = []
    for k in range(FOLDS):
        train: list[Pair] = []
        natural: dict[str, list[Pair]] = {}
        for name, items in sources.items():
            keep = static if name == "clinc150" else None
            inside = [i for i, f in enumerate(folds[name]) if f == k]
            outside = [i for i, f in enumerate(folds[name]) if f != k]
            train += intent_pairs(
                items,
                near[name],
                outside,
                static=keep,
                seed=SEED + k,
                per_anchor=per_anchor,
                nearest=nearest[name],
            )
            natural[name] = intent_pairs(items, near[name], inside, static=keep, seed=SEED + 10 + k)
        train += [p for j in range(FOLDS) if j != k for p in rules[j]]
        out.append(FoldData(train, natural, rules[k]))
    return out


def _rules(
    sources: dict[str, list[Utterance]], folds: dict[str, list[int]], k: int
) -> list[Pair]:
    import random

    rng = random.Random(SEED + 100 + k)
    questions = [
        u.text
        for name, items in sources.items()
        for u, f in zip(items, folds[name], strict=True)
        if f == k and u.intent != "oos"
    ]
    by_intent: dict[tuple[str, str], list[str]] = {}
    for name, items in sources.items():
        for u, f in zip(items, folds[name], strict=True):
            if f == k and u.intent != "oos":
                by_intent.setdefault((name, u.intent), []).append(u.text)
    positives = [
        (a, b) for texts in by_intent.values() for a, b in zip(texts, texts[1:], strict=False)
    ]
    rng.shuffle(questions)
    rng.shuffle(positives)
    return near_misses(
        questions[:RULE_QUESTIONS], positives[:RULE_POSITIVES], "train", seed=SEED + 200 + k
    )


def probabilities(scorer: Scorer, c: Candidates) -> Array:
    """Every pair's probability; 0 for pairs that never reach the verifier."""
    out = np.zeros(len(c.pairs))
    if c.reach.any():
        out[c.reach] = scorer(c.x, c.tokens)
    return out


def share_at(label: Bools, prob: Array, budget: float) -> float:
    """Widest share of true pairs served with at most `budget` wrong hits (20 hits or more)."""
    order = np.argsort(-prob, kind="stable")
    p, y = prob[order], label[order]
    tp, fp = np.cumsum(y), np.cumsum(~y)
    cut = np.r_[p[1:] != p[:-1], True] & (p > 0)
    hits = tp + fp
    ok = cut & (hits >= 20) & (fp <= budget * hits)
    return float(tp[ok].max() / max(label.sum(), 1)) if ok.any() else 0.0


def wrong_at(label: Bools, prob: Array, share: float) -> float:
    """Wrong-hit rate of the strictest threshold serving `share` of the true pairs."""
    order = np.argsort(-prob, kind="stable")
    p, y = prob[order], label[order]
    tp, fp = np.cumsum(y), np.cumsum(~y)
    cut = np.r_[p[1:] != p[:-1], True] & (p > 0)
    ok = cut & (tp >= share * label.sum())
    if not ok.any():
        return float("nan")
    i = int(np.argmax(ok))
    return float(fp[i] / (tp[i] + fp[i]))


def threshold_at(label: Bools, prob: Array, budget: float) -> float:
    """The lowest probability threshold keeping wrong hits within `budget`."""
    order = np.argsort(-prob, kind="stable")
    p, y = prob[order], label[order]
    tp, fp = np.cumsum(y), np.cumsum(~y)
    cut = np.r_[p[1:] != p[:-1], True] & (p > 0)
    hits = tp + fp
    ok = cut & (hits >= 20) & (fp <= budget * hits)
    if not ok.any():
        return 1.0
    best = int(np.argmax(np.where(ok, tp, -1)))
    return float(p[best])


def metrics(label: Bools, prob: Array) -> dict[str, float]:
    out = {f"share@{b:.0%}": share_at(label, prob, b) for b in WRONG_BUDGETS}
    out |= {f"wrong@{s:.0%}": wrong_at(label, prob, s) for s in SHARE_LEVELS}
    return out


def cross_validate(
    data: Path,
    cache: Path | None,
    trainer: Trainer = logistic,
    per_anchor: tuple[int, ...] = (1, 1, 1),
    out: Path | None = None,
) -> dict[str, object]:
    started = time.perf_counter()
    embeddings = Embeddings(cache)
    folds = fold_data(data, per_anchor, embeddings)
    embeddings.add(
        t
        for f in folds
        for ps in [f.train, f.rules, *f.natural.values()]
        for p in ps
        for t in (p.a, p.b)
    )
    featurise = Featuriser(embeddings, vocabulary(idf_texts(data)))
    per_fold: list[dict[str, float]] = []
    pooled: dict[str, tuple[list[bool], list[float]]] = {}
    dump: list[tuple[int, Pair, float]] = []
    for k, fold in enumerate(folds):
        train = featurise(fold.train)
        scorer = trainer(train.x, train.label[train.reach].astype(float), train.tokens)
        row: dict[str, float] = {}
        labels, probs = [], []
        for name, pairs in fold.natural.items():
            c = featurise(pairs)
            prob = probabilities(scorer, c)
            labels.append(c.label)
            probs.append(prob)
            dump += [(k, p, float(q)) for p, q in zip(pairs, prob, strict=True)]
            row |= {f"{name} {m}": v for m, v in metrics(c.label, prob).items()}
            pooled.setdefault(name, ([], []))
            pooled[name][0].extend(c.label)
            pooled[name][1].extend(prob)
        label, prob = np.concatenate(labels), np.concatenate(probs)
        row |= {f"pooled {m}": v for m, v in metrics(label, prob).items()}
        threshold = threshold_at(label, prob, 0.025)
        rules = featurise(fold.rules)
        rule_prob = probabilities(scorer, rules)
        served = rule_prob >= threshold
        row["rules wrong@2.5%"] = float((served & ~rules.label).sum() / max(served.sum(), 1))
        row["rules share@2.5%"] = float((served & rules.label).sum() / max(rules.label.sum(), 1))
        row["threshold@2.5%"] = threshold
        per_fold.append(row)
        print(f"fold {k}: " + json.dumps({m: round(v, 4) for m, v in row.items()}), flush=True)
    summary = {
        m: (float(np.nanmean(v)), float(np.nanstd(v, ddof=1)))
        for m in per_fold[0]
        for v in [np.array([r[m] for r in per_fold])]
    }
    all_label = np.array([v for lab, _ in pooled.values() for v in lab])
    all_prob = np.array([v for _, pr in pooled.values() for v in pr])
    out_of_fold = {f"pooled {m}": v for m, v in metrics(all_label, all_prob).items()}
    for name, (lab, pr) in pooled.items():
        out_of_fold |= {f"{name} {m}": v for m, v in metrics(np.array(lab), np.array(pr)).items()}
    if out is not None:
        out.write_text(
            "\n".join(json.dumps([k, p.a, p.b, p.same, p.kind, p.source, q]) for k, p, q in dump)
        )
    return {
        "folds": FOLDS,
        "mean_sd": {m: [round(a, 4), round(s, 4)] for m, (a, s) in summary.items()},
        "out_of_fold": {m: round(v, 4) for m, v in out_of_fold.items()},
        "validation_pairs": {n: len(p) for n, p in folds[0].natural.items()},
        "seconds": round(time.perf_counter() - started, 1),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lockgate.cache.validate_verifier")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--cache", type=Path, default=None, help="embedding cache directory")
    parser.add_argument("--out", type=Path, default=None, help="write out-of-fold scores here")
    parser.add_argument("--per-anchor", default="1,1,1", help="training pairs per question")
    parser.add_argument("--model", choices=sorted(TRAINERS), default="logistic")
    args = parser.parse_args(argv)
    per_anchor = tuple(int(n) for n in args.per_anchor.split(","))
    assert len(per_anchor) in (3, 4)
    report = cross_validate(
        args.data, args.cache, TRAINERS[args.model], per_anchor, out=args.out  # type: ignore[arg-type]
    )
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
