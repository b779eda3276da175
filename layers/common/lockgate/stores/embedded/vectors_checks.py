"""Input checks every `VectorIndex` adapter applies, so bad input fails the same way on each.

Vectors are normalised here rather than trusted: the port promises plain cosine scores, and a
dot product is only the cosine between unit vectors.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt


def unit_vector(vector: Any, dimensions: int) -> npt.NDArray[np.float32]:
    """A float32 unit vector of the index's dimension, or a clear error."""
    array = np.asarray(vector, dtype=np.float32)
    if array.ndim == 2 and array.shape[0] == 1:
        array = array[0]
    if array.shape != (dimensions,):
        raise ValueError(f"expected a {dimensions}-d vector, got shape {array.shape}")
    norm = float(np.linalg.norm(array))
    if not math.isfinite(norm) or norm == 0.0:
        raise ValueError("vectors must be finite and non-zero")
    return (array / norm).astype(np.float32)


def check_name(value: object, what: str) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError(f"a vector record needs a non-empty {what}")


def check_prefix(prefix: str) -> None:
    if not prefix:
        raise ValueError("refusing to delete with an empty namespace prefix (every namespace)")
