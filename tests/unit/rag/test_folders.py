"""Files and folders into a collection: one-shot ingestion, folder sync, the watched folder."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from lockgate.rag.folders import (
    ingest_paths,
    pipelined,
    source_uri,
    sync_folder,
    watch_folder,
)
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


async def test_pipelined_overlaps_up_to_depth_and_reports_in_order() -> None:
    """The next documents start while one is still being written, but no more than `depth`
    at once, and results come back in the files' order whatever order they finish in."""
    running, peak = 0, 0
    seen: list[tuple[int, int]] = []

    async def work(item: int) -> int:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.002 * ((7 * item) % 5))  # finishing out of order
        running -= 1
        return item * 10

    await pipelined(range(12), work, lambda item, result: seen.append((item, result)), depth=3)
    assert seen == [(i, i * 10) for i in range(12)]
    assert peak == 3


async def test_pipelined_stops_everything_in_flight_when_one_fails() -> None:
    started: list[int] = []
    finished: list[int] = []

    async def work(item: int) -> int:
        started.append(item)
        if item == 1:
            raise OSError("disk gone")
        await asyncio.sleep(0.05)
        finished.append(item)
        return item

    with pytest.raises(OSError, match="disk gone"):
        await pipelined(range(10), work, lambda item, result: None, depth=3)
    await asyncio.sleep(0.1)
    assert max(started) <= 3  # nothing past the window was started
    assert all(item < 3 for item in finished)  # what was in flight was cancelled


async def test_ingest_paths_in_flight_together_match_one_at_a_time(
    rag: Rag, tmp_path: Path
) -> None:
    """Documents ingested concurrently leave the collection exactly as one at a time would:
    every document served, and the same collection version."""
    for n in range(7):
        write(tmp_path / "kb" / f"{n}.md", f"# Doc {n}\n\nParagraph {n} about topic {n}.")
    results = await ingest_paths(
        rag.service, [tmp_path / "kb"], tenant="acme", collection="kb", depth=4
    )
    assert [r.outcome for r in results] == ["indexed"] * 7
    assert [Path(r.source_uri).name for r in results] == [f"{n}.md" for n in range(7)]
    together = await rag.service.collection_version("acme", "kb")
    await ingest_paths(rag.service, [tmp_path / "kb"], tenant="acme", collection="kb2", depth=1)
    assert together == await rag.service.collection_version("acme", "kb2")
    assert len(await rag.service.list_documents("acme", "kb")) == 7
