"""Trains the semantic cache's verifier, reproducibly, from licence-permissive public pairs.

    python -m lockgate.cache.train_verifier [--data ../shared/data] [--out DIR]

Training pairs (shipped weights may come only from these): BANKING77 train (CC BY 4.0; the
utterances of four folds in five, by a hash of the text) and CLINC150 train (CC BY 3.0;
same-intent pairs only for intents whose answer is one text for every phrasing), plus near
misses made by rule from their questions (`near_misses`, `train` vocabulary). The word rarity
(IDF) table is counted on those questions and on licence-permissive public prompts (OpenAssistant,
Self-Instruct, MT-Bench, IFEval, RoleBench: Apache-2.0; XSTest: CC BY 4.0; NotInject: MIT; the
MakTek support FAQ: Apache-2.0).

The operating point (the cosine floor and the verifier's probability threshold) is chosen on
pairs never trained on: CLINC150 val, the fifth BANKING77 train fold, and the near misses made
from their questions: the widest share of their true pairs served with at most
`TARGET_WRONG` wrong hits on CLINC150 val and `TARGET_WRONG_RULES` on the rule-made pairs.
BANKING77's fine-grained intents make many of its high-similarity "different" pairs
paraphrases ("Is there a way to get a virtual card?" / "can i get a virtual card"), so its
fold counts towards the share served, not the wrong-hit budget. Nothing from the benchmark's
held-out sets is read.

Only pairs that would reach the verifier count: cosine at least `MIN_COSINE` and no hard rule
of the guard refusing them.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import random
import sys
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from lockgate.cache.guard import check, features
from lockgate.cache.near_misses import Pair, near_misses
from lockgate.cache.verifier import (
    CARD,
    FEATURE_NAMES,
    WEIGHTS,
    Verifier,
    Vocabulary,
    lexical_tokens,
    pair_features,
)

DEFAULT_DATA = next(
    (
        parent / "shared" / "data"
        for parent in Path(__file__).resolve().parents[5:8]
        if (parent / "shared" / "data").is_dir()
    ),
    Path(__file__).resolve().parents[5] / "shared" / "data",
)
"""The public data sets, kept beside the repository checkout (or beside a worktree's parent)."""
SEED = 20240613
MIN_COSINE = 0.6
TARGET_WRONG = 0.025
"""Budget on CLINC150 val; the held-out target is 3 %, so this leaves a little room."""
TARGET_WRONG_RULES = 0.01
NEAR_MISS_QUESTIONS = 5000
NEAR_MISS_POSITIVES = 2500
L2_DENSE = 1e-3
L2_LEXICAL = 3e-4
LEXICAL_MIN_COUNT = 3
"""A word's own weight is learned only when it is left unmatched in this many training pairs."""
LEXICAL_KEEP = 0.02
"""Smaller learned word weights are dropped from the shipped file (they change nothing)."""
ITERATIONS = 1500
LEARNING_RATE = 0.05
FLOORS = tuple(round(x, 3) for x in np.arange(0.60, 0.901, 0.01))
PROBABILITIES = tuple(round(x, 3) for x in np.arange(0.30, 0.991, 0.01))
TUNING_FOLD = 5
"""BANKING77 train utterances whose hash is 0 modulo this are kept for tuning."""
IDF_PROMPTS = (
    "oasst-prompts", "self-instruct", "mt-bench-vicuna", "ifeval", "rolebench-questions",
    "xstest", "notinject",
)  # fmt: skip

Array = npt.NDArray[np.float64]


def read_jsonl(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def static_intents(data: Path) -> set[str]:
    labels = json.loads((data / "intents/clinc150/intent_answer_type.json").read_text())
    return {intent for intent, kind in labels["intents"].items() if kind == "static"}


def intent_pairs(path: Path, static: set[str] | None, limit: int, seed: int) -> list[Pair]:
    """Same-intent pairs (only `static` intents for CLINC) and different-intent pairs."""
    rows = read_jsonl(path)
    out = []
    for row in rows:
        same = bool(row["same"])
        if same and static is not None and row["label_a"] not in static:
            continue
        out.append(Pair(str(row["a"]), str(row["b"]), same, str(row["kind"]), str(row["source"])))
    random.Random(seed).shuffle(out)
    return out[:limit]


def banking_questions(data: Path, split: str) -> list[str]:
    with (data / f"intents/banking77/{split}.csv").open(encoding="utf-8") as handle:
        return [row["text"] for row in csv.DictReader(handle)]


def clinc_questions(data: Path, split: str, static: set[str]) -> list[str]:
    full = json.loads((data / "intents/clinc150/data_full.json").read_text())
    return [text for text, intent in full[split] if intent in static]


def tuning_fold(text: str) -> bool:
    """Whether a BANKING77 train utterance is kept for tuning (stable across runs)."""
    return int(hashlib.md5(text.encode(), usedforsecurity=False).hexdigest(), 16) % TUNING_FOLD == 0


def training_pairs(data: Path) -> list[Pair]:
    static = static_intents(data)
    banking = [
        p
        for p in intent_pairs(data / "intents/banking77/pairs.train.jsonl", None, 10**6, SEED)
        if not tuning_fold(p.a) and not tuning_fold(p.b)
    ]
    clinc = intent_pairs(data / "intents/clinc150/pairs.train.jsonl", static, 10**6, SEED)
    rng = random.Random(SEED)
    questions = [q for q in banking_questions(data, "train") if not tuning_fold(q)]
    questions += clinc_questions(data, "train", static)
    rng.shuffle(questions)
    positives = [(p.a, p.b) for p in banking + clinc if p.same]
    rng.shuffle(positives)
    rules = near_misses(
        questions[:NEAR_MISS_QUESTIONS], positives[:NEAR_MISS_POSITIVES], "train", seed=SEED
    )
    return banking + clinc + rules


def tuning_sets(data: Path) -> dict[str, list[Pair]]:
    """Pairs for the operating point, none trained on: natural (CLINC150 val, the BANKING77
    tuning fold) and rule-made from their questions."""
    static = static_intents(data)
    clinc = intent_pairs(data / "intents/clinc150/pairs.val.jsonl", static, 10**6, SEED)
    banking = [
        p
        for p in intent_pairs(data / "intents/banking77/pairs.train.jsonl", None, 10**6, SEED)
        if tuning_fold(p.a) and tuning_fold(p.b)
    ]
    rules = near_misses(
        clinc_questions(data, "val", static),
        [(p.a, p.b) for p in clinc if p.same],
        "train",
        seed=SEED + 1,
    )
    rules += near_misses(
        [q for q in banking_questions(data, "train") if tuning_fold(q)],
        [(p.a, p.b) for p in banking if p.same],
        "train",
        seed=SEED + 2,
    )
    return {"clinc": clinc, "banking": banking, "rules": rules}


def idf_texts(data: Path) -> list[str]:
    """Licence-permissive public questions and prompts the word rarity is counted on."""
    texts = banking_questions(data, "train")
    full = json.loads((data / "intents/clinc150/data_full.json").read_text())
    texts += [text for text, _ in full["train"] + full["oos_train"]]
    for name in IDF_PROMPTS:
        rows = read_jsonl(data / "benign-prompts" / name / "prompts.jsonl")
        texts += [str(row["text"])[:1000] for row in rows]
    faq = data / "support-kb/maktek-customer-support-faqs/customer_support_faqs.dedup.json"
    texts += [str(row["question"]) for row in json.loads(faq.read_text())]
    return texts


def vocabulary(texts: Sequence[str]) -> Vocabulary:
    """IDF of content stems seen at least twice; unseen stems get the largest IDF."""
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(features(text).content)
    n = len(texts)
    idf = {w: round(math.log((n + 1) / (c + 1)), 2) for w, c in counts.items() if c >= 2}
    return Vocabulary(idf, round(math.log(n + 1), 2))


class Embeddings:
    """MiniLM vectors of every distinct text, cached on disk text by text, so a new training
    set embeds only the texts it adds."""

    def __init__(self, cache_dir: Path | None = None) -> None:
        self.cache_dir = cache_dir
        self.vectors: dict[str, npt.NDArray[np.float32]] = {}

    def add(self, texts: Iterable[str]) -> None:
        from lockgate.embeddings.local import MiniLMEmbedder

        embedder = MiniLMEmbedder()
        path = self.cache_dir / f"verifier-{embedder.name}.npz" if self.cache_dir else None
        if path is not None and path.exists() and not self.vectors:
            stored = np.load(path)
            self.vectors.update(
                zip((str(t) for t in stored["texts"]), stored["vectors"], strict=True)
            )
        distinct = sorted(set(texts) - set(self.vectors))
        if distinct:
            self.vectors.update(zip(distinct, embedder.embed_sync(distinct), strict=True))
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                known = sorted(self.vectors)
                np.savez(
                    path,
                    texts=np.array(known, dtype=str),
                    vectors=np.stack([self.vectors[t] for t in known]),
                )
        embedder.close()

    def cosine(self, pairs: Sequence[Pair]) -> Array:
        return np.array([float(self.vectors[p.a] @ self.vectors[p.b]) for p in pairs])


def candidates(pairs: Sequence[Pair], cosine: Array) -> tuple[list[Pair], Array]:
    """The pairs that reach the verifier: near enough, and no hard rule refusing them."""
    kept = [
        i
        for i, p in enumerate(pairs)
        if cosine[i] >= MIN_COSINE and check(p.b, p.a, strict=False, soft=False).ok
    ]
    return [pairs[i] for i in kept], cosine[kept]


def matrix(pairs: Sequence[Pair], cosine: Array, words: Vocabulary) -> Array:
    if not pairs:
        return np.zeros((0, len(FEATURE_NAMES)))
    return np.stack(
        [pair_features(p.b, p.a, float(c), words) for p, c in zip(pairs, cosine, strict=True)]
    )


def fit(
    x: Array, y: Array, tokens: Sequence[set[str]]
) -> tuple[Array, float, Array, Array, dict[str, float]]:
    """Class-balanced logistic regression on the standardised dense features plus one weight
    per frequent lexical token, by full-batch Adam (deterministic)."""
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale == 0] = 1.0
    z = (x - mean) / scale
    counts = Counter(t for row in tokens for t in row)
    index = {
        t: i for i, t in enumerate(sorted(t for t, n in counts.items() if n >= LEXICAL_MIN_COUNT))
    }
    cells = [(r, index[t]) for r, row in enumerate(tokens) for t in row if t in index]
    rows = np.array([r for r, _ in cells], dtype=np.int64)
    cols = np.array([c for _, c in cells], dtype=np.int64)
    balance = np.where(y == 1, 0.5 / max(y.mean(), 1e-9), 0.5 / max(1 - y.mean(), 1e-9))
    params = [np.zeros(z.shape[1]), np.zeros(len(index)), np.zeros(1)]
    first = [np.zeros_like(p) for p in params]
    second = [np.zeros_like(p) for p in params]
    for step in range(1, ITERATIONS + 1):
        w, v, b = params
        lexical = np.bincount(rows, weights=v[cols], minlength=len(y))
        p = 1.0 / (1.0 + np.exp(-np.clip(z @ w + b[0] + lexical, -30, 30)))
        g = (p - y) * balance / len(y)
        grads = [
            z.T @ g + L2_DENSE * w,
            np.bincount(cols, weights=g[rows], minlength=len(index)) + L2_LEXICAL * v,
            np.array([g.sum()]),
        ]
        for i, grad in enumerate(grads):
            first[i] = 0.9 * first[i] + 0.1 * grad
            second[i] = 0.999 * second[i] + 0.001 * grad**2
            m_hat = first[i] / (1 - 0.9**step)
            v_hat = second[i] / (1 - 0.999**step)
            params[i] -= LEARNING_RATE * m_hat / (np.sqrt(v_hat) + 1e-8)
    w, v, b = params
    lexical_weights = {
        t: round(float(v[i]), 4) for t, i in index.items() if abs(v[i]) >= LEXICAL_KEEP
    }
    return w, float(b[0]), mean, scale, lexical_weights


HIDDEN = 16
L2_HIDDEN = 1e-3


def fit_hidden(
    x: Array, y: Array, tokens: Sequence[set[str]], hidden: int = HIDDEN
) -> tuple[Array, float, Array, Array, dict[str, float], Array, Array, Array]:
    """`fit`'s model plus a hidden layer of `hidden` rectified units on the dense features,
    trained jointly: lets the cosine's weight depend on how the words align."""
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale == 0] = 1.0
    z = (x - mean) / scale
    counts = Counter(t for row in tokens for t in row)
    index = {
        t: i for i, t in enumerate(sorted(t for t, n in counts.items() if n >= LEXICAL_MIN_COUNT))
    }
    cells = [(r, index[t]) for r, row in enumerate(tokens) for t in row if t in index]
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
        rng.normal(0, 1 / math.sqrt(hidden), hidden) * 0.1,
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
    w, v, b, w1, b1, w2 = params
    lexical_weights = {
        t: round(float(v[i]), 4) for t, i in index.items() if abs(v[i]) >= LEXICAL_KEEP
    }
    return w, float(b[0]), mean, scale, lexical_weights, w1, b1, w2


