"""Trains the semantic cache's verifier, reproducibly, from licence-permissive public pairs.

    python -m lockgate.cache.train_verifier [--data ../shared/data] [--out DIR] [--cache DIR]

Training pairs (shipped weights come only from these; `verifier_data`): pairs among the
questions of BANKING77 train (CC BY 4.0) and CLINC150 train + val (CC BY 3.0; same-intent pairs
only for intents whose answer is one text for every phrasing), plus near misses made by rule
from their questions (`near_misses`, `train` vocabulary).

The operating point (the probability threshold; the cosine floor stays `MIN_COSINE`) is chosen
on the same sources without training on what it is chosen on: the verifier is fitted five times
on question-disjoint folds (`validate_verifier`), and the threshold is the strictest at which
the out-of-fold true pairs are served at `TARGET_SHARE`, with at most `TARGET_WRONG_RULES`
wrong hits on the out-of-fold near misses. A share rather than a wrong-hit budget: the folds'
wrong hits are dominated by BANKING77's paraphrases labelled as two intents, which no verifier
can tell apart, so a budget there would say more about the labels than about the verifier.
Nothing from the benchmark's held-out sets is read.

A deployment's own questions (`--groups FILE`, see `verifier_data.question_groups`) are paired
and folded with the built-in sources (`--builtin` picks those), and then the operating point is
chosen on the deployment's pairs alone: the loosest threshold whose out-of-fold wrong hits there
stay within `--wrong-budget`. A verifier learns the boundaries of the questions it was trained
on; on another domain it does no better than the cosine (`bench/semantic_own_groups.py`), so
a deployment's own groups are what bring its wrong hits down. The result replaces the packaged
verifier in `--out` (by default the package itself, so `make serve` and `cdk deploy` ship it).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from lockgate.cache.validate_verifier import MIN_HITS, OutOfFold, cross_validate
from lockgate.cache.verifier import CARD, FEATURE_NAMES, WEIGHTS
from lockgate.cache.verifier_data import (
    BUILTIN,
    DEFAULT_DATA,
    GROUPS,
    PER_ANCHOR,
    SEED,
    Embeddings,
    TrainingDataError,
    all_pairs,
    folds,
    idf_texts,
    question_groups,
    utterances,
    vocabulary,
)
from lockgate.cache.verifier_fit import HIDDEN, MIN_COSINE, Featuriser, fit

TARGET_SHARE = 0.20
"""Of the out-of-fold true pairs; the previous operating point served 18 % there."""
TARGET_WRONG_RULES = 0.01
DEFAULT_WRONG_BUDGET = 0.03
PROBABILITIES = tuple(round(x, 3) for x in np.arange(0.99, 0.295, -0.01))
"""Strictest first."""


def operating_point(
    oof: OutOfFold, budget: float | None = None, source: str = GROUPS
) -> dict[str, float]:
    """The strictest probability serving `TARGET_SHARE` of the out-of-fold true pairs within
    the near-miss budget, with the out-of-fold figures there. With a wrong-hit `budget`: the
    loosest probability whose out-of-fold hits among `source`'s pairs are wrong at most that
    often (the strictest one, marked `budget_met: 0`, when none is)."""
    best: dict[str, float] = {}
    mine = oof.source == source
    for threshold in PROBABILITIES:
        served = oof.probability >= threshold
        rules = oof.rules_probability >= threshold
        rules_wrong = int((rules & ~oof.rules_label).sum()) / max(int(rules.sum()), 1)
        if rules_wrong > TARGET_WRONG_RULES:
            break
        mine_hits = int((served & mine).sum())
        mine_wrong = int((served & mine & ~oof.label).sum())
        met = budget is not None and mine_hits >= MIN_HITS and mine_wrong <= budget * mine_hits
        if budget is not None and best and not met:
            continue
        hits = int(served.sum())
        best = {
            "floor": MIN_COSINE,
            "probability": threshold,
            "share": round(int((served & oof.label).sum()) / max(int(oof.label.sum()), 1), 4),
            "wrong": round(int((served & ~oof.label).sum()) / max(hits, 1), 4),
            "rules_share": round(
                int((rules & oof.rules_label).sum()) / max(int(oof.rules_label.sum()), 1), 4
            ),
            "rules_wrong": round(rules_wrong, 4),
        }
        for name in sorted(set(oof.source)):
            mask = oof.source == name
            best[f"{name}_share"] = round(
                int((served & oof.label & mask).sum()) / max(int((oof.label & mask).sum()), 1), 4
            )
            best[f"{name}_wrong"] = round(
                int((served & ~oof.label & mask).sum()) / max(int((served & mask).sum()), 1), 4
            )
        if budget is not None:
            best["budget_met"] = float(met)
        elif best["share"] >= TARGET_SHARE:
            break
    return best


@dataclasses.dataclass(frozen=True)
class Recipe:
    """What a verifier is trained on: built-in sources and a deployment's own questions."""

    builtin: tuple[str, ...] = BUILTIN
    groups: Path | None = None
    wrong_budget: float = DEFAULT_WRONG_BUDGET

    def training(self) -> str:
        named = {
            "banking77": "BANKING77 train (CC BY 4.0)",
            "clinc150": "CLINC150 train + val (CC BY 3.0, static-answer intents for same-intent "
            "pairs)",
        }
        parts = [named[b] for b in self.builtin]
        if self.groups is not None:
            parts.append(f"the question groups of {self.groups.name}")
        return (
            f"{', '.join(parts)}: pairs among their questions "
            f"({', '.join(map(str, PER_ANCHOR))} same-intent / most word-sharing other-intent / "
            "random other-intent per question) + rule-made near misses from their questions"
        )

    def tuning(self) -> str:
        if self.groups is not None:
            return (
                f"out-of-fold probabilities of five question-disjoint folds: the loosest at "
                f"which the hits among {self.groups.name}'s pairs are at most "
                f"{self.wrong_budget:.0%} wrong"
            )
        return (
            "out-of-fold probabilities of five question-disjoint folds of the same questions "
            "and their rule-made near misses (train vocabulary)"
        )

    def rarity(self) -> str:
        """Without built-in sources the rarity table is counted on the groups alone
        (`verifier_data.idf_texts`)."""
        if not self.builtin and self.groups is not None:
            return f"the question groups of {self.groups.name}"
        return (
            "the training questions, OpenAssistant, Self-Instruct, MT-Bench, IFEval, RoleBench "
            "prompts (Apache-2.0), XSTest (CC BY 4.0), NotInject (MIT), MakTek FAQ (Apache-2.0)"
        )


