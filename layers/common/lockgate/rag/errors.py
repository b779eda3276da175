"""Errors the ingestion path raises for bad input; messages name the file, never its contents."""

from __future__ import annotations


class DocumentError(ValueError):
    """A document that cannot be ingested as given; retrying the same bytes will not help."""


class UnsupportedFormat(DocumentError):
    pass


class CorruptDocument(DocumentError):
    pass


class InvalidName(ValueError):
    """A tenant or collection name that could break namespace isolation."""
