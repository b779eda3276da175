"""The usage period: remembered between calls, yet right on both sides of every month's edge."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from lockgate.limits.budgets import month_of


def at(*parts: int) -> float:
    return datetime(*parts, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("moment", "month"),
    [
        (at(2024, 12, 31, 23, 59, 59), "2024-12"),
        (at(2025, 1, 1), "2025-01"),
        (at(2025, 1, 31, 23, 59, 59), "2025-01"),
        (at(2025, 2, 1), "2025-02"),
        (at(2024, 2, 29, 12), "2024-02"),
        (at(2024, 3, 1), "2024-03"),
    ],
)
def test_month_of_each_side_of_an_edge(moment: float, month: str) -> None:
    month_of(moment - 86400 * 40)  # something else remembered first
    assert month_of(moment) == month
    assert month_of(moment - 0.001) == datetime.fromtimestamp(moment - 0.001, UTC).strftime("%Y-%m")
    assert month_of(moment) == month


def test_going_back_in_time_is_answered_too() -> None:
    assert month_of(at(2030, 6, 15)) == "2030-06"
    assert month_of(at(2001, 9, 9)) == "2001-09"
    assert month_of(at(2030, 6, 15)) == "2030-06"
