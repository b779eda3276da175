"""The verifier's training data: licence-permissive public questions, split into folds.

Pairs come from BANKING77 train (CC BY 4.0) and CLINC150 train + val (CC BY 3.0). The held-out
sets pair questions of the test splits with each other, on the intents training saw, so the
questions (not the intents) are split into `FOLDS` folds by a hash of the text and each fold's
questions are paired only with each other, the way the data sets' own pairs were derived
(`intents/*/SOURCE.md`): per anchor random questions of the same intent, the other-intent
questions sharing the most content words (Jaccard), and random other-intent ones; out-of-scope
questions get no positive and never meet each other. Same-intent pairs count for CLINC150 only
in intents whose answer is one text for every phrasing. Rule-made near misses
(`near_misses`, `train` vocabulary) are made from each fold's questions. The five folds hold
some 65,000 validation pairs (12,000 true) where CLINC150 val alone gave about 430 candidates,
so a change of a point can be told from noise.

The word rarity (IDF) table is counted on those questions and on licence-permissive public
prompts (OpenAssistant, Self-Instruct, MT-Bench, IFEval, RoleBench: Apache-2.0; XSTest: CC BY
4.0; NotInject: MIT; the MakTek support FAQ: Apache-2.0).

A deployment can add its own questions (`question_groups`): questions that share one answer
share a group. They are paired and split like the built-in sources, and their words join the
rarity table.
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
import math
import random
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from lockgate.cache.guard import STOPWORDS, features
from lockgate.cache.near_misses import Pair, near_misses
from lockgate.cache.verifier import Vocabulary

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
PER_ANCHOR = (5, 5, 1)
"""Training pairs per question: same-intent, most word-sharing other-intent, random
other-intent. Five of the first two make fewer wrong hits at the same share served on the
folds than three, and three fewer than the data sets' one each; mining the nearest other
intent by embedding instead teaches BANKING77's paraphrases labelled as two intents and does
worse."""
RULE_QUESTIONS = 1000
RULE_POSITIVES = 500
"""Per fold: questions and same-intent pairs the near misses are made from."""
IDF_PROMPTS = (
    "oasst-prompts", "self-instruct", "mt-bench-vicuna", "ifeval", "rolebench-questions",
    "xstest", "notinject",
)  # fmt: skip
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
    """Stable across runs and machines, unlike Python's string hash."""
    return int(hashlib.md5(text.encode(), usedforsecurity=False).hexdigest(), 16) % FOLDS


def _normalised(text: str) -> tuple[str, ...]:
    return tuple(_TOKEN.findall(text.lower()))


BUILTIN = ("banking77", "clinc150")
GROUPS = "groups"
"""The source name of a deployment's own questions."""
FIXED, VARYING = "group:", "varies:"
"""Intent prefixes of a deployment's groups: one answer for all its questions, or not (whose
questions are then never paired with each other)."""


class TrainingDataError(ValueError):
    """Training data that cannot be used (a groups file's bad line, an unknown source): says
    where and why."""


def utterances(data: Path, builtin: Sequence[str] = BUILTIN) -> dict[str, list[Utterance]]:
    """BANKING77 train and CLINC150 train + val (with their out-of-scope questions), each
    deduplicated on normalised text; `builtin` names the ones to read."""
    unknown = set(builtin) - set(BUILTIN)
    if unknown:
        raise TrainingDataError(f"unknown built-in sources: {', '.join(sorted(unknown))}")
    read: dict[str, list[tuple[str, str]]] = {}
    if "banking77" in builtin:
        with (data / "intents/banking77/train.csv").open(encoding="utf-8") as handle:
            read["banking77"] = [(row["text"], row["category"]) for row in csv.DictReader(handle)]
    if "clinc150" in builtin:
        full = json.loads((data / "intents/clinc150/data_full.json").read_text())
        keys = ("train", "val", "oos_train", "oos_val")
        read["clinc150"] = [(str(t), str(i)) for key in keys for t, i in full[key]]
    return {source: _deduplicated(source, rows) for source, rows in read.items()}


