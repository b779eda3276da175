"""How the verifier's training data is split and its operating point chosen: validation pairs
never share a question with training, pairs follow the data sets' own derivation, and the
threshold is the strictest that serves the target share without wrong hits on near misses; a
deployment's own question groups are read, checked line by line, and trained on."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from lockgate.cache.train_verifier import PROBABILITIES, TARGET_SHARE, operating_point
from lockgate.cache.train_verifier import main as train_main
from lockgate.cache.validate_verifier import OutOfFold, share_at, wrong_at
from lockgate.cache.verifier import Verifier
from lockgate.cache.verifier_data import (
    FOLDS,
    GROUPS,
    OUT_OF_SCOPE,
    TrainingDataError,
    Utterance,
    all_pairs,
    fold_of,
    fold_pairs,
    folds,
    idf_texts,
    neighbours,
    question_groups,
    utterances,
)

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


# --- a deployment's own question groups ---------------------------------------------------------

GROUPS_FILE = [
    {"text": "how do i freeze my card", "group": "freeze"},
    {"text": "can you freeze my card please", "group": "freeze"},
    {"text": "Can you freeze my card, please?", "group": "freeze"},  # the same, normalised
    {"text": "how do i activate my card", "group": "activate"},
    {"text": "activate my new card", "group": "activate"},
    {"text": "what is the weather on mars", "group": None},
    {"text": "   ", "group": "blank"},
]


def write_lines(path: Path, rows: list[object]) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n", encoding="utf-8")
    return path


def test_question_groups_read_a_deployments_questions(tmp_path: Path) -> None:
    items = question_groups(write_lines(tmp_path / "mine.jsonl", GROUPS_FILE))
    assert [(u.text, u.intent) for u in items] == [
        ("how do i freeze my card", "group:freeze"),
        ("can you freeze my card please", "group:freeze"),
        ("how do i activate my card", "group:activate"),
        ("activate my new card", "group:activate"),
        ("what is the weather on mars", OUT_OF_SCOPE),
    ]
    assert {u.source for u in items} == {GROUPS}


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("{not json", "2: not JSON"),
        ('["how do i freeze my card"]', '2: expected {"text"'),
        ('{"text": 3, "group": "x"}', '2: expected {"text"'),
        ('{"text": "hi", "group": ""}', "2: a group is a non-empty string or null"),
        ('{"text": "hi", "group": 7}', "2: a group is a non-empty string or null"),
        ('{"text": "hi", "group": "x", "answer_varies": "yes"}', "2: answer_varies is true or"),
    ],
)
def test_a_bad_groups_line_is_named(tmp_path: Path, line: str, says: str) -> None:
    path = tmp_path / "mine.jsonl"
    path.write_text(json.dumps(GROUPS_FILE[0]) + "\n" + line + "\n", encoding="utf-8")
    with pytest.raises(TrainingDataError, match=re.escape(f"mine.jsonl:{says}")):
        question_groups(path)


def test_groups_that_teach_nothing_are_refused(tmp_path: Path) -> None:
    one_group = write_lines(tmp_path / "one.jsonl", GROUPS_FILE[:3])
    with pytest.raises(TrainingDataError, match="at least two groups"):
        question_groups(one_group)
    (tmp_path / "latin1.jsonl").write_bytes(b'{"text": "caf\xe9", "group": "a"}\n')
    with pytest.raises(TrainingDataError, match="cannot be read"):
        question_groups(tmp_path / "latin1.jsonl")
    with pytest.raises(TrainingDataError, match="cannot be read"):
        question_groups(tmp_path / "missing.jsonl")
    with pytest.raises(TrainingDataError, match="unknown built-in sources: quora"):
        utterances(tmp_path, ("banking77", "quora"))


def test_groups_alone_are_folded_without_the_public_data(tmp_path: Path) -> None:
    rows = [
        {"text": f"{verb} my {thing} {how}", "group": f"{verb}-{thing}"}
        for verb in ("freeze", "activate", "replace", "close")
        for thing in ("card", "account")
        for how in ("please", "now", "today", "asap", "quickly")
    ]
    items = question_groups(write_lines(tmp_path / "mine.jsonl", rows))
    made = folds(tmp_path / "no-data", sources={GROUPS: items})
    group = {u.text: u.intent for u in items}
    for k, fold in enumerate(made):
        assert {fold_of(t) for p in fold.natural[GROUPS] for t in (p.a, p.b)} <= {k}
        assert all(p.same == (group[p.a] == group[p.b]) for p in fold.natural[GROUPS])
    assert any(p.same for f in made for p in f.natural[GROUPS])
    assert idf_texts(tmp_path / "no-data", (), [u.text for u in items]) == [u.text for u in items]


def test_questions_whose_answer_varies_are_only_contrasts(tmp_path: Path) -> None:
    weather = ["what is the weather like", "how is the weather today", "weather forecast please"]
    rows = [
        *GROUPS_FILE[:5],
        *({"text": t, "group": "weather", "answer_varies": True} for t in weather),
    ]
    items = question_groups(write_lines(tmp_path / "mine.jsonl", rows))
    pairs = [
        p
        for p in all_pairs(tmp_path / "no-data", (5, 5, 2), sources={GROUPS: items})
        if p.kind in {"pos", "neg_hard", "neg_random"}
    ]
    assert not any(p.a in weather and p.b in weather for p in pairs)
    contrasts = [p for p in pairs if (p.a in weather) != (p.b in weather)]
    assert contrasts and not any(p.same for p in contrasts)
    assert any(p.same for p in pairs)  # the fixed-answer groups still teach


def test_operating_point_on_a_wrong_budget_is_the_loosest_within_it() -> None:
    rng = np.random.default_rng(1)
    n = 3000
    label = rng.random(n) < 0.4
    prob = np.clip(np.where(label, 0.75, 0.35) + rng.normal(0, 0.15, n), 0, 1)
    source = np.where(np.arange(n) % 2 == 0, GROUPS, "banking77")
    rules_label = np.array([True] * 50 + [False] * 50)
    rules_prob = np.where(rules_label, 0.9, 0.05)
    oof = OutOfFold(label, prob, source, rules_label, rules_prob)
    point = operating_point(oof, budget=0.05)
    mine = source == GROUPS

    def wrong(threshold: float) -> float:
        served = (prob >= threshold) & mine
        return float((served & ~label).sum() / served.sum())

    assert point["budget_met"] == 1.0
    assert wrong(point["probability"]) <= 0.05
    looser = [t for t in PROBABILITIES if t < point["probability"]]
    assert all(wrong(t) > 0.05 for t in looser)  # none looser keeps the budget
    # a budget nothing meets keeps the strictest threshold and says so
    hopeless = OutOfFold(label, np.where(label, 0.1, 0.95), source, rules_label, rules_prob)
    point = operating_point(hopeless, budget=0.05)
    assert point["budget_met"] == 0.0 and point["probability"] == PROBABILITIES[0]


def test_training_command_refuses_what_it_cannot_train_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{oops\n", encoding="utf-8")
    out = tmp_path / "out"
    assert train_main(["--builtin", "", "--groups", str(bad), "--out", str(out)]) == 2
    assert "bad.jsonl:1: not JSON" in capsys.readouterr().err
    assert train_main(["--builtin", "", "--out", str(out)]) == 2
    assert "nothing to train on" in capsys.readouterr().err
    args = ["--groups", str(bad), "--wrong-budget", "3", "--out", str(out)]
    assert train_main(args) == 2
    assert "--wrong-budget" in capsys.readouterr().err
    assert not out.exists()  # nothing half written


@pytest.mark.slow
def test_a_verifier_trained_on_groups_alone_is_written_and_serves(tmp_path: Path) -> None:
    """Real MiniLM vectors, the real fit: the verifier written for a deployment loads, knows
    its own groups apart, and its card says what it was trained and tuned on."""
    rows = [
        {"text": text, "group": group}
        for group, texts in {
            "freeze": ["how do i freeze my card", "freeze my card please",
                       "i need to freeze my card", "can you block my card for now",
                       "put a hold on my card", "lock my card"],
            "activate": ["how do i activate my card", "activate my new card",
                         "my new card needs activating", "how to start using my new card",
                         "turn on my new card", "enable my card"],
            "refund": ["where is my refund", "i want my money back", "refund not received yet",
                       "how long does a refund take", "when will i get my refund",
                       "my refund has not arrived"],
            "pin": ["how do i change my pin", "i want a new pin", "reset my pin number",
                    "can i pick a different pin", "update my card pin", "set a new pin code"],
        }.items()
        for text in texts
    ]  # fmt: skip
    groups = write_lines(tmp_path / "mine.jsonl", rows)
    out = tmp_path / "model"
    args = ["--builtin", "", "--groups", str(groups), "--out", str(out), "--wrong-budget", "0.2"]
    assert train_main(args) == 0
    verifier = Verifier.load(out / "verifier.npz")
    card = json.loads((out / "verifier.json").read_text())
    assert "mine.jsonl" in card["training"] and "20%" in card["tuning"]
    assert card["idf"] == "the question groups of mine.jsonl"
    same = verifier.probability("how can i freeze my card", "freeze my card please", 0.9)
    other = verifier.probability("how can i freeze my card", "how do i activate my card", 0.8)
    assert same > other