def train(
    data: Path, out: Path, cache: Path | None, recipe: Recipe | None = None
) -> dict[str, object]:
    recipe = recipe or Recipe()
    started = time.perf_counter()
    sources = utterances(data, recipe.builtin)
    if recipe.groups is not None:
        sources[GROUPS] = question_groups(recipe.groups)
    made = folds(data, sources=sources)
    everything = all_pairs(data, sources=sources)
    embeddings = Embeddings(cache)
    sets = [everything] + [ps for f in made for ps in [f.train, f.rules, *f.natural.values()]]
    embeddings.add(t for ps in sets for p in ps for t in (p.a, p.b))
    mine = [u.text for u in sources.get(GROUPS, [])]
    words = vocabulary(idf_texts(data, recipe.builtin, mine))
    validation, oof = cross_validate(data, embeddings, made, words=words)
    point = operating_point(oof, recipe.wrong_budget if recipe.groups else None)
    kept = Featuriser(embeddings.vectors, words)(everything)
    verifier = dataclasses.replace(fit(kept, words), threshold=point["probability"])
    out.mkdir(parents=True, exist_ok=True)
    verifier.save(out / WEIGHTS.name)
    card: dict[str, object] = {
        "training": recipe.training(),
        "tuning": recipe.tuning(),
        "idf": recipe.rarity(),
        "model": f"logistic regression + {HIDDEN} rectified hidden units on the dense features "
        "+ per-word lexical weights",
        "training_pairs": len(everything),
        "training_candidates": len(kept.tokens),
        "candidate_positive_share": round(float(kept.label[kept.reach].mean()), 4),
        "min_cosine": MIN_COSINE,
        "lexical_weights": len(verifier.lexical),
        "idf_stems": len(words.idf),
        "weights": {
            n: round(float(v), 4) for n, v in zip(FEATURE_NAMES, verifier.weights, strict=True)
        },
        "operating_point": {
            **point,
            "target_share": TARGET_SHARE,
            "target_wrong_rules": TARGET_WRONG_RULES,
        },
        "validation": {
            "folds": validation["folds"],
            "validation_pairs": validation["validation_pairs"],
            "validation_true_pairs": validation["validation_true_pairs"],
            "mean_sd": validation["mean_sd"],
            "out_of_fold": validation["out_of_fold"],
            "per_fold": validation["per_fold"],
        },
        "seed": SEED,
        "seconds": round(time.perf_counter() - started, 1),
    }
    (out / CARD.name).write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    return card


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lockgate.cache.train_verifier")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=WEIGHTS.parent)
    parser.add_argument("--cache", type=Path, default=None, help="embedding cache directory")
    parser.add_argument(
        "--groups", type=Path, default=None, help='your questions: JSON lines {"text", "group"}'
    )
    parser.add_argument(
        "--builtin",
        default=",".join(BUILTIN),
        help=f"built-in sources to train on too, comma-separated ({', '.join(BUILTIN)}) or ''",
    )
    parser.add_argument(
        "--wrong-budget",
        type=float,
        default=DEFAULT_WRONG_BUDGET,
        help="wrong hits allowed on your groups' held-out pairs (with --groups)",
    )
    args = parser.parse_args(argv)
    recipe = Recipe(tuple(b for b in args.builtin.split(",") if b), args.groups, args.wrong_budget)
    if not 0 < recipe.wrong_budget < 1:
        print("--wrong-budget is a share between 0 and 1 (0.03: 3 %)", file=sys.stderr)
        return 2
    if not recipe.builtin and recipe.groups is None:
        print("nothing to train on: give --groups or a built-in source", file=sys.stderr)
        return 2
    if recipe.builtin and not (args.data / "intents").is_dir():
        print(f"no public data sets under {args.data} (--data)", file=sys.stderr)
        return 2
    try:
        card = train(args.data, args.out, args.cache, recipe)
    except TrainingDataError as e:
        print(e, file=sys.stderr)
        return 2
    print(json.dumps(card, indent=2))
    point = card["operating_point"]
    if recipe.groups is not None and isinstance(point, dict) and not point["budget_met"]:
        print(
            f"no threshold kept the wrong hits on {recipe.groups.name} within "
            f"{recipe.wrong_budget:.0%}: the strictest was kept",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