def question_groups(path: Path) -> list[Utterance]:
    """A deployment's own questions, one JSON object per line: `{"text": ..., "group": ...}`.
    Questions of one group get one answer. `"answer_varies": true` marks a group whose answer
    depends on more than the question ("what's the weather"): its questions are never paired
    with each other, only with other groups'. A `null` group marks a question whose answer no
    other question shares (it is only ever a contrast). Needs two groups of two questions at
    least, or there is nothing to learn from."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise TrainingDataError(f"{path}: cannot be read ({e})") from None
    rows: list[tuple[str, str]] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise TrainingDataError(f"{path}:{number}: not JSON ({e.msg})") from None
        if not isinstance(row, dict) or not isinstance(row.get("text"), str):
            raise TrainingDataError(f'{path}:{number}: expected {{"text": "...", "group": "..."}}')
        group, varies = row.get("group"), row.get("answer_varies", False)
        if group is not None and not (isinstance(group, str) and group.strip()):
            raise TrainingDataError(f"{path}:{number}: a group is a non-empty string or null")
        if not isinstance(varies, bool):
            raise TrainingDataError(f"{path}:{number}: answer_varies is true or false")
        if row["text"].strip():
            intent = f"{VARYING if varies else FIXED}{group}"
            rows.append((row["text"], OUT_OF_SCOPE if group is None else intent))
    sizes = Counter(g for _, g in rows if g.startswith(FIXED))
    if sum(1 for n in sizes.values() if n >= 2) < 2:
        raise TrainingDataError(f"{path}: needs at least two groups with two questions each")
    return _deduplicated(GROUPS, rows)


def _pairable(name: str, items: Sequence[Utterance], static: set[str]) -> set[str] | None:
    """The intents whose questions may be paired as the same question; None: all of them."""
    if name == "clinc150":
        return static
    if name == GROUPS:
        return {u.intent for u in items if not u.intent.startswith(VARYING)}
    return None


def _deduplicated(source: str, rows: Iterable[tuple[str, str]]) -> list[Utterance]:
    seen: set[tuple[str, ...]] = set()
    out = []
    for text, intent in rows:
        key = _normalised(text)
        if key and key not in seen:
            seen.add(key)
            out.append(Utterance(text, intent, source))
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


def fold_pairs(
    items: Sequence[Utterance],
    near: Sequence[Sequence[int]],
    members: Sequence[int],
    *,
    static: set[str] | None,
    seed: int,
    per_anchor: tuple[int, int, int] = (1, 1, 1),
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
    positives, hard, random_ = per_anchor

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
        for _ in range(random_):
            for _attempt in range(20):
                j = rng.choice(pool)
                other = items[j].intent
                if other != intent and not (intent == OUT_OF_SCOPE and other == OUT_OF_SCOPE):
                    emit(i, j, False, "neg_random")
                    break
    return out


@dataclass
class Fold:
    train: list[Pair]
    """Pairs among the other folds' questions, and their near misses."""
    natural: dict[str, list[Pair]]
    """Pairs among this fold's questions, per source."""
    rules: list[Pair]
    """Near misses made from this fold's questions."""


def _sources(
    data: Path, sources: dict[str, list[Utterance]] | None
) -> tuple[dict[str, list[Utterance]], set[str]]:
    """The questions to pair (the built-in ones when None), and CLINC150's static-answer
    intents when it is among them."""
    sources = utterances(data) if sources is None else sources
    return sources, static_intents(data) if "clinc150" in sources else set()