def decisions(
    verifier: Verifier, pairs: Sequence[Pair], cosine: Array
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_], Array]:
    """(labels, hard rules pass, verifier probability) per pair."""
    labels = np.array([p.same for p in pairs])
    hard_ok = np.array([check(p.b, p.a, strict=False, soft=False).ok for p in pairs])
    prob = np.array(
        [verifier.probability(p.b, p.a, float(c)) if ok else 0.0
         for p, c, ok in zip(pairs, cosine, hard_ok, strict=True)]
    )  # fmt: skip
    return labels, hard_ok, prob


def operating_point(
    verifier: Verifier, sets: dict[str, tuple[Sequence[Pair], Array]]
) -> dict[str, float]:
    """The floor and probability serving the widest share of the natural true pairs within
    the wrong-hit budgets (CLINC150 val, rule-made pairs)."""
    judged = {name: (*decisions(verifier, pairs, cos), cos) for name, (pairs, cos) in sets.items()}
    best: dict[str, float] = {"floor": 0.9, "probability": 0.99, "share": 0.0}
    for floor in FLOORS:
        for threshold in PROBABILITIES:
            stats = {}
            for name, (labels, hard_ok, prob, cos) in judged.items():
                served = (cos >= floor) & hard_ok & (prob >= threshold)
                hits = int(served.sum())
                stats[name] = (
                    int((served & labels).sum()),
                    int(labels.sum()),
                    int((served & ~labels).sum()) / hits if hits else 0.0,
                    hits,
                )
            if stats["clinc"][3] < 20:
                continue
            if stats["clinc"][2] > TARGET_WRONG or stats["rules"][2] > TARGET_WRONG_RULES:
                continue
            share = (stats["clinc"][0] + stats["banking"][0]) / max(
                stats["clinc"][1] + stats["banking"][1], 1
            )
            if share > best["share"] + 1e-9:
                best = {"floor": floor, "probability": threshold, "share": round(share, 4)}
                for name, (_, _, wrong, _) in stats.items():
                    best[f"{name}_wrong"] = round(wrong, 4)
                    best[f"{name}_share"] = round(stats[name][0] / max(stats[name][1], 1), 4)
    return best


