"""The semantic cache: a paraphrase of a cached question gets the cached answer.

A cosine threshold alone serves wrong answers ("refund order 123" is a near neighbour of
"refund order 456"), so every candidate hit above the cosine floor also passes the guard's rules
(numbers, negation, entities, direction and word order, opposites, time, quantifiers) and then
the verifier (`cache.verifier`), which weighs the cosine against how the two questions' words
align. Without a verifier, the guard's content check applies within `guard_band` of the floor.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

from lockgate.cache.guard import Verdict, check
from lockgate.cache.verifier import Verifier
from lockgate.embeddings.base import Embedder, Vectors
from lockgate.stores.ports import VectorIndex, VectorRecord

log = logging.getLogger("lockgate.cache")

# The floor goes with the verifier's threshold, chosen on the out-of-fold scores of five
# question-disjoint folds of its training sets by `python -m lockgate.cache.train_verifier` (see
# lockgate/cache/model/verifier.json); held-out figures: bench/results/semantic_quality.md.
DEFAULT_THRESHOLD = 0.6
DEFAULT_GUARD_BAND = 0.04
CANDIDATES = 4
"""Neighbours checked per lookup: when the nearest fails the guard, a slightly farther one (the
same question with the same order number, say) may still be the right answer."""
TEXT_FIELD = "_text"
"""Payload field holding the cached question, which the guard compares with the new one."""


@dataclass(frozen=True, slots=True)
class SemanticHit:
    id: str
    similarity: float
    payload: dict[str, Any]
    """What the caller stored (without the cached question's text)."""


class SemanticCache:
    """Lookup and store of questions by meaning, within one namespace at a time.

    Namespaces come from `cache.keys.semantic_scope`; the index filters by namespace inside
    the search, so a lookup never sees another tenant's or another conversation's entries.
    """

    def __init__(
        self,
        embedder: Embedder,
        index: VectorIndex,
        *,
        threshold: float = DEFAULT_THRESHOLD,
        guard_band: float = DEFAULT_GUARD_BAND,
        candidates: int = CANDIDATES,
        memo_size: int = 256,
        verifier: Verifier | bool | None = True,
    ) -> None:
        """`verifier`: True loads the shipped one, False or None uses the guard band instead."""
        _check_threshold(threshold)
        if not 0 <= guard_band <= 1:
            raise ValueError("guard_band must be between 0 and 1")
        if candidates < 1:
            raise ValueError("candidates must be at least 1")
        self.embedder = embedder
        self._index = index
        self.threshold = threshold
        self.guard_band = guard_band
        self._candidates = candidates
        self._memo: OrderedDict[str, Vectors] = OrderedDict()
        self._memo_size = memo_size
        self.verifier = Verifier.load() if verifier is True else verifier or None

    async def lookup(
        self, namespace: str, text: str, *, threshold: float | None = None
    ) -> SemanticHit | None:
        """The best stored question that means the same as `text`, or None."""
        floor = self.threshold if threshold is None else threshold
        _check_threshold(floor)
        vector = await self._vector(text)
        hits = await self._index.search(vector, namespace=namespace, k=self._candidates)
        for hit in hits:
            if hit.score < floor:
                break
            cached = str(hit.payload.get(TEXT_FIELD, ""))
            verdict = self.verdict(text, cached, hit.score, floor)
            if verdict.ok:
                payload = {k: v for k, v in hit.payload.items() if k != TEXT_FIELD}
                return SemanticHit(hit.id, min(1.0, float(hit.score)), payload)
            log.debug("semantic candidate refused by the guard: %s", verdict.rule)
        return None

    def verdict(self, query: str, cached: str, similarity: float, floor: float) -> Verdict:
        """The rules, then the verifier (or, without one, the content check near the floor)."""
        if self.verifier is None:
            return check(query, cached, strict=similarity < floor + self.guard_band)
        verdict = check(query, cached, strict=False, soft=False)
        if not verdict.ok or query == cached:
            return verdict
        probability = self.verifier.probability(query, cached, similarity)
        if probability < self.verifier.threshold:
            return Verdict(False, "verifier", f"verifier probability {probability:.2f}")
        return verdict

    async def store(
        self, namespace: str, text: str, entry_id: str, payload: dict[str, Any]
    ) -> None:
        if TEXT_FIELD in payload:
            raise ValueError(f"payload field {TEXT_FIELD!r} is reserved")
        vector = await self._vector(text)
        record = VectorRecord(
            id=entry_id,
            namespace=namespace,
            vector=vector,
            payload={**payload, TEXT_FIELD: text},
        )
        await self._index.upsert([record])

    async def forget(self, namespace: str, entry_id: str) -> None:
        await self._index.delete([entry_id], namespace=namespace)

    async def purge(self, namespace_prefix: str) -> int:
        return await self._index.delete_namespace(namespace_prefix)

    async def _vector(self, text: str) -> Vectors:
        """The text's vector; a miss is usually followed by a store of the same text, so the
        last few vectors are remembered instead of computed twice."""
        cached = self._memo.get(text)
        if cached is not None:
            self._memo.move_to_end(text)
            return cached
        vector: Vectors = np.asarray((await self.embedder.embed([text]))[0], dtype=np.float32)
        self._memo[text] = vector
        if len(self._memo) > self._memo_size:
            self._memo.popitem(last=False)
        return vector


def _check_threshold(value: float) -> None:
    if not 0 < value <= 1:
        raise ValueError("a semantic threshold is a cosine in (0, 1]")