def folds(
    data: Path,
    per_anchor: tuple[int, int, int] = PER_ANCHOR,
    sources: dict[str, list[Utterance]] | None = None,
) -> list[Fold]:
    """`sources`: the questions to pair (`utterances` and any `question_groups`); the
    built-in ones when None."""
    sources, static = _sources(data, sources)
    near = {name: neighbours(items) for name, items in sources.items()}
    fold = {name: [fold_of(u.text) for u in items] for name, items in sources.items()}
    rules = [_rules(sources, fold, k) for k in range(FOLDS)]
    out = []
    for k in range(FOLDS):
        train: list[Pair] = []
        natural: dict[str, list[Pair]] = {}
        for name, items in sources.items():
            keep = _pairable(name, items, static)
            inside = [i for i, f in enumerate(fold[name]) if f == k]
            outside = [i for i, f in enumerate(fold[name]) if f != k]
            train += fold_pairs(
                items, near[name], outside, static=keep, seed=SEED + k, per_anchor=per_anchor
            )
            natural[name] = fold_pairs(items, near[name], inside, static=keep, seed=SEED + 10 + k)
        train += [p for j in range(FOLDS) if j != k for p in rules[j]]
        out.append(Fold(train, natural, rules[k]))
    return out


def all_pairs(
    data: Path,
    per_anchor: tuple[int, int, int] = PER_ANCHOR,
    sources: dict[str, list[Utterance]] | None = None,
) -> list[Pair]:
    """What the verifier trains on: pairs among all the questions, and the near misses of
    every fold."""
    sources, static = _sources(data, sources)
    fold = {name: [fold_of(u.text) for u in items] for name, items in sources.items()}
    out: list[Pair] = []
    for name, items in sources.items():
        keep = _pairable(name, items, static)
        out += fold_pairs(
            items,
            neighbours(items),
            range(len(items)),
            static=keep,
            seed=SEED,
            per_anchor=per_anchor,
        )
    return out + [p for k in range(FOLDS) for p in _rules(sources, fold, k)]


def _rules(sources: dict[str, list[Utterance]], fold: dict[str, list[int]], k: int) -> list[Pair]:
    rng = random.Random(SEED + 100 + k)
    questions: list[str] = []
    by_intent: dict[tuple[str, str], list[str]] = defaultdict(list)
    for name, items in sources.items():
        for u, f in zip(items, fold[name], strict=True):
            if f == k and u.intent != OUT_OF_SCOPE:
                questions.append(u.text)
                by_intent[(name, u.intent)].append(u.text)
    positives = [(a, b) for texts in by_intent.values() for a, b in itertools.pairwise(texts)]
    rng.shuffle(questions)
    rng.shuffle(positives)
    return near_misses(
        questions[:RULE_QUESTIONS], positives[:RULE_POSITIVES], "train", seed=SEED + 200 + k
    )


def read_jsonl(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def static_intents(data: Path) -> set[str]:
    labels = json.loads((data / "intents/clinc150/intent_answer_type.json").read_text())
    return {intent for intent, kind in labels["intents"].items() if kind == "static"}


def intent_pairs(path: Path, static: set[str] | None, limit: int, seed: int) -> list[Pair]:
    """A data set's own pairs file: same-intent pairs (only `static` intents for CLINC150) and
    different-intent pairs, `limit` of them in a seeded order."""
    out = []
    for row in read_jsonl(path):
        same = bool(row["same"])
        if same and static is not None and row["label_a"] not in static:
            continue
        out.append(Pair(str(row["a"]), str(row["b"]), same, str(row["kind"]), str(row["source"])))
    random.Random(seed).shuffle(out)
    return out[:limit]


def banking_questions(data: Path, split: str) -> list[str]:
    with (data / f"intents/banking77/{split}.csv").open(encoding="utf-8") as handle:
        return [row["text"] for row in csv.DictReader(handle)]


def idf_texts(data: Path, builtin: Sequence[str] = BUILTIN, extra: Iterable[str] = ()) -> list[str]:
    """Licence-permissive public questions and prompts the word rarity is counted on, with
    the `extra` questions of a deployment (alone when no built-in source is used, so training
    on a deployment's groups alone needs no public data)."""
    texts = list(extra)
    if not builtin:
        return texts
    texts += banking_questions(data, "train") if "banking77" in builtin else []
    if "clinc150" in builtin:
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

    def cosine(self, pairs: Sequence[Pair]) -> npt.NDArray[np.float64]:
        return np.array([float(self.vectors[p.a] @ self.vectors[p.b]) for p in pairs])
