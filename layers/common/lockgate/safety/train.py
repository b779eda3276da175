"""Trains the injection classifier from the public set, reproducibly, in about a minute.

    python -m lockgate.safety.train [--data DIR] [--out DIR]

Reads only the training split (`train.jsonl`) of deepset/prompt-injections; the test split is
for `bench.safety`. Steps: embed every text with the bundled MiniLM; fit two L2-regularised
logistic regressions with plain gradient descent (numpy, fixed seed, fixed iterations); pick
thresholds from 5-fold out-of-fold scores on the training split only:

- the full classifier's threshold is the 98th percentile of benign out-of-fold scores, i.e. the
  target of at most 2 % benign prompts blocked;
- the fast classifier lets a text through without embedding it below the score that at most
  1 % of out-of-fold injections fall under;
- the similarity layer fires when a text's nearest known attack is at least 0.8 cosine away and
  nearer than its nearest benign training prompt (the set has benign prompts on the same topics
  as attacks, some at 0.97 cosine, so a bare threshold would either never fire or misfire).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from lockgate.safety.features import ngram_features, normalise, rule_features
from lockgate.safety.model import MODEL_DIR, InjectionModel

DEFAULT_DATA = Path(__file__).resolve().parents[4] / "tests" / "fixtures" / "prompt-injection"
SEED = 0
FOLDS = 5
L2 = 3e-4
ITERATIONS = 400
LEARNING_RATE = 4.0
BENIGN_QUANTILE = 0.98
FAST_MISS = 0.01
MIN_SIMILARITY = 0.8

Matrix = npt.NDArray[np.float32]


def load_split(path: Path) -> tuple[list[str], npt.NDArray[np.float32]]:
    texts, labels = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        texts.append(str(row["text"]))
        labels.append(float(row["label"]))
    return texts, np.array(labels, dtype=np.float32)


def text_features(texts: Sequence[str]) -> Matrix:
    """[n-grams, rules] per text: the fast classifier's input and the tail of the full one's."""
    rows = []
    for text in texts:
        norm = normalise(text)
        rows.append(np.concatenate([ngram_features(norm), rule_features(norm)]))
    return np.stack(rows).astype(np.float32)


def fit(x: Matrix, y: npt.NDArray[np.float32]) -> tuple[Matrix, float]:
    """Logistic regression by full-batch gradient descent: deterministic, no dependencies."""
    w = np.zeros(x.shape[1], dtype=np.float32)
    b = np.float32(0.0)
    for _ in range(ITERATIONS):
        p = _sigmoid(x @ w + b)
        g = (p - y).astype(np.float32)
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


def train(data: Path, out: Path) -> dict[str, object]:
    from lockgate.embeddings.local import MiniLMEmbedder

    started = time.perf_counter()
    source = data / "train.jsonl"
    texts, y = load_split(source)
    embedder = MiniLMEmbedder()
    vectors = asyncio.run(embedder.embed(texts))
    embedder.close()
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
        embedder=embedder.name,
        dimensions=embedder.dimensions,
    )
    out.mkdir(parents=True, exist_ok=True)
    model.save(out / "injection.npz")
    caught = full_oof >= threshold
    card: dict[str, object] = {
        "dataset": "deepset/prompt-injections (Apache-2.0), train split only",
        "source_sha256": hashlib.sha256(source.read_bytes()).hexdigest(),
        "rows": len(y),
        "injections": int(y.sum()),
        "embedder": embedder.name,
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
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=MODEL_DIR)
    args = parser.parse_args(argv)
    if not (args.data / "train.jsonl").is_file():
        print(f"no train.jsonl in {args.data}", file=sys.stderr)
        return 2
    print(json.dumps(train(args.data, args.out), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
