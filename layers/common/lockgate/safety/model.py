"""The trained injection model: one logistic regression over hashed n-grams and rule hits.

Stored as one small `.npz` (float16 weights) plus a JSON card describing how it was trained and
how it scored on the tuning split; `lockgate.safety.train` writes both.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from lockgate.safety.features import DIM, Indices, Values

MODEL_DIR = Path(__file__).parent / "model"
WEIGHTS = MODEL_DIR / "injection.npz"
CARD = MODEL_DIR / "injection.json"

Array = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class InjectionModel:
    weights: Array
    """One per feature column (`features.DIM`)."""
    bias: float
    threshold: float
    """Score from which a text counts as an injection, picked on the tuning split."""

    def score(self, indices: Indices, values: Values) -> float:
        """The probability-like 0..1 score of one sparse feature vector."""
        z = float(self.weights[indices] @ values) + self.bias
        return float(1.0 / (1.0 + np.exp(-np.clip(z, -30.0, 30.0))))

    def save(self, path: Path = WEIGHTS) -> None:
        np.savez_compressed(
            path,
            weights=self.weights.astype(np.float16),
            bias=np.float32(self.bias),
            threshold=np.float32(self.threshold),
        )

    @classmethod
    def load(cls, path: Path = WEIGHTS) -> InjectionModel:
        try:
            data = np.load(path)
            weights = data["weights"].astype(np.float32)
        except (OSError, KeyError) as exc:
            raise RuntimeError(
                f"cannot read the injection model {path}: {exc}; "
                "rebuild it with `python -m lockgate.safety.train`"
            ) from None
        if weights.shape != (DIM,):
            raise RuntimeError(
                f"the injection model {path} was trained with other features; "
                "rebuild it with `python -m lockgate.safety.train`"
            )
        return cls(weights, float(data["bias"]), float(data["threshold"]))


def read_card(path: Path = CARD) -> dict[str, object]:
    card: dict[str, object] = json.loads(path.read_text(encoding="utf-8"))
    return card
