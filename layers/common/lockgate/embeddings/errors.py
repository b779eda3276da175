"""The one error an embedder raises, whatever its backend."""

from __future__ import annotations


class EmbeddingError(RuntimeError):
    """The embedder could not produce vectors (model missing, backend failed, bad response).

    Messages name the backend and the cause, never a credential, so they are safe to log."""
