"""Thread pools are sized by the CPUs the process may use, not the machine's."""

from __future__ import annotations

import os

import pytest
from lockgate.cpus import usable_cpus
from lockgate.embeddings.local import default_threads


def test_a_process_pinned_to_one_core_sizes_its_model_threads_to_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    assert usable_cpus() == 1
    assert default_threads("int8", texts=32) == 1
    assert default_threads("shipped") == 1


def test_without_affinity_the_machine_counts_and_the_pool_stays_at_four(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 16)
    assert usable_cpus() == 16
    assert default_threads("int8", texts=32) == 4
    assert default_threads("int8", texts=1) == 1
