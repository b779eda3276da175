"""Trains the injection classifier from licence-permissive public prompts, reproducibly.

    python -m lockgate.safety.train [--data DIR] [--out DIR] [--cache DIR]

Reads only the training sources of `lockgate.safety.corpus` (attacks: deepset train, PALLMs;
benign: role-play, system prompts, imperative tasks, code, constrained instructions, trigger
words and non-English first turns); the held-out sources are for `bench.safety`. Long texts
are split into the detector's own windows. Steps: embed every window with the bundled MiniLM;
fit two class-balanced L2-regularised logistic regressions with plain gradient descent (numpy,
fixed seed, fixed iterations); pick thresholds from 5-fold out-of-fold scores:

- the full classifier's threshold is the `BENIGN_QUANTILE` of benign out-of-fold scores, i.e.
  the target of at most 1 % of benign training prompts flagged;
- the fast classifier lets a text through without embedding it below the score that at most
  `FAST_MISS` of out-of-fold attacks fall under;
- the similarity layer fires when a text's nearest known attack is at least 0.8 cosine away and
  nearer than its nearest benign training prompt.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from lockgate.safety import corpus
from lockgate.safety.features import ngram_features, normalise, rule_features
from lockgate.safety.injection import windows
from lockgate.safety.model import MODEL_DIR, InjectionModel

SEED = 0
FOLDS = 5
L2 = 3e-4
ITERATIONS = 400
LEARNING_RATE = 4.0
BENIGN_QUANTILE = 0.99
FAST_MISS = 0.01
MIN_SIMILARITY = 0.8

Matrix = npt.NDArray[np.float32]


def training_windows(data: Path) -> tuple[list[str], npt.NDArray[np.float32], list[str]]:
    """(window texts, labels, sources): benign texts in the detector's windows, each attack as
    its first window (the rest of a long attack may read as ordinary text)."""
    texts, labels, sources = [], [], []
    for prompt in corpus.load("train", data):
        parts = windows(prompt.text)
        for part in parts[:1] if prompt.attack else parts:
            texts.append(part)
            labels.append(1.0 if prompt.attack else 0.0)
            sources.append(prompt.source)
    return texts, np.array(labels, dtype=np.float32), sources


def embed(texts: Sequence[str], cache: Path | None) -> tuple[Matrix, str, int]:
    """MiniLM vectors, from `cache` when the same model embedded the same texts before."""
    from lockgate.embeddings.local import MiniLMEmbedder

    embedder = MiniLMEmbedder()
    digest = hashlib.sha256(json.dumps([embedder.name, list(texts)]).encode()).hexdigest()[:16]
    path = cache / f"safety-{digest}.npy" if cache is not None else None
    if path is not None and path.exists():
        vectors = np.load(path)
    else:
        vectors = asyncio.run(embedder.embed(list(texts)))
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            np.save(path, vectors)
    embedder.close()
    return vectors.astype(np.float32), embedder.name, embedder.dimensions


def text_features(texts: Sequence[str]) -> Matrix:
    """[n-grams, rules] per text: the fast classifier's input and the tail of the full one's."""
    rows = []
    for text in texts:
        norm = normalise(text)
        rows.append(np.concatenate([ngram_features(norm), rule_features(norm)]))
    return np.stack(rows).astype(np.float32)


def fit(x: Matrix, y: npt.NDArray[np.float32]) -> tuple[Matrix, float]:
    """Class-balanced logistic regression by full-batch gradient descent: deterministic, no
    dependencies. Balanced because benign windows outnumber attacks about fifteen to one."""
    w = np.zeros(x.shape[1], dtype=np.float32)
    b = np.float32(0.0)
    positive = max(float(y.mean()), 1e-6)
    weight = np.where(y == 1, 0.5 / positive, 0.5 / (1 - positive)).astype(np.float32)
    for _ in range(ITERATIONS):
        p = _sigmoid(x @ w + b)
        g = ((p - y) * weight).astype(np.float32)
        w -= np.float32(LEARNING_RATE) * (x.T @ g / np.float32(len(y)) + np.float32(L2) * w)
        b -= np.float32(LEARNING_RATE) * g.mean()
    return w, float(b)


def out_of_fold(x: Matrix, y: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    order = np.random.default_rng(SEED).permutation(len(y))
    scores = np.zeros(len(y), dtype=np.float32)
    for fold in np.array_split(order, FOLDS):
        train = np.ones(len(y), dtype=bool)
        train[fold] = False
        w, b = fit(x[train], y[train])
        scores[fold] = _sigmoid(x[fold] @ w + b)
    return scores


def _sigmoid(z: Matrix) -> Matrix:
    out: Matrix = (1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))).astype(np.float32)
    return out


def train(data: Path, out: Path, cache: Path | None = None) -> dict[str, object]:
    started = time.perf_counter()
    texts, y, sources = training_windows(data)
    vectors, embedder_name, dimensions = embed(texts, cache)
    fast_x = text_features(texts)
    full_x = np.hstack([vectors, fast_x]).astype(np.float32)

    fast_oof = out_of_fold(fast_x, y)
    full_oof = out_of_fold(full_x, y)
    threshold = float(np.quantile(full_oof[y == 0], BENIGN_QUANTILE)) + 1e-6
    fast_pass_below = float(np.quantile(fast_oof[y == 1], FAST_MISS))
    attacks = vectors[y == 1]
    similarity_threshold = MIN_SIMILARITY

    fast_w, fast_b = fit(fast_x, y)
    full_w, full_b = fit(full_x, y)
    model = InjectionModel(
        fast_w=fast_w,
        fast_b=fast_b,
        full_w=full_w,
        full_b=full_b,
        attacks=attacks,
        benign=vectors[y == 0],
        threshold=threshold,
        fast_pass_below=fast_pass_below,
        similarity_threshold=similarity_threshold,
        embedder=embedder_name,
        dimensions=dimensions,
    )
    out.mkdir(parents=True, exist_ok=True)
    model.save(out / "injection.npz")
    caught = full_oof >= threshold
    card: dict[str, object] = {
        "training_sources": dict(sorted(Counter(sources).items())),
        "texts_sha256": hashlib.sha256("\0".join(texts).encode()).hexdigest(),
        "windows": len(y),
        "attacks": int(y.sum()),
        "embedder": embedder_name,
        "hyperparameters": {
            "l2": L2,
            "iterations": ITERATIONS,
            "learning_rate": LEARNING_RATE,
            "folds": FOLDS,
            "seed": SEED,
            "benign_quantile": BENIGN_QUANTILE,
            "fast_miss": FAST_MISS,
        },
        "thresholds": {
            "full": round(threshold, 6),
            "fast_pass_below": round(fast_pass_below, 6),
            "similarity": round(similarity_threshold, 6),
        },
        "cross_validation": {
            "recall": round(float(caught[y == 1].mean()), 4),
            "benign_flagged": round(float(caught[y == 0].mean()), 4),
            "fast_passes_benign": round(float((fast_oof[y == 0] < fast_pass_below).mean()), 4),
        },
        "seconds": round(time.perf_counter() - started, 1),
    }
    (out / "injection.json").write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    return card


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lockgate.safety.train", description=__doc__)
    parser.add_argument("--data", type=Path, default=corpus.DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=MODEL_DIR)
    parser.add_argument("--cache", type=Path, default=None, help="embedding cache directory")
    args = parser.parse_args(argv)
    if not (args.data / "benign-prompts").is_dir():
        print(f"no benign-prompts/ in {args.data}", file=sys.stderr)
        return 2
    print(json.dumps(train(args.data, args.out, args.cache), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
