"""GPTCache's verdicts on the benchmark pairs; runs inside `.bench-venv/gptcache`, not .venv.

Reads the pair vectors the main benchmark wrote (our MiniLM vectors, so every system uses the
same embedding), and writes, per pair, GPTCache's normalised similarity score: the one its
adapter compares with `Config.similarity_threshold`. That score is computed by GPTCache's own
`SearchDistanceEvaluation` (the evaluation `init_similar_cache` installs by default) on the
distance its faiss store returns. A sample of pairs also goes through the real cache end to end
(`init_similar_cache`, `put`, `get`, sqlite + faiss) at the default threshold, to check that
the scores predict the cache's actual answers.

    .bench-venv/gptcache/bin/python bench/semantic_gptcache.py IN.npz OUT.json
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import faiss
import numpy as np
from gptcache import Cache, Config
from gptcache.adapter.api import get, init_similar_cache, put
from gptcache.similarity_evaluation import SearchDistanceEvaluation

E2E_SAMPLE = 100


class Vectors:
    """GPTCache's embedding interface, answering with the vectors computed by the bench."""

    def __init__(self, table: dict[str, np.ndarray], dimension: int) -> None:
        self.table = table
        self.dimension = dimension

    def to_embeddings(self, data: str, **_: object) -> np.ndarray:
        return self.table[data]


def main(src: str, dst: str) -> None:
    data = np.load(src, allow_pickle=False)
    a, b = data["a"].astype("float32"), data["b"].astype("float32")
    texts_a = [str(t) for t in data["text_a"]]
    texts_b = [str(t) for t in data["text_b"]]
    evaluation = SearchDistanceEvaluation()
    low, high = evaluation.range()
    default_threshold = Config().similarity_threshold

    scores = []
    for i in range(len(a)):
        index = faiss.index_factory(a.shape[1], "IDMap,Flat", faiss.METRIC_L2)
        index.add_with_ids(a[i : i + 1], np.array([1]))
        distance, _ = index.search(b[i : i + 1], 1)
        rank = evaluation.evaluation({}, {"search_result": (float(distance[0][0]), None)})
        scores.append((rank - low) / (high - low))

    # One store per pair, as the curve is per pair. The directories outlive the loop because
    # GPTCache flushes every store again at exit.
    work = Path(dst).parent / "gptcache-stores"
    shutil.rmtree(work, ignore_errors=True)
    agree = 0
    sample = np.random.default_rng(0).choice(len(a), size=min(E2E_SAMPLE, len(a)), replace=False)
    for i in sample:
        store = work / str(i)
        store.mkdir(parents=True)
        table = {texts_a[i]: a[i], texts_b[i]: b[i]}
        cache = Cache()
        init_similar_cache(
            data_dir=str(store), cache_obj=cache, embedding=Vectors(table, a.shape[1])
        )
        put(texts_a[i], "cached answer", cache_obj=cache)
        hit = get(texts_b[i], cache_obj=cache) is not None
        predicted = scores[i] >= default_threshold
        agree += int(hit == predicted)
    result = {
        "scores": scores,
        "default_threshold": default_threshold,
        "e2e_checked": len(sample),
        "e2e_agree": agree,
    }
    with open(dst, "w") as out:
        json.dump(result, out)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
