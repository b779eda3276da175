"""Trains the injection classifier from licence-permissive prompts, reproducibly, in numpy.

    python -m lockgate.safety.train [--data DIR] [--out DIR] [--validate]

Reads only the `train` split of `lockgate.safety.corpus` (attacks: deepset train, PALLMs,
template-composed attacks; benign: role-play, system prompts, imperative tasks, code,
constrained instructions, trigger words, non-English first turns, template-composed look-alikes).
Long benign texts are split into the detector's own windows; an attack counts by its first
window (the rest of a long attack may read as ordinary text).

The model is an L2-regularised logistic regression over the sparse hashed features, weighted
by class and source (`balance`), fitted by full-batch Adam for a fixed number of steps
(deterministic, no dependencies beyond numpy). The threshold is then picked on the `tune`
split, which training never sees: the lowest score at which the whole detector (rules
included) flags at most `TUNE_BENIGN` of its real benign prompts (the template-made ones are
left out: they are ours, and would make the quota easy to fill), half the goal's 2 %, as
margin for other styles; `bench.safety` judges the result on held-out sources.

A change is to be chosen with `--validate` (out of fold on deepset train, whole benign sources
left out), not on the held-out sources: a gain on the tuning split alone can be a gain in
fitting its sources' style that other styles do not share.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from lockgate.safety import corpus
from lockgate.safety.features import DIM, features, normalise
from lockgate.safety.injection import InjectionDetector, windows
from lockgate.safety.model import MODEL_DIR, InjectionModel

L2 = 1e-6
STEPS = 300
LEARNING_RATE = 0.05
TUNE_BENIGN = 0.01
CURVE = (0.3, 0.5, 0.7, 0.8, 0.9, 0.95)
VALIDATION_FOLDS = 4
LEFT_OUT = ("oasst-prompts", "notinject A", "ifeval")
"""Real benign sources `validate` leaves out whole: first turns in many languages, trigger
words, format constraints."""

Floats = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class Sparse:
    """Rows of (column, value) pairs, flattened: enough of CSR for a linear model."""

    rows: npt.NDArray[np.int64]
    columns: npt.NDArray[np.int64]
    values: Floats
    n: int

    def dot(self, w: Floats) -> Floats:
        out: Floats = np.bincount(
            self.rows, weights=w[self.columns] * self.values, minlength=self.n
        ).astype(np.float32)
        return out

    def tdot(self, g: Floats) -> Floats:
        out: Floats = np.bincount(
            self.columns, weights=self.values * g[self.rows], minlength=DIM
        ).astype(np.float32)
        return out


def training_windows(prompts: Sequence[corpus.Prompt]) -> tuple[list[str], Floats, list[str]]:
    texts, labels, sources = [], [], []
    for prompt in prompts:
        parts = windows(prompt.text)
        for part in parts[:1] if prompt.attack else parts:
            texts.append(part)
            labels.append(1.0 if prompt.attack else 0.0)
            sources.append(prompt.source)
    return texts, np.array(labels, dtype=np.float32), sources


def design(texts: Sequence[str]) -> Sparse:
    rows, columns, values = [], [], []
    for i, text in enumerate(texts):
        idx, val = features(normalise(text))
        rows.append(np.full(len(idx), i, dtype=np.int64))
        columns.append(idx)
        values.append(val)
    return Sparse(np.concatenate(rows), np.concatenate(columns), np.concatenate(values), len(texts))


def balance(y: Floats, sources: Sequence[str]) -> Floats:
    """Per-window weights: each class weighs half, and within a class a source weighs the
    square root of its size, so the large, easy sets (intents, templates) do not drown the
    small real ones (deepset's attacks, NotInject's trigger words)."""
    keys = [(source, label) for source, label in zip(sources, y.tolist(), strict=True)]
    counts = Counter(keys)
    raw = np.array([1.0 / np.sqrt(counts[k]) for k in keys], dtype=np.float64)
    weight = np.zeros(len(y), dtype=np.float64)
    for label in (0.0, 1.0):
        mask = y == label
        weight[mask] = raw[mask] / raw[mask].sum() * 0.5 * len(y)
    return weight.astype(np.float32)


def fit(x: Sparse, y: Floats, weight: Floats) -> tuple[Floats, float]:
    """Weighted logistic regression by full-batch Adam; `weight` averages 1 per window."""
    w = np.zeros(DIM, dtype=np.float32)
    b = 0.0
    m, v = np.zeros_like(w), np.zeros_like(w)
    mb = vb = 0.0
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    for step in range(1, STEPS + 1):
        p = 1.0 / (1.0 + np.exp(-np.clip(x.dot(w) + b, -30, 30)))
        g = ((p - y) * weight / len(y)).astype(np.float32)
        gw = x.tdot(g) + np.float32(L2) * w
        gb = float(g.sum())
        m = (beta1 * m + (1 - beta1) * gw).astype(np.float32)
        v = (beta2 * v + (1 - beta2) * gw * gw).astype(np.float32)
        mb = beta1 * mb + (1 - beta1) * gb
        vb = beta2 * vb + (1 - beta2) * gb * gb
        correction = np.sqrt(1 - beta2**step) / (1 - beta1**step)
        w -= (LEARNING_RATE * correction * m / (np.sqrt(v) + eps)).astype(np.float32)
        b -= LEARNING_RATE * correction * mb / (np.sqrt(vb) + eps)
    return w, b


def tune(model: InjectionModel, prompts: Sequence[corpus.Prompt]) -> dict[str, object]:
    """Picks the threshold on the tuning split with the real detector; returns the curve."""
    verdicts = InjectionDetector(model, threshold=1.1).scan_now([p.text for p in prompts])
    scores = np.array([t.score for t in verdicts.texts])
    attack = np.array([p.attack for p in prompts])
    real = np.array([not p.source.startswith("synthetic") for p in prompts])
    sources = np.array([p.source for p in prompts])
    benign_sources = sorted(set(sources[~attack & real]))

    def macro_benign(t: float) -> float:
        """Benign flagged, averaged over sources, reported beside the pooled rate: large easy
        sources (intents, role questions) fill much of a pooled quota."""
        return float(
            np.mean([(scores[~attack & (sources == s)] >= t).mean() for s in benign_sources])
        )

    benign_scores = np.sort(scores[~attack & real])
    allowed = int(np.floor(TUNE_BENIGN * len(benign_scores)))
    threshold = float(benign_scores[len(benign_scores) - allowed - 1]) + 1e-6
    threshold = min(max(threshold, 0.05), 0.999)

    def point(t: float) -> dict[str, float]:
        return {
            "threshold": round(t, 4),
            "attacks_caught": round(float((scores[attack] >= t).mean()), 4),
            "real_attacks_caught": round(float((scores[attack & real] >= t).mean()), 4),
            "real_benign_flagged": round(float((scores[~attack & real] >= t).mean()), 4),
            "real_benign_flagged_by_source_mean": round(macro_benign(t), 4),
        }

    by_source = {}
    for source, kind in sorted({(p.source, p.attack) for p in prompts}):
        mask = np.array([p.source == source and p.attack == kind for p in prompts])
        name = f"{source} ({'attack' if kind else 'benign'})"
        by_source[name] = round(float((scores[mask] >= threshold).mean()), 4)
    return {
        "threshold": threshold,
        "shipped": point(threshold),
        "curve": [point(t) for t in CURVE],
        "flagged_by_source": by_source,
    }


def train(data: Path, out: Path) -> dict[str, object]:
    started = time.perf_counter()
    texts, y, sources = training_windows(corpus.load("train", data))
    weights, bias = fit(design(texts), y, balance(y, sources))
    tuning = corpus.load("tune", data)
    chosen = tune(InjectionModel(weights, bias, 0.5), tuning)
    model = InjectionModel(weights, bias, float(chosen.pop("threshold")))  # type: ignore[arg-type]
    out.mkdir(parents=True, exist_ok=True)
    model.save(out / "injection.npz")
    card: dict[str, object] = {
        "training_windows_by_source": dict(sorted(Counter(sources).items())),
        "texts_sha256": hashlib.sha256("\0".join(texts).encode()).hexdigest(),
        "windows": len(y),
        "attacks": int(y.sum()),
        "hyperparameters": {
            "l2": L2,
            "steps": STEPS,
            "learning_rate": LEARNING_RATE,
            "tune_benign": TUNE_BENIGN,
            "seed": corpus.SEED,
        },
        "threshold": round(model.threshold, 6),
        "tune_prompts": len(tuning),
        "tune": chosen,
        "seconds": round(time.perf_counter() - started, 1),
    }
    (out / "injection.json").write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    return card


def _fit_model(prompts: Sequence[corpus.Prompt]) -> InjectionModel:
    texts, y, sources = training_windows(prompts)
    weights, bias = fit(design(texts), y, balance(y, sources))
    return InjectionModel(weights, bias, 0.5)


def _flag_rates(model: InjectionModel, prompts: Sequence[corpus.Prompt]) -> dict[str, float]:
    verdicts = InjectionDetector(model).scan_now([p.text for p in prompts]).texts
    attack = [v.injection for p, v in zip(prompts, verdicts, strict=True) if p.attack]
    benign = [v.injection for p, v in zip(prompts, verdicts, strict=True) if not p.attack]
    rates = {"benign_flagged": round(float(np.mean(benign)), 4)} if benign else {}
    if attack:
        rates["attacks_caught"] = round(float(np.mean(attack)), 4)
    return rates


def validate(data: Path, folds: int = VALIDATION_FOLDS) -> dict[str, object]:
    """How a change to the training data, features or threshold rule generalises, judged on
    training data only, so that it can be chosen before the held-out sources are looked at.

    The tuning split is a fifth of the same sources, so it rewards fitting their style; two
    harder checks: deepset train out of fold (its real attacks, `folds` parts by a hash of the
    text), and each real benign source of `LEFT_OUT` left out of training and tuning whole,
    as a held-out style would be. Every model's threshold is picked as `train` picks it."""
    training, tuning = corpus.load("train", data), corpus.load("tune", data)

    def fold(text: str) -> int:
        return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big") % folds

    deepset = [p for p in training if p.source == "deepset train"]
    others = [p for p in training if p.source != "deepset train"]
    held: list[tuple[corpus.Prompt, bool]] = []
    for k in range(folds):
        part = [p for p in deepset if fold(p.text) == k]
        model = _fit_model([*others, *(p for p in deepset if fold(p.text) != k)])
        model = InjectionModel(model.weights, model.bias, _threshold(model, tuning))
        verdicts = InjectionDetector(model).scan_now([p.text for p in part]).texts
        held += [(p, v.injection) for p, v in zip(part, verdicts, strict=True)]
    report: dict[str, object] = {
        "deepset_train_out_of_fold": {
            "attacks_caught": round(float(np.mean([f for p, f in held if p.attack])), 4),
            "benign_flagged": round(float(np.mean([f for p, f in held if not p.attack])), 4),
        }
    }
    for source in LEFT_OUT:
        model = _fit_model([p for p in training if p.source != source])
        rest = [p for p in tuning if p.source != source]
        model = InjectionModel(model.weights, model.bias, _threshold(model, rest))
        left = [p for p in (*training, *tuning) if p.source == source]
        report[f"{source} left out"] = {
            "threshold": round(model.threshold, 4),
            **_flag_rates(model, left),
        }
    return report


def _threshold(model: InjectionModel, tuning: Sequence[corpus.Prompt]) -> float:
    return float(tune(model, tuning)["threshold"])  # type: ignore[arg-type]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lockgate.safety.train", description=__doc__)
    parser.add_argument("--data", type=Path, default=corpus.DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=MODEL_DIR)
    parser.add_argument(
        "--validate",
        action="store_true",
        help="report out-of-fold and left-out-source rates instead of writing a model",
    )
    args = parser.parse_args(argv)
    if not (args.data / "benign-prompts").is_dir():
        print(f"no benign-prompts/ in {args.data}", file=sys.stderr)
        return 2
    if args.validate:
        print(json.dumps(validate(args.data), indent=2))
        return 0
    print(json.dumps(train(args.data, args.out), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
