"""How many CPUs this process may run on, which is what sizes a thread pool."""

from __future__ import annotations

import os


def usable_cpus() -> int:
    """The CPUs in this process's affinity mask, not the machine's: under `taskset`, a CPU set
    of a container or a pinned benchmark, `os.cpu_count()` counts cores the process may not
    use, and threads sized by it take turns on the same core (two model threads on one core ran
    slower than one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # no affinity on this platform (macOS)
        return max(1, os.cpu_count() or 1)
