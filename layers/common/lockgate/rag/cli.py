"""`lockgate ingest | watch | collections | documents | delete`: RAG from the command line.

These open the embedded stores under the data directory directly. A server running on the same
directory picks the changes up by itself: it notices that a collection's version moved without
it, and reloads its in-memory vectors from the file before it next searches that collection.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

from lockgate.rag import wiring
from lockgate.rag.folders import ingest_paths, source_uri, supported_files, watch_folder
from lockgate.rag.model import IngestResult

DEFAULT_TENANT = "default"

Open = Callable[[argparse.Namespace], AbstractAsyncContextManager[wiring.RagComponents]]


@asynccontextmanager
async def open_embedded(args: argparse.Namespace) -> AsyncIterator[wiring.RagComponents]:
    from lockgate.settings import Settings, load_dotenv

    load_dotenv()
    settings = Settings.from_env()
    rag = wiring.embedded(Path(getattr(args, "data_dir", None) or settings.data_dir))
    try:
        yield rag
    finally:
        await rag.aclose()


def add_commands(subparsers: argparse._SubParsersAction, open_rag: Open = open_embedded) -> None:  # type: ignore[type-arg]
    """Registers the RAG commands on the `lockgate` parser's subparsers."""

    def common(parser: argparse.ArgumentParser, collection_required: bool = True) -> None:
        parser.add_argument("--tenant", default=DEFAULT_TENANT, help="tenant id (default: default)")
        if collection_required:
            parser.add_argument("--collection", required=True, help="collection name")
        parser.add_argument("--data-dir", type=Path, help="data directory (or LOCKGATE_DATA_DIR)")

    ingest = subparsers.add_parser("ingest", help="index files or folders into a collection")
    ingest.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    common(ingest)
    ingest.add_argument("--quiet", action="store_true", help="no progress bar")
    ingest.set_defaults(run=lambda a: asyncio.run(_ingest(a, open_rag)))

    watch = subparsers.add_parser("watch", help="keep a collection in step with a folder")
    watch.add_argument("folder", type=Path)
    common(watch)
    watch.add_argument("--interval", type=float, default=0.5, help="seconds between scans")
    watch.set_defaults(run=lambda a: asyncio.run(_watch(a, open_rag)))

    collections = subparsers.add_parser("collections", help="list a tenant's collections")
    common(collections, collection_required=False)
    collections.set_defaults(run=lambda a: asyncio.run(_collections(a, open_rag)))

    documents = subparsers.add_parser("documents", help="list documents, status and errors")
    common(documents)
    documents.set_defaults(run=lambda a: asyncio.run(_documents(a, open_rag)))

    delete = subparsers.add_parser("delete", help="delete documents or a whole collection")
    delete.add_argument("paths", nargs="*", type=Path, metavar="PATH")
    common(delete)
    delete.add_argument("--all", action="store_true", help="delete the whole collection")
    delete.set_defaults(run=lambda a: asyncio.run(_delete(a, open_rag)))


async def _ingest(args: argparse.Namespace, open_rag: Open) -> int:
    from tqdm import tqdm

    try:
        files = supported_files(args.paths)
    except FileNotFoundError as exc:
        print(f"lockgate: {exc}", file=sys.stderr)
        return 2
    counts: dict[str, int] = {}
    failures: list[IngestResult] = []
    async with open_rag(args) as rag:
        bar = tqdm(total=len(files), unit="file", disable=args.quiet, file=sys.stderr)
        chunks = 0

        def progress(uri: str, done: int, total: int) -> None:
            bar.set_postfix_str(f"{Path(uri).name}: {done}/{total} chunks", refresh=True)

        def on_result(result: IngestResult) -> None:
            nonlocal chunks
            counts[result.outcome] = counts.get(result.outcome, 0) + 1
            chunks += result.chunks if result.outcome in ("indexed", "replaced") else 0
            if result.outcome == "failed":
                failures.append(result)
            bar.update(1)

        await ingest_paths(
            rag.ingestion,
            files,
            tenant=args.tenant,
            collection=args.collection,
            progress=progress,
            on_result=on_result,
        )
        bar.close()
        version = await rag.ingestion.collection_version(args.tenant, args.collection)
    summary = ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items())) or "no files"
    print(f"{args.collection}: {summary}; {chunks} chunks written; version {version}")
    for failure in failures:
        print(f"  failed: {failure.source_uri}: {failure.error}", file=sys.stderr)
    return 1 if failures else 0


async def _watch(args: argparse.Namespace, open_rag: Open) -> int:
    def on_result(result: IngestResult) -> None:
        if result.outcome != "unchanged":
            detail = f" ({result.error})" if result.error else f" ({result.chunks} chunks)"
            print(f"{result.outcome}: {result.source_uri}{detail}", flush=True)

    async with open_rag(args) as rag:
        print(f"watching {args.folder} → {args.tenant}/{args.collection} (Ctrl-C stops)")
        try:
            await watch_folder(
                rag.ingestion,
                args.folder,
                tenant=args.tenant,
                collection=args.collection,
                interval=args.interval,
                on_result=on_result,
            )
        except NotADirectoryError as exc:
            print(f"lockgate: {exc}", file=sys.stderr)
            return 2
    return 0


async def _collections(args: argparse.Namespace, open_rag: Open) -> int:
    async with open_rag(args) as rag:
        infos = await rag.ingestion.list_collections(args.tenant)
    for info in infos:
        print(
            f"{info.collection}\t{info.documents} documents\t{info.chunks} chunks"
            f"\t{info.failed} failed\tversion {info.version}"
        )
    return 0


async def _documents(args: argparse.Namespace, open_rag: Open) -> int:
    async with open_rag(args) as rag:
        records = await rag.ingestion.list_documents(args.tenant, args.collection)
    for r in records:
        error = f"\t{r.error}" if r.error else ""
        print(f"{r.status}\t{r.chunk_count} chunks\t{r.title}\t{r.source_uri}{error}")
    return 0


async def _delete(args: argparse.Namespace, open_rag: Open) -> int:
    if bool(args.paths) == bool(args.all):
        print("lockgate: name files to delete, or --all for the collection", file=sys.stderr)
        return 2
    async with open_rag(args) as rag:
        if args.all:
            n = await rag.ingestion.delete_collection(args.tenant, args.collection)
            print(f"{args.collection}: {n} documents deleted")
            return 0
        code = 0
        for path in args.paths:
            result = await rag.ingestion.delete(args.tenant, args.collection, source_uri(path))
            print(f"{result.outcome}: {path}")
            code = code or (1 if result.outcome in ("failed", "missing") else 0)
    return code
