"""Files and folders into a collection: one-shot ingestion, folder sync, the watched folder."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from lockgate.rag.folders import ingest_paths, source_uri, sync_folder, watch_folder
from lockgate.rag.model import IngestResult

from tests.unit.rag.conftest import Rag


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


async def test_ingest_paths_walks_folders_for_supported_files(rag: Rag, tmp_path: Path) -> None:
    write(tmp_path / "kb" / "a.md", "# A\n\nAlpha.")
    write(tmp_path / "kb" / "sub" / "b.txt", "Bravo.")
    write(tmp_path / "kb" / "image.png", "not text")
    write(tmp_path / "kb" / ".hidden" / "c.md", "# C\n\nHidden.")
    results = await ingest_paths(rag.service, [tmp_path / "kb"], tenant="acme", collection="kb")
    assert [(Path(r.source_uri).name, r.outcome) for r in results] == [
        ("a.md", "indexed"),
        ("b.txt", "indexed"),
    ]


async def test_sync_follows_edits_and_deletions_but_not_other_sources(
    rag: Rag, tmp_path: Path
) -> None:
    folder = tmp_path / "watched"
    a = write(folder / "a.md", "# A\n\nAlpha.")
    b = write(folder / "b.md", "# B\n\nBravo.")
    elsewhere = write(tmp_path / "other.md", "# Other\n\nKept.")
    await ingest_paths(rag.service, [elsewhere], tenant="acme", collection="kb")
    state = await sync_folder(rag.service, folder, tenant="acme", collection="kb")
    a.write_text("# A\n\nAlpha, edited.")
    os.utime(a, ns=(1, 1))
    b.unlink()
    seen: list[IngestResult] = []
    await sync_folder(
        rag.service, folder, tenant="acme", collection="kb", previous=state, on_result=seen.append
    )
    assert sorted((Path(r.source_uri).name, r.outcome) for r in seen) == [
        ("a.md", "replaced"),
        ("b.md", "deleted"),
    ]
    names = sorted(Path(d.source_uri).name for d in await rag.service.list_documents("acme", "kb"))
    assert names == ["a.md", "other.md"]


async def test_a_file_dropped_in_a_watched_folder_becomes_answerable(
    rag: Rag, tmp_path: Path
) -> None:
    folder = tmp_path / "inbox"
    folder.mkdir()
    stop = asyncio.Event()
    task = asyncio.create_task(
        watch_folder(rag.service, folder, tenant="acme", collection="kb", interval=0.05, stop=stop)
    )
    try:
        await asyncio.sleep(0.1)
        path = write(folder / "gift-cards.md", "# Gift cards\n\nGift cards never expire.")
        for _ in range(100):
            hits = await rag.retriever.retrieve("acme", "kb", "do gift cards expire", 3)
            if hits:
                break
            await asyncio.sleep(0.02)
        assert [h.uri for h in hits] == [source_uri(path)]
    finally:
        stop.set()
        await asyncio.wait_for(task, 2)
