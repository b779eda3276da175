"""Cross-validates the cache verifier on question-disjoint folds of its own training sources.

    python -m lockgate.cache.validate_verifier [--data ../shared/data] [--cache .bench-cache]
        [--hidden 16] [--per-anchor 3,3,1]

For each fold (`verifier_data.folds`) the verifier is fitted, as `train_verifier` fits the
shipped one, on the pairs made among the other folds' questions and their near misses, and
judged on the pairs made among the fold's own questions. The report gives, per fold, their
mean and spread, and pooled over the out-of-fold pairs: the share of true pairs served at most
`WRONG_BUDGETS` wrong hits and the wrong-hit rate at `SHARE_LEVELS` served (cosine at the
shipped floor). A change is worth keeping when it gains more than the spread of its per-fold
differences. The wrong hits include BANKING77's paraphrases labelled as two intents, so the
rates are higher than on cleaner sets; compare them with each other, not with a goal.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from lockgate.cache.verifier import Vocabulary
from lockgate.cache.verifier_data import (
    DEFAULT_DATA,
    PER_ANCHOR,
    Embeddings,
    Fold,
    folds,
    idf_texts,
    vocabulary,
)
from lockgate.cache.verifier_fit import HIDDEN, Featuriser, fit, probabilities

Array = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]
WRONG_BUDGETS = (0.03, 0.05, 0.10)
SHARE_LEVELS = (0.20, 0.30)
MIN_HITS = 20
"""A wrong-hit rate on fewer hits says nothing."""


@dataclass
class OutOfFold:
    """Every validation pair's label and out-of-fold probability, natural and rule-made."""

    label: Bools
    probability: Array
    source: npt.NDArray[np.str_]
    rules_label: Bools
    rules_probability: Array


def _curve(label: Bools, prob: Array) -> tuple[Array, Array, Array, Bools]:
    """(thresholds, true hits, wrong hits, valid cut) from the strictest threshold down."""
    order = np.argsort(-prob, kind="stable")
    p, y = prob[order], label[order]
    cut = np.r_[p[1:] != p[:-1], True] & (p > 0)
    return p, np.cumsum(y), np.cumsum(~y), cut


def share_at(label: Bools, prob: Array, budget: float) -> float:
    """Widest share of true pairs served with at most `budget` wrong hits."""
    _, tp, fp, cut = _curve(label, prob)
    ok = cut & (tp + fp >= MIN_HITS) & (fp <= budget * (tp + fp))
    return float(tp[ok].max() / max(label.sum(), 1)) if ok.any() else 0.0


def wrong_at(label: Bools, prob: Array, share: float) -> float:
    """Wrong-hit rate of the strictest threshold serving `share` of the true pairs."""
    _, tp, fp, cut = _curve(label, prob)
    ok = cut & (tp >= share * label.sum())
    if not ok.any():
        return float("nan")
    i = int(np.argmax(ok))
    return float(fp[i] / (tp[i] + fp[i]))


def metrics(label: Bools, prob: Array) -> dict[str, float]:
    out = {f"share@{b:.0%}": share_at(label, prob, b) for b in WRONG_BUDGETS}
    return out | {f"wrong@{s:.0%}": wrong_at(label, prob, s) for s in SHARE_LEVELS}


def _mean_sd(values: list[float]) -> list[float]:
    """Over the folds where the figure exists (a share no threshold reaches has none)."""
    known = np.array([v for v in values if v == v])
    if len(known) < 2:
        return [round(float(known.mean()), 4) if len(known) else float("nan"), float("nan")]
    return [round(float(known.mean()), 4), round(float(known.std(ddof=1)), 4)]


def cross_validate(
    data: Path,
    embeddings: Embeddings,
    made: Sequence[Fold],
    hidden: int = HIDDEN,
    lexical_max: float | None = None,
    words: Vocabulary | None = None,
) -> tuple[dict[str, object], OutOfFold]:
    """Per-fold and pooled figures, and the out-of-fold probabilities; `words`: the rarity
    table (the built-in sources' when None)."""
    started = time.perf_counter()
    words = vocabulary(idf_texts(data)) if words is None else words
    featurise = Featuriser(embeddings.vectors, words)
    per_fold: list[dict[str, float]] = []
    labels, probs, sources, rule_labels, rule_probs = [], [], [], [], []
    for fold in made:
        verifier = fit(featurise(fold.train), words, hidden, lexical_max)
        row: dict[str, float] = {}
        fold_labels, fold_probs = [], []
        for name, pairs in fold.natural.items():
            c = featurise(pairs)
            prob = probabilities(verifier, c)
            fold_labels.append(c.label)
            fold_probs.append(prob)
            sources.append(np.full(len(pairs), name))
            row |= {f"{name} {m}": v for m, v in metrics(c.label, prob).items()}
        label, prob = np.concatenate(fold_labels), np.concatenate(fold_probs)
        row |= {f"pooled {m}": v for m, v in metrics(label, prob).items()}
        per_fold.append(row)
        labels.append(label)
        probs.append(prob)
        rules = featurise(fold.rules)
        rule_labels.append(rules.label)
        rule_probs.append(probabilities(verifier, rules))
    oof = OutOfFold(
        np.concatenate(labels),
        np.concatenate(probs),
        np.concatenate(sources),
        np.concatenate(rule_labels),
        np.concatenate(rule_probs),
    )
    pooled = {f"pooled {m}": v for m, v in metrics(oof.label, oof.probability).items()}
    for name in sorted(set(oof.source)):
        mask = oof.source == name
        pooled |= {
            f"{name} {m}": v for m, v in metrics(oof.label[mask], oof.probability[mask]).items()
        }
    report: dict[str, object] = {
        "folds": len(made),
        "per_fold": [{m: round(v, 4) for m, v in row.items()} for row in per_fold],
        "mean_sd": {m: _mean_sd([row[m] for row in per_fold]) for m in per_fold[0]},
        "out_of_fold": {m: round(v, 4) for m, v in pooled.items()},
        "validation_pairs": len(oof.label),
        "validation_true_pairs": int(oof.label.sum()),
        "seconds": round(time.perf_counter() - started, 1),
    }
    return report, oof


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lockgate.cache.validate_verifier")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--cache", type=Path, default=None, help="embedding cache directory")
    parser.add_argument("--hidden", type=int, default=HIDDEN, help="hidden units (0: linear)")
    parser.add_argument(
        "--per-anchor",
        default=",".join(map(str, PER_ANCHOR)),
        help="training pairs per question: same-intent, hardest and random other-intent",
    )
    parser.add_argument("--lexical-max", type=float, default=None, help="cap on word weights")
    args = parser.parse_args(argv)
    first, second, third = (int(n) for n in args.per_anchor.split(","))
    made = folds(args.data, (first, second, third))
    embeddings = Embeddings(args.cache)
    embeddings.add(
        t for f in made for ps in [f.train, f.rules, *f.natural.values()] for p in ps
        for t in (p.a, p.b)
    )  # fmt: skip
    report, _ = cross_validate(args.data, embeddings, made, args.hidden, args.lexical_max)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
