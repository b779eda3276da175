"""Text features shared by the training script and the detector, so both compute them alike.

Hashed character n-grams (3-5) and word uni/bigrams carry the phrasing in any language the
embedding model does not know (MiniLM is English-only; a third of the public set is German);
the rule hits carry the high-precision phrasings.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
import zlib

import numpy as np
import numpy.typing as npt

from lockgate.safety.rules import RULES

NGRAM_DIM = 4096
RULE_NAMES = tuple(dict.fromkeys(rule.name for rule in RULES))
_SPACE = re.compile(r"\s+")
_WORD = re.compile(r"\w+", re.UNICODE)
Features = npt.NDArray[np.float32]


def normalise(text: str) -> str:
    """Lower case, compatibility-folded (full-width letters, ligatures), with escaped and real
    line breaks and runs of space collapsed: what an attacker varies to dodge a pattern."""
    text = unicodedata.normalize("NFKC", text).replace("\\n", " ").replace("\\t", " ")
    return _SPACE.sub(" ", text).strip().lower()


def ngram_features(text: str) -> Features:
    vector = np.zeros(NGRAM_DIM, dtype=np.float32)
    padded = f" {text} "
    for n in (3, 4, 5):
        for i in range(len(padded) - n + 1):
            vector[zlib.crc32(padded[i : i + n].encode()) % NGRAM_DIM] += 1.0
    words = _WORD.findall(text)
    for word in words:
        vector[zlib.crc32(b"w:" + word.encode()) % NGRAM_DIM] += 1.0
    for first, second in itertools.pairwise(words):
        vector[zlib.crc32(f"b:{first} {second}".encode()) % NGRAM_DIM] += 1.0
    np.log1p(vector, out=vector)
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm else vector


def rule_features(text: str) -> Features:
    hits = {rule.name for rule in RULES if rule.pattern.search(text)}
    return np.array([1.0 if name in hits else 0.0 for name in RULE_NAMES], dtype=np.float32)
