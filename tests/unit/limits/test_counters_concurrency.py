"""No lost updates and no over-admission when threads and processes hammer one counter."""

from __future__ import annotations

import multiprocessing
import threading
from pathlib import Path

from lockgate.limits.ports import Increment
from lockgate.stores.embedded.counters import SqliteCounterStore

LIMIT = 90
PER_WORKER = 40
WORKERS = 4


def _hammer(path: str, results: multiprocessing.Queue[int]) -> None:  # type: ignore[type-arg]
    store = SqliteCounterStore(Path(path))
    admitted = 0
    for _ in range(PER_WORKER):
        result = store.acquire([Increment("limited", 1, LIMIT), Increment("unlimited", 1)], 1e12)
        admitted += result.admitted
        store.adjust("adjusted", 1, 1e12)
    results.put(admitted)


def test_processes_admit_exactly_the_limit(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    SqliteCounterStore(db).close()
    ctx = multiprocessing.get_context("fork")
    results: multiprocessing.Queue[int] = ctx.Queue()  # type: ignore[type-arg]
    workers = [ctx.Process(target=_hammer, args=(str(db), results)) for _ in range(WORKERS)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    admitted = sum(results.get(timeout=5) for _ in workers)
    values = SqliteCounterStore(db).values(["limited", "unlimited", "adjusted"])
    assert admitted == LIMIT
    assert values == {"limited": LIMIT, "unlimited": LIMIT, "adjusted": WORKERS * PER_WORKER}


def test_threads_sharing_a_store_lose_no_updates(tmp_path: Path) -> None:
    store = SqliteCounterStore(tmp_path / "c.db")
    admitted: list[bool] = []

    def run() -> None:
        for _ in range(PER_WORKER):
            admitted.append(store.acquire([Increment("n", 3, 3 * LIMIT)], 1e12).admitted)

    threads = [threading.Thread(target=run) for _ in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(admitted) == LIMIT
    assert store.values(["n"]) == {"n": 3 * LIMIT}
