"""Held-out "same question?" pairs for the semantic-cache benchmark, and their MiniLM vectors.

Nothing here is read by `lockgate.cache.train_verifier` (which trains and chooses its
operating point on BANKING77 train and CLINC150 train + val):

- forum questions: SemEval-2016 CQA question-question (research use), reported on its own
  and kept out of the pooled figure (long forum posts, not gateway-style questions);
- ordinary questions: StackFAQ (Stack Exchange Web Apps threads, crowd rephrasings; research
  use), BANKING77 test and CLINC150 test (same-intent pairs only for static-answer intents).
  Each set mixes same-answer pairs, hard negatives (another intent, most words shared) and
  random negatives, as its SOURCE.md describes;
- adversarial near misses: made by rule (`lockgate.cache.near_misses`, `test` vocabulary: other
  times, dates, scopes, antonyms, directions, entities and numbers than training saw, and
  contracted negations) from questions of other sources: the MakTek support FAQ, StackFAQ
  rephrasings and BANKING77 test; true pairs are near repeats (other edits than training's) and
  StackFAQ rephrasing pairs given the same added detail.

Each distinct text is embedded once by the gateway's own embedder; vectors are kept under
`.bench-cache/` keyed by a hash of the texts and the model name.
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

import numpy as np
import numpy.typing as npt
from lockgate.cache.near_misses import Pair, near_misses
from lockgate.cache.verifier_data import (
    DEFAULT_DATA,
    banking_questions,
    intent_pairs,
    read_jsonl,
    static_intents,
)
from lockgate.embeddings.local import MiniLMEmbedder

DATA = DEFAULT_DATA
"""The public data sets beside the checkout (`../shared/data`, or one level up from a worktree)."""
CACHE_DIR = Path(__file__).resolve().parents[1] / ".bench-cache"
SEED = 7
ORDINARY_PER_SET = 3000
ADVERSARIAL_QUESTIONS = 400


def stackfaq_pairs() -> list[Pair]:
    rows = read_jsonl(DATA / "question-pairs/stackfaq/pairs.jsonl")
    return [
        Pair(str(r["a"]), str(r["b"]), bool(r["same"]), str(r["kind"]), "stackfaq") for r in rows
    ]


def semeval_pairs() -> list[Pair]:
    """SemEval-2016 CQA question-question (Qatar Living forum posts, all under the gateway's
    1,000-character semantic limit): "PerfectMatch" is the same question, "Relevant" and
    "Irrelevant" (the search engine's other hits) are different ones."""
    rows = read_jsonl(DATA / "question-pairs/semeval2016-cqa-qq/pairs.jsonl")
    return [
        Pair(str(r["a"]), str(r["b"]), bool(r["same"]), str(r["kind"]), "semeval") for r in rows
    ]


def ordinary_sets() -> dict[str, list[Pair]]:
    static = static_intents(DATA)
    banking = intent_pairs(
        DATA / "intents/banking77/pairs.test.jsonl", None, ORDINARY_PER_SET, SEED
    )
    clinc = intent_pairs(DATA / "intents/clinc150/pairs.test.jsonl", static, ORDINARY_PER_SET, SEED)
    return {"StackFAQ": stackfaq_pairs(), "BANKING77 test": banking, "CLINC150 test": clinc}


def adversarial_set() -> list[Pair]:
    faq = json.loads(
        (
            DATA / "support-kb/maktek-customer-support-faqs/customer_support_faqs.dedup.json"
        ).read_text()
    )
    threads = read_jsonl(DATA / "question-pairs/stackfaq/threads.jsonl")
    rng = random.Random(SEED)
    rephrasings = [str(r) for t in threads for r in t["rephrasings"]]  # type: ignore[attr-defined]
    banking = banking_questions(DATA, "test")
    questions = (
        [str(row["question"]) for row in faq]
        + rng.sample(rephrasings, ADVERSARIAL_QUESTIONS)
        + rng.sample(banking, ADVERSARIAL_QUESTIONS)
    )
    positives = [(p.a, p.b) for p in stackfaq_pairs() if p.same]
    positives = rng.sample(positives, ADVERSARIAL_QUESTIONS)
    return near_misses(questions, positives, "test", seed=SEED, source="held-out")


def ensure_cache_dir() -> Path:
    CACHE_DIR.mkdir(exist_ok=True)
    ignore = CACHE_DIR / ".gitignore"
    if not ignore.exists():
        ignore.write_text("*\n", encoding="utf-8")
    return CACHE_DIR


def embed_all(texts: list[str]) -> dict[str, npt.NDArray[np.float32]]:
    """Vectors for every distinct text, from `.bench-cache/` when an identical set was embedded
    before."""
    embedder = MiniLMEmbedder()
    distinct = sorted(set(texts))
    digest = hashlib.sha256(
        json.dumps([embedder.name, distinct], ensure_ascii=False).encode()
    ).hexdigest()[:16]
    path = ensure_cache_dir() / f"minilm-{digest}.npy"
    if path.exists():
        vectors = np.load(path)
    else:
        vectors = embedder.embed_sync(distinct)
        np.save(path, vectors)
    embedder.close()
    return dict(zip(distinct, vectors, strict=True))
