"""Data for the retrieval benchmarks: the public test collections, the metrics, and an embedding
cache so a rerun does not pay for MiniLM on 12,000 documents again."""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from lockgate.embeddings.base import Embedder, Vectors

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "retrieval"
ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".bench-cache"
RESULTS = ROOT / "bench" / "results"


@dataclass
class Collection:
    name: str
    docs: dict[str, str]
    titles: dict[str, str]
    queries: dict[str, str]
    qrels: dict[str, set[str]]
    answers: dict[str, str] = field(default_factory=dict)
    """Per query, the answer's text where the collection gives one (xquad-en)."""


def vaswani(root: Path = DATA / "vaswani-npl") -> Collection:
    text = (root / "doc-text.trec").read_text()
    docs = {
        m.group(1): " ".join(m.group(2).split())
        for m in re.finditer(r"<DOCNO>(\d+)</DOCNO>(.*?)</DOC>", text, re.S)
    }
    raw = (root / "query-text.trec").read_text()
    queries = {
        m.group(1): " ".join(m.group(2).split()).lower()
        for m in re.finditer(r"<num>(\d+)</num><title>(.*?)</title>", raw, re.S)
    }
    qrels: dict[str, set[str]] = {}
    for line in (root / "qrels").read_text().splitlines():
        qid, _, doc, rel = line.split()
        if int(rel) > 0:
            qrels.setdefault(qid, set()).add(doc)
    queries = {q: t for q, t in queries.items() if q in qrels}
    return Collection("vaswani-npl", docs, {}, queries, qrels)


def xquad(path: Path = DATA / "xquad-en" / "xquad.en.json") -> Collection:
    data = json.loads(path.read_text())["data"]
    docs: dict[str, str] = {}
    titles: dict[str, str] = {}
    queries: dict[str, str] = {}
    qrels: dict[str, set[str]] = {}
    answers: dict[str, str] = {}
    for article in data:
        for i, paragraph in enumerate(article["paragraphs"]):
            doc_id = f"{article['title']}#{i}"
            docs[doc_id] = paragraph["context"]
            titles[doc_id] = article["title"].replace("_", " ")
            for qa in paragraph["qas"]:
                queries[qa["id"]] = qa["question"]
                qrels[qa["id"]] = {doc_id}
                answers[qa["id"]] = qa["answers"][0]["text"]
    return Collection("xquad-en", docs, titles, queries, qrels, answers)


def stackfaq(
    path: Path = DATA.parent / "question-pairs" / "stackfaq" / "threads.jsonl",
) -> Collection:
    """Stack Exchange Web Apps threads as help pages (title = the question, body = its
    answers) and the crowd's rephrasings as users' questions; the gold page is the thread."""
    docs: dict[str, str] = {}
    titles: dict[str, str] = {}
    queries: dict[str, str] = {}
    qrels: dict[str, set[str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        thread = json.loads(line)
        doc_id = thread["thread"]
        docs[doc_id] = "\n\n".join(thread["answers"])
        titles[doc_id] = thread["question"]
        for i, question in enumerate(thread["rephrasings"]):
            queries[f"{doc_id}-{i}"] = question
            qrels[f"{doc_id}-{i}"] = {doc_id}
    return Collection("stackfaq", docs, titles, queries, qrels)


def ndcg_at(ranked: Sequence[str], relevant: set[str], k: int = 10) -> float:
    dcg = sum(1.0 / math.log2(i + 2) for i, d in enumerate(ranked[:k]) if d in relevant)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(len(relevant), k)))
    return dcg / ideal if ideal else 0.0


def recall_at(ranked: Sequence[str], relevant: set[str], k: int = 5) -> float:
    return len(set(ranked[:k]) & relevant) / len(relevant) if relevant else 0.0


async def cached_embed(embedder: Embedder, texts: Sequence[str], label: str) -> Vectors:
    """Embeddings from `.bench-cache/` when the same model embedded the same texts before."""
    digest = hashlib.sha256(embedder.name.encode())
    for text in texts:
        digest.update(text.encode())
        digest.update(b"\0")
    path = CACHE / f"{label}-{digest.hexdigest()[:16]}.npy"
    if path.is_file():
        return np.load(path)
    vectors = await embedder.embed(list(texts))
    CACHE.mkdir(exist_ok=True)
    np.save(path, vectors)
    return vectors


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))
