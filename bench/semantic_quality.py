"""Semantic-cache quality on STS-B: false hits against share of paraphrases served.

For every labelled pair the first sentence plays the cached question and the second the new
one; a system "serves" when it would answer the second from the first's cache entry. Three
systems see the same pairs and the same MiniLM vectors in one run:

- plain: cosine >= threshold;
- Lockgate: cosine >= threshold and the borderline guard (`lockgate.cache.guard`), strict within
  `guard_band` of the threshold, exactly as `SemanticCache.lookup` decides;
- GPTCache 0.1.44: `init_similar_cache` defaults (sqlite + faiss, SearchDistanceEvaluation,
  similarity_threshold 0.8) fed our vectors, run in `.bench-venv/gptcache` by
  `bench/semantic_gptcache.py`.

Labels (STS-B scores 0-5, annotator means): score >= 4.0 ("mostly equivalent, only unimportant
details differ") is a paraphrase whose cached answer is right; score <= 3.0 ("important
information differs" or worse) is a different question whose cached answer is wrong; the
(3.0, 4.0) band is left out as ambiguous. Stricter than the common <= 2.0 cut on purpose: the
3.0 pairs ("faces trial for prison break, murder" / "faces trial for prison break") are exactly
the near misses a cache gets wrong. A sensitivity line counts every pair below 4.0 as wrong.

Calibration: STS-B train + dev choose the shipped threshold and guard band (the widest share
served with at most CALIBRATION_MAX_FALSE_HITS false hits); STS-B test is held out and reports.

    .venv/bin/python -m bench.semantic_quality
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from lockgate.cache.guard import check
from lockgate.cache.semantic import DEFAULT_GUARD_BAND, DEFAULT_THRESHOLD

from bench.semantic_data import Pair, embed_all, ensure_cache_dir, load_pairs

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "semantic_quality.md"
GPTCACHE_PY = ROOT / ".bench-venv" / "gptcache" / "bin" / "python"
POSITIVE_MIN, NEGATIVE_MAX = 4.0, 3.0
CALIBRATION_MAX_FALSE_HITS = 0.015
"""Calibration targets 1.5 % so the held-out figure has room under the 2 % target."""
THRESHOLDS = np.round(np.arange(0.70, 0.995, 0.005), 3)
BANDS = np.round(np.arange(0.0, 0.155, 0.01), 3)
SHARE_LEVELS = (0.05, 0.10, 0.15, 0.20, 0.30, 0.40, 0.50)

Bools = npt.NDArray[np.bool_]


@dataclass
class Split:
    name: str
    pairs: list[Pair]
    cosine: npt.NDArray[np.float64]
    label: npt.NDArray[np.int8]
    """1 paraphrase, 0 different question."""
    hard_ok: Bools
    strict_ok: Bools

    def served(self, mask: Bools) -> tuple[float, float, int, int]:
        """(share of paraphrases served, false-hit rate, hits, wrong hits)."""
        hits = int(mask.sum())
        wrong = int((mask & (self.label == 0)).sum())
        positives = int((self.label == 1).sum())
        return (hits - wrong) / positives, wrong / hits if hits else 0.0, hits, wrong

    def plain(self, threshold: float) -> Bools:
        return self.cosine >= threshold

    def guarded(self, threshold: float, band: float) -> Bools:
        near = self.cosine < threshold + band
        return (self.cosine >= threshold) & np.where(near, self.strict_ok, self.hard_ok)


def label_of(score: float, *, strict_negatives: bool) -> int | None:
    if score >= POSITIVE_MIN:
        return 1
    if strict_negatives or score <= NEGATIVE_MAX:
        return 0
    return None


def build_split(
    name: str,
    pairs: list[Pair],
    vectors: dict[str, npt.NDArray[np.float32]],
    *,
    strict_negatives: bool = False,
) -> Split:
    kept = [p for p in pairs if label_of(p.score, strict_negatives=strict_negatives) is not None]
    return Split(
        name=name,
        pairs=kept,
        cosine=np.array([float(vectors[p.a] @ vectors[p.b]) for p in kept]),
        label=np.array(
            [label_of(p.score, strict_negatives=strict_negatives) for p in kept], dtype=np.int8
        ),
        hard_ok=np.array([check(p.b, p.a, strict=False).ok for p in kept]),
        strict_ok=np.array([check(p.b, p.a, strict=True).ok for p in kept]),
    )


def calibrate(split: Split) -> tuple[float, float]:
    """The (threshold, band) serving the most paraphrases within the false-hit budget; ties go
    to the higher threshold (fewer hits near the edge of what was measured)."""
    best: tuple[float, float, float] | None = None
    for band in BANDS:
        for threshold in THRESHOLDS:
            share, false_hits, hits, _ = split.served(split.guarded(threshold, band))
            if hits < 20 or false_hits > CALIBRATION_MAX_FALSE_HITS:
                continue
            if best is None or share > best[0] + 1e-9:
                best = (share, float(threshold), float(band))
    if best is None:
        raise SystemExit("no operating point meets the calibration budget")
    return best[1], best[2]


def at_share(split: Split, masks: list[tuple[float, Bools]], share: float) -> tuple[float, float]:
    """(setting, false-hit rate) of the strictest setting that still serves `share`."""
    chosen: tuple[float, float] | None = None
    for setting, mask in masks:  # ordered from loose to strict
        served, false_hits, _, _ = split.served(mask)
        if served >= share:
            chosen = (setting, false_hits)
    return chosen if chosen is not None else (float("nan"), float("nan"))


def run_gptcache(split: Split, vectors: dict[str, npt.NDArray[np.float32]]) -> dict[str, object]:
    if not GPTCACHE_PY.exists():
        subprocess.run(["bash", str(ROOT / "bench" / "setup_gptcache.sh")], check=True)
    work = ensure_cache_dir()
    src, dst = work / "gptcache-in.npz", work / "gptcache-out.json"
    np.savez(
        src,
        a=np.stack([vectors[p.a] for p in split.pairs]),
        b=np.stack([vectors[p.b] for p in split.pairs]),
        text_a=np.array([p.a for p in split.pairs]),
        text_b=np.array([p.b for p in split.pairs]),
    )
    subprocess.run(
        [str(GPTCACHE_PY), str(ROOT / "bench" / "semantic_gptcache.py"), str(src), str(dst)],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    result: dict[str, object] = json.loads(dst.read_text())
    return result


def pct(value: float) -> str:
    return "n/a" if value != value else f"{100 * value:.1f} %"


def main() -> None:
    started = time.perf_counter()
    pairs = load_pairs()
    vectors = embed_all([p.a for p in pairs] + [p.b for p in pairs])
    calibration_pairs = [p for p in pairs if p.split in ("train", "dev")]
    held_out_pairs = [p for p in pairs if p.split == "test"]
    cal = build_split("calibration (STS-B train+dev)", calibration_pairs, vectors)
    test = build_split("held out (STS-B test)", held_out_pairs, vectors)
    test_all_neg = build_split("", held_out_pairs, vectors, strict_negatives=True)

    threshold, band = calibrate(cal)
    gpt_run = run_gptcache(test, vectors)
    gpt_scores = np.array(gpt_run["scores"], dtype=np.float64)  # type: ignore[arg-type]
    gpt_default = float(gpt_run["default_threshold"])  # type: ignore[arg-type]

    shipped = test.guarded(threshold, band)
    ship_share, ship_fh, ship_hits, ship_wrong = test.served(shipped)
    plain_masks = [(float(t), test.plain(t)) for t in THRESHOLDS]
    guard_masks = [(float(t), test.guarded(t, band)) for t in THRESHOLDS]
    gpt_masks = [(float(t), gpt_scores >= t) for t in np.round(np.arange(0.5, 1.0, 0.0025), 4)]
    plain_t, plain_fh = at_share(test, plain_masks, ship_share)

    lines = [
        "# Semantic cache quality (STS-B, MiniLM-L6-v2 int8 vectors for every system)",
        "",
        f"Labels: score >= {POSITIVE_MIN} paraphrase (right answer), <= {NEGATIVE_MAX} different "
        f"question (wrong answer), ({NEGATIVE_MAX}, {POSITIVE_MIN}) left out. "
        f"Calibration: STS-B train+dev ({len(cal.label)} pairs, {int(cal.label.sum())} "
        f"paraphrases); held out: STS-B test ({len(test.label)} pairs, "
        f"{int(test.label.sum())} paraphrases). False-hit rate = wrong answers served / hits.",
        "",
        f"Calibrated: threshold {threshold:.3f}, guard band {band:.2f} (budget "
        f"{pct(CALIBRATION_MAX_FALSE_HITS)} false hits on calibration). Shipped constants in "
        f"lockgate/cache/semantic.py: threshold {DEFAULT_THRESHOLD}, band {DEFAULT_GUARD_BAND}"
        + (" (match)." if (threshold, band) == (DEFAULT_THRESHOLD, DEFAULT_GUARD_BAND)
           else " (DIFFER: update them)."),
        "",
        "## Operating points (held out)",
        "",
        "| system | setting | paraphrases served | false-hit rate | hits | wrong hits |",
        "|---|---|---|---|---|---|",
    ]  # fmt: skip

    def row(name: str, setting: str, mask: Bools) -> str:
        share, fh, hits, wrong = test.served(mask)
        return f"| {name} | {setting} | {pct(share)} | {pct(fh)} | {hits} | {wrong} |"

    gpt_t, _ = at_share(test, gpt_masks, ship_share)
    gpt = "GPTCache 0.1.44"
    lines += [
        row("Lockgate (guarded)", f"shipped: cos >= {threshold:.3f}, band {band:.2f}", shipped),
        row("plain cosine", f"cos >= {plain_t:.3f} (same share served)", test.plain(plain_t)),
        row("plain cosine", "cos >= 0.900", test.plain(0.9)),
        row("plain cosine", f"cos >= {threshold:.3f} (Lockgate's)", test.plain(threshold)),
        row(gpt, f"default: similarity_threshold {gpt_default}", gpt_scores >= gpt_default),
        row(gpt, f"similarity_threshold {gpt_t:.4f} (same share)", gpt_scores >= gpt_t),
    ]
    lines += [
        "",
        "## Curve (held out): false-hit rate at a given share of paraphrases served",
        "",
        "Each cell: the strictest setting of that system that still serves the share.",
        "",
        "| share served | plain cosine | Lockgate (band fixed) | GPTCache | plain / Lockgate |",
        "|---|---|---|---|---|",
    ]
    for share in SHARE_LEVELS:
        _, p_fh = at_share(test, plain_masks, share)
        _, g_fh = at_share(test, guard_masks, share)
        _, c_fh = at_share(test, gpt_masks, share)
        ratio = f"{p_fh / g_fh:.1f}x" if g_fh and g_fh == g_fh and p_fh == p_fh else "n/a"
        lines.append(f"| {pct(share)} | {pct(p_fh)} | {pct(g_fh)} | {pct(c_fh)} | {ratio} |")

    lines += [
        "",
        "## Curve (calibration split, in sample; larger, so less noisy)",
        "",
        "| share served | plain cosine | Lockgate (band fixed) | plain / Lockgate |",
        "|---|---|---|---|",
    ]
    cal_plain = [(float(t), cal.plain(t)) for t in THRESHOLDS]
    cal_guard = [(float(t), cal.guarded(t, band)) for t in THRESHOLDS]
    for share in SHARE_LEVELS:
        _, p_fh = at_share(cal, cal_plain, share)
        _, g_fh = at_share(cal, cal_guard, share)
        ratio = f"{p_fh / g_fh:.1f}x" if g_fh and g_fh == g_fh and p_fh == p_fh else "n/a"
        lines.append(f"| {pct(share)} | {pct(p_fh)} | {pct(g_fh)} | {ratio} |")

    _, sens_fh, _, _ = test_all_neg.served(test_all_neg.guarded(threshold, band))
    _, sens_plain, _, _ = test_all_neg.served(test_all_neg.plain(plain_t))
    ratio = plain_fh / ship_fh if ship_fh else float("inf")
    lines += [
        "",
        "## Targets",
        "",
        f"- Shipped operating point <= 2 % false hits (held out): {pct(ship_fh)} "
        f"({ship_wrong} of {ship_hits}) -> {'PASS' if ship_fh <= 0.02 else 'FAIL'}",
        f"- At an equal share served ({pct(ship_share)}), <= 1/5 of the plain threshold's "
        f"false-hit rate: plain {pct(plain_fh)} vs Lockgate {pct(ship_fh)} = "
        f"{'inf' if ratio == float('inf') else f'{ratio:.1f}x'} lower -> "
        f"{'PASS' if ship_fh <= plain_fh / 5 else 'FAIL'}",
        f"- Sensitivity, every pair below {POSITIVE_MIN} counted wrong: Lockgate shipped "
        f"{pct(sens_fh)}, plain at cos >= {plain_t:.3f} {pct(sens_plain)}.",
        f"- GPTCache end-to-end check: its real cache (init_similar_cache, put, get) agreed with "
        f"the scored decision on {gpt_run['e2e_agree']} of {gpt_run['e2e_checked']} sampled "
        "pairs. With "
        "unit vectors its SearchDistanceEvaluation score is (1 + cos) / 2, so its curve is the "
        "plain cosine curve and its default 0.8 is cos >= 0.6.",
        "",
        f"Run time {time.perf_counter() - started:.0f} s.",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
