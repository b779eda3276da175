"""A request classifier that estimates how hard a request is, in microseconds, and says why.

It scores features a person would point at — length, code, maths, reasoning words,
conversation depth, tools, structured output — and maps the score to a tier. It is a heuristic
on purpose: explainable, deterministic, and with no model on the hot path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lockgate.chat import ChatRequest

_CODE = re.compile(
    r"```|\bdef \w+\(|\bclass \w+[:(]|\bfunction\s*\w*\(|#include\b|\bimport \w+|=>"
    r"|\bSELECT\b.+\bFROM\b|\bpublic static\b|\bconsole\.log\(|\{\s*\n|;\s*\n"
    r"|\btraceback\b|\bstack trace\b",
    re.IGNORECASE,
)
_MATH = re.compile(
    r"\\(?:frac|sum|int|sqrt)|\b(?:integral|derivative|equation|theorem|prove|proof|matrix|"
    r"probability|eigen\w*|calculate|solve for)\b|\d\s*[-+*/^=]\s*\d|[∑∫√≤≥≠]",
    re.IGNORECASE,
)
_REASONING = re.compile(
    r"\b(?:why|explain|analy[sz]e|compare|contrast|evaluate|design|architect\w*|trade-?offs?|"
    r"step[- ]by[- ]step|reason(?:ing)?|justify|critique|plan|strategy|pros and cons|"
    r"implications?|optimi[sz]e|debug|refactor)\b",
    re.IGNORECASE,
)

SIMPLE_BELOW = 2.0
COMPLEX_FROM = 5.0


@dataclass(frozen=True, slots=True)
class Classification:
    tier: str
    score: float
    reasons: tuple[str, ...]

    def explain(self) -> str:
        return ", ".join(self.reasons) or "short plain request"


def classify(request: ChatRequest) -> Classification:
    """Score the request; below SIMPLE_BELOW is simple, from COMPLEX_FROM on is complex."""
    user_text = "\n".join(m.text() for m in request.messages if m.role == "user")
    last = next((m.text() for m in reversed(request.messages) if m.role == "user"), "")
    score = 0.0
    reasons: list[str] = []

    def add(points: float, reason: str) -> None:
        nonlocal score
        score += points
        reasons.append(f"{reason} +{points:g}")

    tokens = len(user_text) // 4
    if tokens > 1500:
        add(3, f"long input (~{tokens} tokens)")
    elif tokens > 300:
        add(1.5, f"medium input (~{tokens} tokens)")
    if _CODE.search(last):
        add(2.5, "code")
    if _MATH.search(last):
        add(2, "maths")
    reasoning = len(_REASONING.findall(last))
    if reasoning:
        add(min(3.0, 1.5 * reasoning), f"reasoning words x{reasoning}")
    turns = sum(1 for m in request.messages if m.role in ("user", "assistant"))
    if turns > 6:
        add(1.5 if turns > 12 else 1, f"conversation depth {turns}")
    if request.tools:
        add(1.5, f"tools x{len(request.tools)}")
    if request.response_format and request.response_format.get("type") == "json_schema":
        add(1, "structured output")
    if last.count("?") > 2 or len(re.findall(r"^\s*(?:\d+[.)]|[-*])\s", last, re.M)) > 3:
        add(1, "several asks")

    tier = "simple" if score < SIMPLE_BELOW else ("complex" if score >= COMPLEX_FROM else "medium")
    return Classification(tier=tier, score=score, reasons=tuple(reasons))
