"""A write-ahead journal for what a process holds in memory before it writes it in batches.

The usage ledger adds requests up in memory and writes them every quarter second; a `kill -9`
in between would lose them. Each record is appended here first — one `write()` to a file opened
`O_APPEND`, a few microseconds, no `fsync`: the kernel keeps it across a killed process (only a
power cut can lose the last moments). A batch about to be written is sealed (its journal renamed
aside) and deleted once written; at the next start, whatever journal is left is replayed.

A process dying in the instant between writing a batch and deleting its sealed journal would
count that batch twice at the next start; nothing is ever lost short of a power cut.
"""

from __future__ import annotations

import itertools
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

_ACTIVE = "active.jsonl"


class Journal:
    def __init__(self, folder: Path) -> None:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._folder = folder
        self._lock = threading.Lock()
        self._sealed = itertools.count(_next_seal(folder))
        self._fd = self._open()

    def _open(self) -> int:
        return os.open(self._folder / _ACTIVE, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def append(self, record: Any) -> None:
        line = orjson.dumps(record) + b"\n"
        with self._lock:
            os.write(self._fd, line)

    def seal(self) -> Path:
        """Sets the records so far aside (for the batch being written); new ones go to a fresh
        journal. Returns what to `release` once the batch is stored."""
        with self._lock:
            sealed = self._folder / f"sealed-{next(self._sealed):012d}.jsonl"
            os.close(self._fd)
            os.replace(self._folder / _ACTIVE, sealed)
            self._fd = self._open()
        return sealed

    @staticmethod
    def release(sealed: Path) -> None:
        sealed.unlink(missing_ok=True)

    def leftovers(self) -> Iterator[tuple[Path, list[Any]]]:
        """What an earlier process left unwritten, oldest first, as (file, records); call
        `release` on each file once its records are stored. Must run before this journal's
        first `append`."""
        with self._lock:
            os.close(self._fd)
            if (self._folder / _ACTIVE).stat().st_size:
                sealed = self._folder / f"sealed-{next(self._sealed):012d}.jsonl"
                os.replace(self._folder / _ACTIVE, sealed)
            self._fd = self._open()
        for sealed in sorted(self._folder.glob("sealed-*.jsonl")):
            records = []
            for line in sealed.read_bytes().splitlines():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:
                    continue  # a line cut by the crash: it was never acknowledged as recorded
            yield sealed, records

    def close(self) -> None:
        with self._lock:
            os.close(self._fd)


def _next_seal(folder: Path) -> int:
    numbers = [int(p.stem.removeprefix("sealed-")) for p in folder.glob("sealed-*.jsonl")]
    return max(numbers, default=0) + 1
