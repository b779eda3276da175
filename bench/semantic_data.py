"""STS-B pairs and their MiniLM vectors for the semantic-cache quality benchmark.

Each distinct sentence is embedded once by the gateway's own embedder and the vectors are kept
under `.bench-cache/` (keyed by a hash of the sentences and the model name), so a second run
skips the model.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from lockgate.embeddings.local import MiniLMEmbedder

STSB = Path(__file__).resolve().parents[2] / "shared" / "data" / "paraphrase" / "stsb"
CACHE_DIR = Path(__file__).resolve().parents[1] / ".bench-cache"


@dataclass(frozen=True, slots=True)
class Pair:
    split: str
    genre: str
    score: float
    a: str
    b: str


def stsb_dir() -> Path:
    for candidate in (STSB, Path("/work/shared/data/paraphrase/stsb")):
        if (candidate / "sts-test.csv").is_file():
            return candidate
    raise SystemExit(f"STS-B not found at {STSB}")


def load_pairs() -> list[Pair]:
    """All STS-B pairs; the file format is tab-separated, unquoted, 7 or 9 fields."""
    pairs = []
    root = stsb_dir()
    for split in ("train", "dev", "test"):
        text = (root / f"sts-{split}.csv").read_text(encoding="utf-8")
        for line in text.splitlines():
            fields = line.split("\t")
            if len(fields) < 7:
                continue
            pairs.append(Pair(split, fields[0], float(fields[4]), fields[5], fields[6]))
    return pairs


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
