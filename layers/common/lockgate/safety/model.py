"""The trained injection model: two logistic regressions, the known-attack bank, thresholds.

Stored as one small `.npz` (weights, float16 attack embeddings) plus a JSON card describing how
it was trained; `lockgate.safety.train` writes both.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from lockgate.safety.features import NGRAM_DIM, RULE_NAMES

MODEL_DIR = Path(__file__).parent / "model"
WEIGHTS = MODEL_DIR / "injection.npz"
CARD = MODEL_DIR / "injection.json"

Array = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class InjectionModel:
    fast_w: Array
    """Over [n-grams, rules]: decides without an embedding when it is confident."""
    fast_b: float
    full_w: Array
    """Over [embedding, n-grams, rules]: the final score."""
    full_b: float
    attacks: Array
    """Unit embeddings of known attacks (the training split's injections)."""
    benign: Array
    """Unit embeddings of the training split's benign prompts: an attack's nearest neighbour
    must be closer than the nearest of these, since benign prompts share topics with attacks."""
    threshold: float
    """Full-classifier score from which a text counts as an injection."""
    fast_pass_below: float
    """Fast score under which a text is let through without embedding it."""
    similarity_threshold: float
    """Cosine to the nearest known attack from which a text counts as an injection."""
    embedder: str
    dimensions: int

    def save(self, path: Path = WEIGHTS) -> None:
        np.savez_compressed(
            path,
            fast_w=self.fast_w.astype(np.float32),
            fast_b=np.float32(self.fast_b),
            full_w=self.full_w.astype(np.float32),
            full_b=np.float32(self.full_b),
            attacks=self.attacks.astype(np.float16),
            benign=self.benign.astype(np.float16),
            thresholds=np.array(
                [self.threshold, self.fast_pass_below, self.similarity_threshold], np.float32
            ),
            embedder=np.array(self.embedder),
        )

    @classmethod
    def load(cls, path: Path = WEIGHTS) -> InjectionModel:
        try:
            data = np.load(path)
        except OSError as exc:
            raise RuntimeError(
                f"cannot read the injection model {path}: {exc}; "
                "rebuild it with `python -m lockgate.safety.train`"
            ) from None
        full_w = data["full_w"].astype(np.float32)
        attacks = data["attacks"].astype(np.float32)
        dims = full_w.shape[0] - NGRAM_DIM - len(RULE_NAMES)
        if data["fast_w"].shape[0] != NGRAM_DIM + len(RULE_NAMES) or attacks.shape[1] != dims:
            raise RuntimeError(
                f"the injection model {path} was trained with other features; "
                "rebuild it with `python -m lockgate.safety.train`"
            )
        threshold, fast_pass_below, similarity = (float(v) for v in data["thresholds"])
        return cls(
            fast_w=data["fast_w"].astype(np.float32),
            fast_b=float(data["fast_b"]),
            full_w=full_w,
            full_b=float(data["full_b"]),
            attacks=attacks,
            benign=data["benign"].astype(np.float32),
            threshold=threshold,
            fast_pass_below=fast_pass_below,
            similarity_threshold=similarity,
            embedder=str(data["embedder"]),
            dimensions=dims,
        )


def read_card(path: Path = CARD) -> dict[str, object]:
    card: dict[str, object] = json.loads(path.read_text(encoding="utf-8"))
    return card
