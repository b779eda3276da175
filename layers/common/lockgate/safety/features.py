"""Text features shared by the training script and the detector, so both compute them alike.

Hashed byte n-grams (3-5 of the UTF-8 text) carry phrasing in any script and survive the
misspellings, leetspeak and odd spacing attackers use to dodge patterns; hashed word uni- and
bigrams carry the phrasing itself; the rule hits carry the high-precision phrasings; a few
shape columns carry token spam (one character, bracket or word repeated for hundreds of
characters to push the real instructions out of the model's view), which no n-gram holds,
since the repeated unit can be any character at all. The hashing is vectorised in numpy (one
CRC per word, none per n-gram), so a 1,200-character window costs a fraction of a millisecond:
the detector needs no embedding.
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from lockgate.safety.rules import RULES, Rule, match_rules

HASH_BITS = 18
HASH_DIM = 1 << HASH_BITS
RULE_NAMES = tuple(dict.fromkeys(rule.name for rule in RULES))
SPAM_RUNS = (64, 128, 256, 512)
"""Characters covered by one short unit repeated back to back (`_RUN`), one column per level
reached: token spam runs for hundreds of characters, while the separators, laughter and
underlines of ordinary text rarely reach a hundred, and a repeated sentence has a longer unit."""
SPAM_UNIT = 12
"""Longest repeated unit, in characters: a token or a few, not a sentence."""
SPAM_REPEATS = 8
LINE_MAX = 200
"""A run of one single character counts only from this length: lines drawn with one character
(separators, underlines, blanks to fill in) reach a hundred or so, and the template attacks'
fake delimiters are dashes too, so a dashed line would otherwise read as both."""
SHAPE_BASE = HASH_DIM + len(RULE_NAMES)
DIM = SHAPE_BASE + len(SPAM_RUNS)
"""Hashed n-grams first, then one column per rule name, then the shape columns."""
CHAR_NGRAMS = (3, 4, 5)
_SPACE = re.compile(r"\s+")
_WORD = re.compile(r"\w+", re.UNICODE)
_PRIME = np.uint64(1_099_511_628_211)
_MIX = np.uint64(0x9E3779B97F4A7C15)
_SHIFT = np.uint64(64 - HASH_BITS)

Indices = npt.NDArray[np.int64]
Values = npt.NDArray[np.float32]


def normalise(text: str) -> str:
    """Lower case, compatibility-folded (full-width letters, ligatures), with escaped and real
    line breaks and runs of space collapsed: what an attacker varies to dodge a pattern."""
    text = unicodedata.normalize("NFKC", text).replace("\\n", " ").replace("\\t", " ")
    return _SPACE.sub(" ", text).strip().lower()


def _bucket(hashes: npt.NDArray[np.uint64], salt: int) -> Indices:
    """Multiplicative hashing into `HASH_DIM` buckets; the salt keeps n-gram kinds apart."""
    with np.errstate(over="ignore"):
        mixed = (hashes + np.uint64(salt)) * _MIX
    return (mixed >> _SHIFT).astype(np.int64)


def hashed_ngrams(text: str) -> Indices:
    """Bucket of every byte 3-5-gram, word and word bigram of an already normalised text."""
    raw = np.frombuffer(f" {text} ".encode("utf-8", "surrogatepass"), dtype=np.uint8).astype(
        np.uint64
    )
    parts: list[Indices] = []
    rolling = raw
    with np.errstate(over="ignore"):
        for n in range(2, max(CHAR_NGRAMS) + 1):
            rolling = rolling[:-1] * _PRIME + raw[n - 1 :]
            if n in CHAR_NGRAMS:
                parts.append(_bucket(rolling, n))
        words = np.array([zlib.crc32(w.encode()) for w in _WORD.findall(text)], dtype=np.uint64)
        if len(words):
            parts.append(_bucket(words, 101))
            parts.append(_bucket(words[:-1] * _PRIME + words[1:], 202))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def rule_columns(hits: Sequence[Rule]) -> Indices:
    """Columns (after the hashed ones) of the names of the rules that matched."""
    names = {rule.name for rule in hits}
    return np.array([HASH_DIM + i for i, n in enumerate(RULE_NAMES) if n in names], np.int64)


def longest_run(text: str) -> int:
    """Length of the longest stretch of `text` that is one unit of 1-`SPAM_UNIT` characters
    repeated back to back, at least `SPAM_REPEATS` times (whole units only; one character
    alone from `LINE_MAX` characters). Vectorised over every offset p, marking where each
    character equals the one p before: a regex with a back-reference costs milliseconds on a
    window of prose."""
    points = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    if len(points) < SPAM_RUNS[0]:
        return 0
    fence = np.arange(SPAM_UNIT, dtype=np.uint32) + np.uint32(0x110000)  # beyond Unicode
    padded = np.concatenate([points, fence])
    n = len(points)
    edges = np.zeros((SPAM_UNIT, n + 2), dtype=bool)  # row p - 1: character i + p == i
    for p in range(1, SPAM_UNIT + 1):
        np.equal(padded[p : p + n], points, out=edges[p - 1, 1:-1])
    steps = np.diff(edges.ravel().view(np.int8))
    starts, ends = np.flatnonzero(steps == 1), np.flatnonzero(steps == -1)
    period = starts // edges.shape[1] + 1
    covered = (ends - starts + period) // period * period
    first = starts % edges.shape[1]  # where in the text each run starts
    same_next = np.concatenate([[0], np.cumsum(edges[0, 1:-1])])  # runs of one character
    line = same_next[first + period - 1] - same_next[first] == period - 1  # unit of one char
    whole = covered[(covered >= SPAM_REPEATS * period) & (~line | (covered >= LINE_MAX))]
    return int(whole.max()) if len(whole) else 0


def shape_columns(text: str) -> Indices:
    """Columns of the token-spam levels a normalised text reaches (cumulative, so a longer run
    sets every column a shorter one does)."""
    run = longest_run(text)
    return np.array([SHAPE_BASE + i for i, size in enumerate(SPAM_RUNS) if run >= size], np.int64)


def features(text: str, hits: Sequence[Rule] | None = None) -> tuple[Indices, Values]:
    """Sparse feature vector of a normalised text: log-scaled hashed counts, unit length, plus
    a 1 per matching rule name and per token-spam level reached (outside the normalisation,
    so a rule weighs the same in a long text as in a short one). `hits`: the rules already
    matched on `text`, if the caller has them."""
    buckets, counts = np.unique(hashed_ngrams(text), return_counts=True)
    values = np.log1p(counts.astype(np.float32))
    norm = float(np.linalg.norm(values))
    if norm:
        values /= norm
    flags = np.concatenate(
        [rule_columns(match_rules(text) if hits is None else hits), shape_columns(text)]
    )
    return (
        np.concatenate([buckets, flags]),
        np.concatenate([values, np.ones(len(flags), np.float32)]).astype(np.float32),
    )
