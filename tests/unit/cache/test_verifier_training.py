"""How the verifier's training data is split and its operating point chosen: validation pairs
never share a question with training, pairs follow the data sets' own derivation, and the
threshold is the strictest that serves the target share without wrong hits on near misses."""

from __future__ import annotations

import numpy as np
import pytest
from lockgate.cache.train_verifier import TARGET_SHARE, operating_point
from lockgate.cache.validate_verifier import OutOfFold, share_at, wrong_at
from lockgate.cache.verifier_data import FOLDS, Utterance, fold_of, fold_pairs, neighbours

QUESTIONS = {
    "freeze_card": ["how do i freeze my card", "can you freeze my card please", "freeze card now"],
    "activate_card": ["how do i activate my card", "activate my new card", "card activation help"],
    "refund": ["where is my refund", "i want a refund for my order", "refund not received"],
    "oos": ["how do i freeze my card account at another bank", "what is the weather on mars"],
}


def items() -> list[Utterance]:
    return [Utterance(t, intent, "test") for intent, ts in QUESTIONS.items() for t in ts]


def test_folds_are_stable_and_cover_every_question() -> None:
    texts = [u.text for u in items()]
    assert [fold_of(t) for t in texts] == [fold_of(t) for t in texts]
    assert all(0 <= fold_of(t) < FOLDS for t in texts)
    many = [f"question number {i}" for i in range(500)]
    counts = np.bincount([fold_of(t) for t in many], minlength=FOLDS)
    assert counts.min() > 500 / FOLDS / 2  # a hash, not one fold for everything


def test_pairs_stay_inside_the_members_and_follow_the_derivation() -> None:
    data = items()
    near = neighbours(data)
    members = [i for i, u in enumerate(data) if u.text != "freeze card now"]
    pairs = fold_pairs(data, near, members, static=None, seed=1, per_anchor=(2, 2, 1))
    allowed = {data[i].text for i in members}
    assert pairs and all(p.a in allowed and p.b in allowed for p in pairs)
    intent = {u.text: u.intent for u in data}
    for p in pairs:
        assert p.same == (intent[p.a] == intent[p.b])
        assert not (intent[p.a] == "oos" and intent[p.b] == "oos")
        assert p.a != p.b
    assert len({frozenset((p.a, p.b)) for p in pairs}) == len(pairs)  # no pair twice
    hard = [p for p in pairs if p.kind == "neg_hard"]
    # the hardest other-intent question for "how do i freeze my card" shares the most words
    assert any({p.a, p.b} == {"how do i freeze my card", "how do i activate my card"} for p in hard)
    assert not any(p.same for p in pairs if intent[p.a] == "oos")


def test_same_intent_pairs_only_for_static_intents_when_asked() -> None:
    data = items()
    pairs = fold_pairs(data, neighbours(data), range(len(data)), static={"refund"}, seed=1)
    positives = [p for p in pairs if p.same]
    assert positives and all("refund" in p.a and "refund" in p.b for p in positives)
    assert any(not p.same for p in pairs if "card" in p.a)


def test_share_and_wrong_rate_read_off_the_ranking() -> None:
    label = np.array([True, True, False, True, False, True] + [True] * 20 + [False] * 20)
    prob = np.array([0.99, 0.98, 0.97, 0.96, 0.95, 0.94] + [0.5] * 20 + [0.4] * 20)
    # 4 true of 24 served with 2 wrong among the top 6: 33 % wrong, too few hits for a budget
    assert share_at(label, prob, 0.03) == 0.0
    assert wrong_at(label, prob, 4 / 24) == pytest.approx(2 / 6)
    assert share_at(label, prob, 0.08) == pytest.approx(24 / 24)  # 2 wrong of 26 hits


def test_operating_point_is_the_strictest_serving_the_target_share() -> None:
    rng = np.random.default_rng(0)
    label = rng.random(2000) < 0.3
    prob = np.clip(np.where(label, 0.7, 0.3) + rng.normal(0, 0.15, 2000), 0, 1)
    rules_label = np.array([True] * 50 + [False] * 50)
    rules_prob = np.where(rules_label, 0.9, 0.05)
    oof = OutOfFold(label, prob, np.full(2000, "x"), rules_label, rules_prob)
    point = operating_point(oof)
    served = prob >= point["probability"]
    assert (served & label).sum() / label.sum() >= TARGET_SHARE
    stricter = prob >= point["probability"] + 0.01
    assert (stricter & label).sum() / label.sum() < TARGET_SHARE
    # near misses scored high stop the threshold from going lower
    bad = OutOfFold(label, prob, np.full(2000, "x"), rules_label, np.full(100, 0.95))
    assert operating_point(bad).get("share", 0.0) < TARGET_SHARE
