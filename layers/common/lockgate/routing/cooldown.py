"""Per-target circuit breaking: skip a target after repeated failures, let it back in later."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from lockgate.policy import Cooldown, Target


@dataclass(slots=True)
class _State:
    failures: int = 0
    until: float = 0.0


class CooldownTracker:
    def __init__(self, cooldown: Cooldown, clock: Callable[[], float] = time.monotonic) -> None:
        self._cooldown = cooldown
        self._clock = clock
        self._states: dict[str, _State] = {}

    def cooling(self, target: Target) -> bool:
        state = self._states.get(target.key)
        return state is not None and state.until > self._clock()

    def order(self, targets: Sequence[Target]) -> list[Target]:
        """Targets to try, in policy order, cooling ones left out.

        When every target is cooling, the one that recovers first is tried anyway: refusing
        outright would turn a blip into an outage for the whole cooldown.
        """
        ready = [t for t in targets if not self.cooling(t)]
        if ready or not targets:
            return ready
        return [min(targets, key=lambda t: self._states[t.key].until)]

    def succeeded(self, target: Target) -> None:
        state = self._states.get(target.key)
        if state is not None:
            state.failures = 0
            state.until = 0.0

    def failed(self, target: Target) -> None:
        state = self._states.setdefault(target.key, _State())
        state.failures += 1
        if state.failures >= self._cooldown.failures:
            state.until = self._clock() + self._cooldown.seconds
            state.failures = 0
