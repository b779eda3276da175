"""Load-balancing order: weighted draws and least-latency, on the real router."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from lockgate.chat import ChatRequest
from lockgate.policy import PolicyError, Target, parse_policy
from lockgate.routing.balance import LatencyTracker, WeightedRotation, weighted_order
from lockgate.routing.router import Router

A, B, C = (Target(provider="p", model=m) for m in "abc")


def policy(strategy: str, targets: list[object]) -> object:
    return parse_policy(
        {
            "providers": {"p": {"kind": "openai", "base_url": "http://127.0.0.1:9/v1"}},
            "models": {"m": {"targets": targets, "strategy": strategy}},
        }
    )


def ask() -> ChatRequest:
    return ChatRequest(model="m", messages=[{"role": "user", "content": "hi"}])  # type: ignore[list-item]


def weighted_router(*weights: float) -> Router:
    targets = [
        {"provider": "p", "model": m, "weight": w} for m, w in zip("abc", weights, strict=False)
    ]
    return Router(policy("weighted", targets), draw=random.Random(7).random)  # type: ignore[arg-type]


def test_weighted_first_choices_take_exact_turns() -> None:
    router = weighted_router(6, 3, 1)
    firsts = [router.route(ask()).targets[0].model for _ in range(1_000)]
    # Every run of 10 requests holds exactly 6, 3 and 1: the split holds from the start.
    for start in range(0, 1_000, 10):
        assert Counter(firsts[start : start + 10]) == {"a": 6, "b": 3, "c": 1}
    # Interleaved, not in blocks: the heavy target never takes more than 3 turns in a row.
    assert "aaaa" not in "".join(firsts)


def test_weighted_fallbacks_follow_the_weights_of_the_rest() -> None:
    router = weighted_router(6, 3, 1)
    seconds = Counter(
        route.targets[1].model
        for route in (router.route(ask()) for _ in range(10_000))
        if route.targets[0].model == "a"
    )
    # Behind "a", "b" (weight 3) comes before "c" (weight 1) three times in four.
    assert abs(seconds["b"] / (seconds["b"] + seconds["c"]) - 0.75) < 0.03
    # Every order still holds every target, so failures fall back along the rest.
    assert {len(set(router.route(ask()).targets)) for _ in range(100)} == {3}


def test_zero_weight_is_only_a_last_resort() -> None:
    zero = Target(provider="p", model="z", weight=0)
    draw = random.Random(1).random
    assert {weighted_order([zero, A, B], draw)[-1] for _ in range(500)} == {zero}
    rotation = WeightedRotation([zero, A, B], draw)
    assert {rotation.order()[-1] for _ in range(500)} == {zero}


def test_least_latency_prefers_the_fastest_and_measures_new_targets_first() -> None:
    never_explore = iter(lambda: 0.99, None).__next__
    tracker = LatencyTracker(never_explore)
    tracker.observe(A, 0.9)
    tracker.observe(B, 0.2)
    assert tracker.order([A, B, C]) == (C, B, A)  # C is unmeasured: it goes first, once
    tracker.observe(C, 0.5)
    assert tracker.order([A, B, C]) == (B, C, A)


def test_least_latency_moves_with_a_slowing_target() -> None:
    tracker = LatencyTracker(lambda: 0.99)
    tracker.observe(A, 0.1)
    tracker.observe(B, 0.3)
    for _ in range(10):
        tracker.observe(A, 1.0)  # A slows down for a while
    estimate = tracker.estimate(A)
    assert estimate is not None and 0.8 < estimate < 1.0
    assert tracker.order([A, B])[0] == B


def test_least_latency_still_explores_a_little() -> None:
    draws = random.Random(3)
    router = Router(
        policy("least_latency", ["p/a", "p/b"]),  # type: ignore[arg-type]
        draw=draws.random,
    )
    router.latency.observe(A, 0.1)
    router.latency.observe(B, 2.0)
    firsts = Counter(router.route(ask()).targets[0].model for _ in range(4_000))
    assert firsts["b"] > 0 and firsts["b"] / 4_000 < 0.05


def test_fallback_keeps_the_policy_order() -> None:
    router = Router(policy("fallback", ["p/c", "p/a", "p/b"]))  # type: ignore[arg-type]
    assert [t.model for t in router.route(ask()).targets] == ["c", "a", "b"]


def test_unknown_strategy_is_refused_with_the_field() -> None:
    with pytest.raises(PolicyError, match=r"models\.m\.strategy"):
        policy("round_robin", ["p/x"])
