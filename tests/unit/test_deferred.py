"""Work put off until the gateway waits anyway: in order, never lost, never run twice."""

from __future__ import annotations

import asyncio
import logging

import pytest
from lockgate import deferred
from lockgate.deferred import defer, run_pending


async def test_put_off_work_waits_for_a_moment_to_spare_then_runs_in_order() -> None:
    done: list[int] = []
    for n in range(3):
        defer(lambda n=n: done.append(n))
    await asyncio.sleep(0)
    assert done == []  # not on the path of what the loop does next
    run_pending()
    run_pending()
    assert done == [0, 1, 2]


async def test_without_an_upstream_call_it_runs_after_a_short_delay() -> None:
    done: list[str] = []
    defer(lambda: done.append("line"))
    await asyncio.sleep(deferred.MAX_DELAY_S * 3)
    assert done == ["line"]


async def test_one_failure_neither_stops_the_rest_nor_escapes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    done: list[str] = []

    def broken() -> None:
        raise RuntimeError("disk full")

    defer(broken)
    defer(lambda: done.append("next"))
    with caplog.at_level(logging.ERROR):
        run_pending()
    assert done == ["next"]
    assert any("deferred work failed" in r.getMessage() for r in caplog.records)


def test_outside_a_running_loop_work_runs_at_once() -> None:
    done: list[str] = []
    defer(lambda: done.append("now"))
    assert done == ["now"]
