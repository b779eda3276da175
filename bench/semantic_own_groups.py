"""What a cache verifier trained on a deployment's own questions is worth on its new questions.

CLINC150 plays the deployment. Its train + val questions, grouped by intent, are the groups
file (`train_verifier --groups`): one group per intent, `answer_varies` for the intents whose
answer is not one text for every phrasing (as the packaged recipe treats them), out-of-scope
questions with a null group. Its held-out test pairs (the same sample as `semantic_quality`)
are the new traffic. On them, at the shipped cosine floor:

- plain cosine;
- "other domain": the verifier trained on BANKING77 alone (`--builtin banking77`), what any
  deployment gets whose questions the packaged verifier never saw;
- "own groups": BANKING77 plus the CLINC150 groups file, threshold chosen by `--wrong-budget`
  on the groups' out-of-fold pairs;
- the packaged verifier, which has CLINC150 among its built-in sources, for reference.

StackFAQ and BANKING77 test are scored too: a deployment's groups must not cost the other
domains. The two verifiers are trained here (some 15 minutes on 2 cores; `--reuse` keeps
those already in `.bench-cache/own-groups/`).

    PYTHONPATH=layers/common:. .venv/bin/python -m bench.semantic_own_groups [--reuse]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from lockgate.cache.semantic import DEFAULT_THRESHOLD
from lockgate.cache.train_verifier import Recipe, train
from lockgate.cache.verifier import WEIGHTS, Verifier
from lockgate.cache.verifier_data import OUT_OF_SCOPE, static_intents

from bench.semantic_data import DATA, embed_all, ensure_cache_dir, ordinary_sets
from bench.semantic_quality import PROBABILITIES, THRESHOLDS, Split, at_share, build, pct

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "semantic_own_groups.md"
SHARES = (0.10, 0.20, 0.30)
WRONG_BUDGET = 0.03


def clinc_groups(path: Path) -> Path:
    """CLINC150 train + val as a deployment would write its groups file."""
    full = json.loads((DATA / "intents/clinc150/data_full.json").read_text())
    static = static_intents(DATA)
    with path.open("w", encoding="utf-8") as out:
        for key in ("train", "val", "oos_train", "oos_val"):
            for text, intent in full[key]:
                group = None if intent == OUT_OF_SCOPE else intent
                row = {"text": text, "group": group, "answer_varies": intent not in static}
                out.write(json.dumps(row) + "\n")
    return path


def trained(name: str, recipe: Recipe, reuse: bool) -> Verifier:
    out = ensure_cache_dir() / "own-groups" / name
    if not (reuse and (out / WEIGHTS.name).exists()):
        train(DATA, out, ensure_cache_dir(), recipe)
    return Verifier.load(out / WEIGHTS.name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.semantic_own_groups")
    parser.add_argument("--reuse", action="store_true", help="keep verifiers trained before")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    groups = clinc_groups(ensure_cache_dir() / "clinc150-groups.jsonl")
    verifiers = {
        "other domain (BANKING77 only)": trained(
            "banking77", Recipe(builtin=("banking77",)), args.reuse
        ),
        "own groups (BANKING77 + CLINC150 groups file)": trained(
            "banking77+clinc-groups",
            Recipe(builtin=("banking77",), groups=groups, wrong_budget=WRONG_BUDGET),
            args.reuse,
        ),
        "packaged (CLINC150 built in)": Verifier.load(),
    }
    sets = ordinary_sets()
    vectors = embed_all([t for ps in sets.values() for p in ps for t in (p.a, p.b)])
    floor = DEFAULT_THRESHOLD
    lines = [
        "# A verifier trained on the deployment's own question groups",
        "",
        "CLINC150 plays the deployment: train + val questions as its groups file, the held-out "
        "test pairs as its new traffic (`bench/semantic_own_groups.py`). Cosine floor "
        f"{floor}; each verifier at its own threshold, then at equal shares served (wrong-hit "
        "rate of the strictest threshold serving the share). A hit is wrong when the pair is "
        "labelled different.",
    ]
    for set_name in ("CLINC150 test", "BANKING77 test", "StackFAQ"):
        pairs = sets[set_name]
        plain = build(set_name, pairs, vectors, next(iter(verifiers.values())))
        lines += [
            "",
            f"## {set_name} ({len(pairs)} pairs, {int(plain.label.sum())} true)",
            "",
            "| system | threshold | served | wrong hits | "
            + " | ".join(f"wrong at {pct(s)} served" for s in SHARES)
            + " |",
            "|---|---|---|---|" + "---|" * len(SHARES),
        ]
        cosine_masks = [plain.plain(t) for t in THRESHOLDS]
        lines.append(
            "| plain cosine | — | — | — | "
            + " | ".join(pct(at_share(plain, cosine_masks, s)) for s in SHARES)
            + " |"
        )
        for system, verifier in verifiers.items():
            split: Split = build(set_name, pairs, vectors, verifier)
            share, wrong, _, _ = split.served(split.verified(floor, verifier.threshold))
            masks = [split.verified(floor, p) for p in PROBABILITIES]
            lines.append(
                f"| {system} | p >= {verifier.threshold:.2f} | {pct(share)} | {pct(wrong)} | "
                + " | ".join(pct(at_share(split, masks, s)) for s in SHARES)
                + " |"
            )
    lines += [
        "",
        f"Run time {time.perf_counter() - started:.0f} s; load average (1, 5, 15 min) at the end: "
        + ", ".join(f"{x:.2f}" for x in os.getloadavg())
        + f" on {os.cpu_count()} cores.",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
