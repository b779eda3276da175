"""The `Embedder` port."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]


class Embedder(Protocol):
    """Turns texts into unit-length vectors, so a dot product is the cosine similarity."""

    @property
    def name(self) -> str:
        """Identifies the model; vectors from different embedders never share an index."""
        ...

    @property
    def dimensions(self) -> int: ...

    async def embed(self, texts: Sequence[str]) -> Vectors:
        """A (len(texts), dimensions) float32 array of L2-normalised rows."""
        ...
