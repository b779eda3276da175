"""Model name → alias → targets in the order to try them (the alias's balancing strategy);
`auto` goes through the classifier first."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from lockgate.chat import ChatRequest
from lockgate.errors import model_not_found
from lockgate.policy import AUTO, TIERS, Policy, Target
from lockgate.routing.balance import LatencyTracker, WeightedRotation
from lockgate.routing.classifier import Classification, classify


@dataclass(frozen=True, slots=True)
class Route:
    alias: str
    tier: str
    targets: tuple[Target, ...]
    classification: Classification | None = None


class Router:
    def __init__(self, policy: Policy, *, draw: Callable[[], float] = random.random) -> None:
        self._policy = policy
        self._targets = {name: tuple(alias.targets) for name, alias in policy.models.items()}
        self._strategies = {name: alias.strategy for name, alias in policy.models.items()}
        self._rotations = {
            name: WeightedRotation(alias.targets, draw)
            for name, alias in policy.models.items()
            if alias.strategy == "weighted"
        }
        self._alias_tier: dict[str, str] = {}
        for tier, alias in policy.tiers.items():
            self._alias_tier.setdefault(alias, tier)
        self.latency = LatencyTracker(draw)

    def _ordered(self, alias: str) -> tuple[Target, ...]:
        strategy = self._strategies[alias]
        if strategy == "weighted":
            return self._rotations[alias].order()
        if strategy == "least_latency":
            return self.latency.order(self._targets[alias])
        return self._targets[alias]

    @property
    def model_names(self) -> list[str]:
        return [AUTO, *self._policy.models]

    def route(self, request: ChatRequest, max_tier: str | None = None) -> Route:
        """`max_tier` caps what `auto` may choose (a tenant's plan or a spent budget)."""
        if request.model == AUTO:
            classification = classify(request)
            tier = classification.tier
            if max_tier in TIERS and TIERS.index(tier) > TIERS.index(max_tier):
                tier = max_tier
            alias = self._policy.tier_alias(tier)
            return Route(alias, tier, self._ordered(alias), classification)
        if request.model not in self._targets:
            raise model_not_found(request.model, self.model_names)
        tier = self._alias_tier.get(request.model, "direct")
        return Route(request.model, tier, self._ordered(request.model))
