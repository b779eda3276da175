"""Load balancing among an alias's targets: the order in which the executor tries them.

`fallback` keeps the policy's order. `weighted` takes turns in proportion to the targets'
weights (smooth weighted round robin, as nginx does: a 3:1 split sends exactly 3 of every 4
requests to the heavy target, interleaved, so a small canary weight gets its share from the
first requests instead of whenever chance allows); the fallbacks behind the first choice are
drawn at random in proportion to their weights, so one target's failures spread over the rest.
`least_latency` puts first the target with the lowest moving estimate of time to
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


class WeightedRotation:
    """Smooth weighted round robin over one alias's targets.

    Each turn every target earns its weight; the richest goes first and pays the total back.
    Zero-weight targets never earn, so they only ever come last, as fallbacks.
    """

    def __init__(self, targets: Sequence[Target], draw: Callable[[], float]) -> None:
        self._targets = tuple(targets)
        self._draw = draw
        self._credit = [0.0] * len(self._targets)
        self._total = sum(t.weight for t in self._targets if t.weight > 0)

    def order(self) -> tuple[Target, ...]:
        if self._total <= 0:
            return weighted_order(self._targets, self._draw)
        for i, target in enumerate(self._targets):
            if target.weight > 0:
                self._credit[i] += target.weight
        first = max(
            (i for i, t in enumerate(self._targets) if t.weight > 0),
            key=self._credit.__getitem__,
        )
        self._credit[first] -= self._total
        rest = [t for i, t in enumerate(self._targets) if i != first]
        return (self._targets[first], *weighted_order(rest, self._draw))


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
