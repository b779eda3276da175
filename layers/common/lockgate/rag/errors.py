"""Errors the ingestion path raises for bad input; messages name the file, never its contents."""

from __future__ import annotations


class DocumentError(ValueError):
    """A document that cannot be ingested as given; retrying the same bytes will not help."""


class UnsupportedFormat(DocumentError):
    pass


class CorruptDocument(DocumentError):
    pass


class DocumentTooLarge(DocumentError):
    """The document is over one of the ingestion limits (`limit` names the setting)."""

    def __init__(self, message: str, *, limit: str) -> None:
        super().__init__(message)
        self.limit = limit

    def __reduce__(self) -> tuple[object, ...]:
        # Raised in the parsing worker process and pickled back: keep `limit` on the way.
        return _too_large, (str(self), self.limit)


def _too_large(message: str, limit: str) -> DocumentTooLarge:
    return DocumentTooLarge(message, limit=limit)


class InvalidName(ValueError):
    """A tenant or collection name that could break namespace isolation."""

    def __init__(self, message: str, *, kind: str = "collection") -> None:
        super().__init__(message)
        self.kind = kind


class IngestQuotaExceeded(Exception):
    """The tenant has ingested as much as its window allows; `retry_after` seconds until the
    window has room again."""

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after
