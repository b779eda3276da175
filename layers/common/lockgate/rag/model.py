"""The value types shared by loaders, chunking, ingestion and retrieval."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from lockgate.rag.errors import InvalidName

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def check_name(kind: str, value: str) -> str:
    """Tenant and collection names become namespace segments (`rag/<tenant>/<collection>`), so
    a `/` or an empty name could let one tenant's prefix cover another's."""
    if not _NAME.match(value):
        raise InvalidName(
            f"{kind} name {value!r} must be 1-64 characters of letters, digits, '.', '_' or '-',"
            " starting with a letter or digit"
        )
    return value


def namespace(tenant: str, collection: str) -> str:
    return f"rag/{check_name('tenant', tenant)}/{check_name('collection', collection)}"


@dataclass(frozen=True, slots=True)
class Block:
    """A structural unit of a loaded document: a heading or a run of body text.

    `title`/`url` override the document's own for formats that hold several entries in one file
    (JSON lines), so each entry is cited under its own name.
    """

    kind: Literal["heading", "text"]
    text: str
    level: int = 0
    page: int | None = None
    title: str | None = None
    url: str | None = None
    entry: str | None = None


@dataclass(frozen=True, slots=True)
class LoadedDocument:
    title: str
    blocks: list[Block]


@dataclass(frozen=True, slots=True)
class Chunk:
    index: int
    text: str
    tokens: int
    title: str
    section: str = ""
    page: int | None = None
    url: str | None = None
    entry: str | None = None

    def indexed_text(self) -> str:
        """What the indexes see: the title and section path carry words a question uses
        (an FAQ's question is its section heading) that the body alone often lacks."""
        head = " — ".join(part for part in (self.title, self.section) if part)
        return f"{head}\n{self.text}" if head else self.text


DocumentStatus = Literal["indexing", "ready", "failed", "deleting"]


@dataclass(slots=True)
class DocumentRecord:
    """One source (a file, an S3 object) in a collection, and the state of its indexing.

    `content_hash`/`chunk_count` describe the version the indexes serve; `pending_hash` is set
    while a new version is being written and stays with `error` when that failed, so a retry
    knows what to clean and the old version keeps serving meanwhile.
    """

    tenant: str
    collection: str
    doc_id: str
    source_uri: str
    title: str = ""
    content_hash: str | None = None
    chunk_count: int = 0
    pending_hash: str | None = None
    pending_count: int = 0
    status: DocumentStatus = "indexing"
    error: str | None = None
    attempts: int = 0
    updated_at: float = 0.0
    size_bytes: int = 0


@dataclass(frozen=True, slots=True)
class CollectionInfo:
    tenant: str
    collection: str
    documents: int
    chunks: int
    failed: int
    version: str


IngestOutcome = Literal["indexed", "unchanged", "replaced", "failed", "deleted", "missing"]


@dataclass(frozen=True, slots=True)
class IngestResult:
    doc_id: str
    source_uri: str
    outcome: IngestOutcome
    chunks: int = 0
    error: str | None = None
    retryable: bool = False
    collection_version: str = ""
    seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class RetrievedChunk:
    doc_id: str
    title: str
    uri: str
    chunk: int
    score: float
    """Reciprocal-rank-fusion score: orders results, not comparable across queries."""
    similarity: float | None
    """Plain cosine to the query when the dense search found this chunk."""
    text: str
    snippet: str
    section: str = ""
    page: int | None = None
    metadata: dict[str, str] = field(default_factory=dict)


class Sources(list[dict[str, Any]]):
    """The response's `sources` (entry n is what the answer cites as [n]) and `facts`: how the
    answer was grounded (`answer_mode`, `context_tokens` used of `context_budget`), which the
    response's `lockgate` extension reports beside them."""

    def __init__(self, items: Sequence[dict[str, Any]] = (), **facts: Any) -> None:
        super().__init__(items)
        self.facts: dict[str, Any] = facts
