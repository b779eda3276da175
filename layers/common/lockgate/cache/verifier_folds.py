"""Question-disjoint folds over the verifier's training sources, and the pairs made inside them.

The held-out sets pair questions of the test splits with each other, on the intents training
saw. A validation that mirrors that splits the training questions (not the intents) into
`FOLDS` folds by a hash of the text and pairs each fold's questions only with each other, the
way the data sets' own pairs were derived (`intents/*/SOURCE.md`): per anchor a random question
of the same intent, the other-intent question sharing the most content words (Jaccard), and a
random other-intent one; out-of-scope questions get no positive and never meet each other. Five
folds of BANKING77 train and CLINC150 train + val give about twenty times the candidate pairs
CLINC150 val alone gave, so a change of a point can be told from noise.
"""

from __future__ import annotations

import csv
import hashlib
import json
import random
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lockgate.cache.guard import STOPWORDS
from lockgate.cache.near_misses import Pair

FOLDS = 5
NEIGHBOURS = 40
"""Most-overlapping other-intent questions kept per anchor; a fold holds one in five of them,
so the hardest one inside any fold is almost always among these."""
OUT_OF_SCOPE = "oos"
_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


@dataclass(frozen=True, slots=True)
class Utterance:
    text: str
    intent: str
    source: str


def fold_of(text: str) -> int:
    """Stable across runs and machines; fold 0 is the BANKING77 fold the card's tuning used."""
    return int(hashlib.md5(text.encode(), usedforsecurity=False).hexdigest(), 16) % FOLDS


def _normalised(text: str) -> tuple[str, ...]:
    return tuple(_TOKEN.findall(text.lower()))


def utterances(data: Path) -> dict[str, list[Utterance]]:
    """BANKING77 train and CLINC150 train + val (with their out-of-scope questions), each
    deduplicated on normalised text."""
    out: dict[str, list[Utterance]] = {"banking77": [], "clinc150": []}
    with (data / "intents/banking77/train.csv").open(encoding="utf-8") as handle:
        rows = [(row["text"], row["category"]) for row in csv.DictReader(handle)]
    full = json.loads((data / "intents/clinc150/data_full.json").read_text())
    clinc = [(str(t), str(i)) for key in ("train", "val", "oos_train", "oos_val") for t, i in full[key]]
    for source, items in (("banking77", rows), ("clinc150", clinc)):
        seen: set[tuple[str, ...]] = set()
        for text, intent in items:
            key = _normalised(text)
            if key and key not in seen:
                seen.add(key)
                out[source].append(Utterance(text, intent, source))
    return out


def neighbours(items: Sequence[Utterance], top: int = NEIGHBOURS) -> list[list[int]]:
    """Per utterance, the other-intent utterances by falling content-word Jaccard (ties in a
    seeded random order), those sharing no content word left out. Out-of-scope questions
    are never listed for each other."""
    sets = [frozenset(_normalised(u.text)) - STOPWORDS for u in items]
    counts: dict[str, int] = defaultdict(int)
    for words in sets:
        for w in words:
            counts[w] += 1
    vocab = {w: i for i, w in enumerate(sorted(w for w, c in counts.items() if c >= 2))}
    x = np.zeros((len(items), len(vocab)), dtype=np.float32)
    for r, words in enumerate(sets):
        for w in words:
            if w in vocab:
                x[r, vocab[w]] = 1.0
    sizes = np.array([len(s) for s in sets], dtype=np.float32)
    intents = np.array([u.intent for u in items])
    oos = intents == OUT_OF_SCOPE
    jitter = np.random.default_rng(20240613).random(len(items)).astype(np.float32) * 1e-4
    out: list[list[int]] = []
    for start in range(0, len(items), 512):
        stop = min(start + 512, len(items))
        inter = x[start:stop] @ x.T
        union = sizes[start:stop, None] + sizes[None, :] - inter
        jaccard = np.where(union > 0, inter / np.maximum(union, 1), 0.0)
        jaccard[intents[start:stop, None] == intents[None, :]] = 0.0
        jaccard[oos[start:stop, None] & oos[None, :]] = 0.0
        ranked = np.argsort(-(jaccard + jitter[None, :] * (jaccard > 0)), axis=1)[:, :top]
        for r, row in enumerate(ranked):
            out.append([int(j) for j in row if jaccard[r, j] > 0])
    return out


def cosine_neighbours(
    items: Sequence[Utterance], vectors: np.ndarray, top: int = NEIGHBOURS
) -> list[list[int]]:
    """Per utterance, the other-intent utterances nearest in embedding: the candidates a
    semantic cache actually meets, harder than the most word-sharing ones."""
    intents = np.array([u.intent for u in items])
    oos = intents == OUT_OF_SCOPE
    out: list[list[int]] = []
    for start in range(0, len(items), 512):
        stop = min(start + 512, len(items))
        sim = vectors[start:stop] @ vectors.T
        sim[intents[start:stop, None] == intents[None, :]] = -1.0
        sim[oos[start:stop, None] & oos[None, :]] = -1.0
        ranked = np.argsort(-sim, axis=1)[:, :top]
        out += [[int(j) for j in row] for row in ranked]
    return out


def intent_pairs(
    items: Sequence[Utterance],
    near: Sequence[Sequence[int]],
    members: Sequence[int],
    *,
    static: set[str] | None,
    seed: int,
    per_anchor: tuple[int, ...] = (1, 1, 1),
    nearest: Sequence[Sequence[int]] | None = None,
) -> list[Pair]:
    """Pairs among `members` only: per anchor `per_anchor` = (same-intent, hardest
    other-intent, random other-intent) pairs. Same-intent pairs count only for `static`
    intents (CLINC150: one answer for every phrasing); None keeps all."""
    rng = random.Random(seed)
    inside = set(members)
    by_intent: dict[str, list[int]] = defaultdict(list)
    for i in members:
        by_intent[items[i].intent].append(i)
    pool = list(members)
    order = list(members)
    rng.shuffle(order)
    seen: set[tuple[int, int]] = set()
    out: list[Pair] = []
    positives, hard, random_ = per_anchor[:3]
    mined = per_anchor[3] if len(per_anchor) > 3 and nearest is not None else 0

    def emit(i: int, j: int, same: bool, kind: str) -> None:
        key = (min(i, j), max(i, j))
        if i == j or key in seen:
            return
        seen.add(key)
        if same and static is not None and items[i].intent not in static:
            return
        out.append(Pair(items[i].text, items[j].text, same, kind, items[i].source))

    for i in order:
        intent = items[i].intent
        if intent != OUT_OF_SCOPE:
            mates = [j for j in by_intent[intent] if j != i]
            for j in rng.sample(mates, min(positives, len(mates))):
                emit(i, j, True, "pos")
        for j in [j for j in near[i] if j in inside][:hard]:
            emit(i, j, False, "neg_hard")
        if mined and nearest is not None:
            for j in [j for j in nearest[i] if j in inside][:mined]:
                emit(i, j, False, "neg_nearest")
        for _ in range(random_):
            for _attempt in range(20):
                j = rng.choice(pool)
                other = items[j].intent
                if other != intent and not (intent == OUT_OF_SCOPE and other == OUT_OF_SCOPE):
                    emit(i, j, False, "neg_random")
                    break
    return out