def train(data: Path, out: Path, cache_dir: Path | None) -> dict[str, object]:
    started = time.perf_counter()
    train_set, tune = training_pairs(data), tuning_sets(data)
    embeddings = Embeddings(cache_dir)
    embeddings.add(t for ps in [train_set, *tune.values()] for p in ps for t in (p.a, p.b))
    words = vocabulary(idf_texts(data))
    kept, cosine = candidates(train_set, embeddings.cosine(train_set))
    x = matrix(kept, cosine, words)
    y = np.array([float(p.same) for p in kept])
    w, b, mean, scale, lexical = fit(x, y, [lexical_tokens(p.b, p.a) for p in kept])
    verifier = Verifier(w, b, mean, scale, 0.5, lexical, words)
    point = operating_point(
        verifier, {name: (pairs, embeddings.cosine(pairs)) for name, pairs in tune.items()}
    )
    verifier = Verifier(w, b, mean, scale, point["probability"], lexical, words)
    verifier.save(out / WEIGHTS.name)
    card: dict[str, object] = {
        "training": "BANKING77 train (CC BY 4.0; four folds in five), CLINC150 train (CC BY 3.0, "
        "static-answer intents for same-intent pairs) + rule-made near misses from their questions",
        "tuning": "CLINC150 val, the fifth BANKING77 train fold + rule-made near misses from "
        "their questions (train vocabulary)",
        "idf": "BANKING77 train, CLINC150 train, OpenAssistant, Self-Instruct, MT-Bench, IFEval, "
        "RoleBench prompts (Apache-2.0), XSTest (CC BY 4.0), NotInject (MIT), MakTek FAQ "
        "(Apache-2.0)",
        "training_pairs": len(train_set),
        "training_candidates": len(kept),
        "candidate_positive_share": round(float(y.mean()), 4),
        "min_cosine": MIN_COSINE,
        "lexical_weights": len(lexical),
        "idf_stems": len(words.idf),
        "weights": {n: round(float(v), 4) for n, v in zip(FEATURE_NAMES, w, strict=True)},
        "operating_point": {
            **point,
            "target_wrong": TARGET_WRONG,
            "target_wrong_rules": TARGET_WRONG_RULES,
        },
        "seed": SEED,
        "seconds": round(time.perf_counter() - started, 1),
    }
    (out / CARD.name).write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    return card


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lockgate.cache.train_verifier")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=WEIGHTS.parent)
    parser.add_argument("--cache", type=Path, default=None, help="embedding cache directory")
    args = parser.parse_args(argv)
    if not (args.data / "intents" / "banking77").is_dir():
        print(f"no intents/banking77 under {args.data}", file=sys.stderr)
        return 2
    print(json.dumps(train(args.data, args.out, args.cache), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
