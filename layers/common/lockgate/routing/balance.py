"""Load balancing among an alias's targets: the order in which the executor tries them.

`fallback` keeps the policy's order. `weighted` draws the order at random in proportion to the
targets' weights (weighted sampling without replacement, so the rest stay in line as
fallbacks). `least_latency` puts first the target with the lowest moving estimate of time to
first token (to the whole answer, for a request that does not stream); a target not measured
yet goes first so it gets measured, and a small share of requests explores in random order so
a target that was slow once is measured again. The executor then leaves out targets that are
cooling down, whatever the order.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence

from lockgate.policy import Target

SMOOTHING = 0.2
"""Weight of the newest observation in the moving average."""
EXPLORE = 0.05


def weighted_order(targets: Sequence[Target], draw: Callable[[], float]) -> tuple[Target, ...]:
    """Efraimidis-Spirakis: sort by u^(1/w); zero-weight targets only ever come last."""

    def key(target: Target) -> float:
        if target.weight <= 0:
            return -math.inf
        return math.log(max(draw(), 1e-12)) / target.weight

    return tuple(sorted(targets, key=key, reverse=True))


class LatencyTracker:
    """An exponentially weighted moving average of time to first token, per target."""

    def __init__(self, draw: Callable[[], float] = random.random) -> None:
        self._estimates: dict[str, float] = {}
        self._draw = draw

    def observe(self, target: Target, seconds: float) -> None:
        previous = self._estimates.get(target.key)
        self._estimates[target.key] = (
            seconds if previous is None else previous + SMOOTHING * (seconds - previous)
        )

    def estimate(self, target: Target) -> float | None:
        return self._estimates.get(target.key)

    def order(self, targets: Sequence[Target]) -> tuple[Target, ...]:
        if self._draw() < EXPLORE:
            return weighted_order(targets, self._draw)
        return tuple(sorted(targets, key=lambda t: self._estimates.get(t.key, -1.0)))
