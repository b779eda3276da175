"""Hostile documents are bounded: refused by the limit they break, parsed in a worker process
whose memory and time are capped, and counted against the tenant's upload quota (issue 9.1).

All real: the real loaders, pypdf and python-docx, a real worker process (forkserver)."""

from __future__ import annotations

import time

import pytest
from lockgate.policy import IngestionPolicy
from lockgate.rag.errors import DocumentTooLarge, IngestQuotaExceeded
from lockgate.rag.ingest import IngestionService
from lockgate.rag.parsing import DocumentParser

from tests.support.hostile_documents import (
    empty_paragraphs_docx,
    many_pages_pdf,
    wall_of_text_docx,
)
from tests.unit.rag.conftest import Rag


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


async def test_five_million_empty_paragraphs_are_refused_before_an_xml_tree_is_built() -> None:
    parser = DocumentParser()
    started = time.monotonic()
    with pytest.raises(DocumentTooLarge) as caught:
        await parser.parse(empty_paragraphs_docx(), filename="bomb.docx")
    parser.close()
    assert caught.value.limit == "max_paragraphs"
    assert "5000000 paragraphs" in str(caught.value) and "bomb.docx" in str(caught.value)
    assert time.monotonic() - started < 10


async def test_six_thousand_pages_are_refused_by_the_page_limit() -> None:
    parser = DocumentParser()
    with pytest.raises(DocumentTooLarge) as caught:
        await parser.parse(many_pages_pdf(), filename="long.pdf")
    parser.close()
    assert caught.value.limit == "max_pages" and "6000 pages" in str(caught.value)


async def test_a_zip_expanding_past_the_limit_is_refused_before_it_is_inflated() -> None:
    parser = DocumentParser(IngestionPolicy(max_expanded_mb=1))
    with pytest.raises(DocumentTooLarge) as caught:
        await parser.parse(wall_of_text_docx(2), filename="big.docx")
    parser.close()
    assert caught.value.limit == "max_expanded_mb"


async def test_the_worker_runs_out_of_memory_not_the_server() -> None:
    """With the paragraph limit lifted, python-docx builds the whole tree: the worker's memory
    cap stops it, and the server process does not grow."""
    parser = DocumentParser(IngestionPolicy(max_paragraphs=10**8, parse_memory_mb=400))
    before = _rss_mb()
    with pytest.raises(DocumentTooLarge) as caught:
        await parser.parse(empty_paragraphs_docx(), filename="bomb.docx")
    assert caught.value.limit == "parse_memory_mb"
    assert _rss_mb() - before < 100
    # The worker is still (or again) usable for the next document.
    document = await parser.parse(b"Just one paragraph.", filename="ok.txt")
    parser.close()
    assert document.blocks[0].text == "Just one paragraph."


async def test_a_parse_over_its_deadline_is_killed_and_the_worker_replaced() -> None:
    parser = DocumentParser(IngestionPolicy(max_pages=10**6, parse_timeout_s=0.3))
    started = time.monotonic()
    with pytest.raises(DocumentTooLarge) as caught:
        await parser.parse(many_pages_pdf(), filename="long.pdf")
    assert caught.value.limit == "parse_timeout_s"
    assert time.monotonic() - started < 5
    document = await parser.parse(b"After the timeout.", filename="ok.txt")
    parser.close()
    assert document.blocks[0].text == "After the timeout."


@pytest.mark.slow
async def test_two_megabytes_of_text_are_refused_by_the_chunk_limit(rag: Rag) -> None:
    """python-docx takes seconds over 3,744 paragraphs (in the worker, off the loop)."""
    with pytest.raises(DocumentTooLarge) as caught:
        await rag.service.ingest(
            "acme",
            "kb",
            "upload://wall.docx",
            wall_of_text_docx(),
            filename="wall.docx",
            upload=True,
        )
    assert caught.value.limit == "max_chunks"
    record = await rag.service.status("acme", "kb", "upload://wall.docx")
    assert record is not None and record.status == "failed" and "max_chunks" in str(record.error)
    assert rag.embedder.calls == 0


async def test_uploads_beyond_the_hourly_quota_are_refused(rag: Rag) -> None:
    service = IngestionService(
        rag.documents,
        rag.text,
        rag.vectors,
        rag.embedder,
        parser=DocumentParser(IngestionPolicy(uploads_per_hour=2), isolated=False),
    )
    for n in range(2):
        await service.ingest("acme", "kb", f"upload://{n}.txt", b"text", upload=True)
    with pytest.raises(IngestQuotaExceeded) as caught:
        await service.ingest("acme", "kb", "upload://3.txt", b"text", upload=True)
    assert 1 <= caught.value.retry_after <= 3600
    # Another tenant, and files from the operator (folders, the CLI), are not affected.
    await service.ingest("other", "kb", "upload://1.txt", b"text", upload=True)
    await service.ingest("acme", "kb", "file:///4.txt", b"text")
