"""The gateway and the mock upstream run as threads of the test process. A full collection of
that process's heap (every module, model and template the suite has loaded) stalls them for up
to a second, longer than the deadlines these tests give an upstream; `lockgate serve` runs in
a process of its own, its start-up heap frozen. So the collector waits between tests."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def no_collection_mid_test() -> Iterator[None]:
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
