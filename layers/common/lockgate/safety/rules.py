"""Fast rules: phrasings that override or exfiltrate instructions, in English, German and
Spanish (the languages of the public injection sets). Each rule names itself in the reason, so
a refused user can see what tripped it.

Rules are for high-precision phrasings only; anything fuzzier (role-play set-ups, topic
hijacks) is left to the classifier, which weighs them against the rest of the text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_F = re.IGNORECASE | re.UNICODE


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    reason: str
    pattern: re.Pattern[str]
    gate: tuple[str, ...]
    """Substrings of which the (lower-cased) text must hold one for the pattern to be tried:
    a substring test costs microseconds, a pattern with bounded gaps a tenth of a millisecond
    on a long window, and most texts hold none."""


RULES: tuple[Rule, ...] = (
    Rule(
        "override",
        "asks to ignore or forget the instructions given so far",
        re.compile(
            r"\b(ignore|ignoring|forget|disregard|overlook|skip|drop|igmre|ignroe)\b[^.!?\n]{0,40}?"
            r"\b(all|any|every|previous|prior|above|earlier|before|preceding|initial|original|"
            r"your|the|those|these|everything|what)\b[^.!?\n]{0,30}?"
            r"\b(instructions?|directions?|prompts?|rules?|context|orders?|tasks?|guidelines?|"
            r"said|told|so far|talked|articles?|artikels?|constraints?)\b|"
            r"\b(ignore|disregard|forget)\b (all|everything)( of)?"
            r"( (the|what was( said| written)?))? (above|before)\b",
            _F,
        ),
        ("ignor", "forget", "disregard", "overlook", "skip", "drop", "igmre", "ignroe"),
    ),
    Rule(
        "override",
        "asks to forget everything before",
        re.compile(r"\bforget (about )?(everything|all)\b", _F),
        ("forget",),
    ),
    Rule(
        "override_de",
        "asks to ignore or forget the instructions given so far (German)",
        re.compile(
            r"\b(vergiss|vergessen sie|ignorier\w*|missachte\w*|höre? nicht auf)\b[^.!?\n]{0,40}?"
            r"\b(alle\w*|vorherige\w*|bisherige\w*|obige\w*|zuvor|davor|vorher|anweisungen|"
            r"angaben|aufträge|befehle|gesagt\w*)\b",
            _F,
        ),
        ("vergiss", "vergessen", "ignorier", "missacht", "nicht auf"),
    ),
    Rule(
        "override_es",
        "asks to ignore or forget the instructions given so far (Spanish)",
        re.compile(
            r"\b(olvid[ae]\w*|ignor[ae]\w*)\b[^.!?\n]{0,30}?\b(todo|todas?|anteriores?|instrucciones)\b",
            _F,
        ),
        ("olvid", "ignor"),
    ),
    Rule(
        "exfiltrate",
        "asks for the system prompt, instructions or embeddings",
        re.compile(
            r"\b(show|print|reveal|tell|return|output|repeat|display|give|spell.?check|"
            r"what (are|were))"
            r"\b[^.!?\n]{0,40}?\b(your|above|initial|original|system|hidden|secret|previous)\b"
            r"[^.!?\n]{0,20}?\b(prompts?|prompt.texts?|instructions|embeddings|system message|"
            r"rules)\b",
            _F,
        ),
        ("prompt", "instruction", "embedding", "system message", "rules"),
    ),
    Rule(
        "exfiltrate",
        "asks for the prompt itself",
        re.compile(
            r"\b(print|reveal|output|repeat|display|spell.?check)\b[^.!?\n]{0,40}?"
            r"\b(the|all|this|that|entire|full|whole)\b[^.!?\n]{0,20}?"
            r"\b(prompts?|prompt.texts?|system message|pre.?prompt)\b",
            _F,
        ),
        ("prompt", "system message"),
    ),
    Rule(
        "exfiltrate_de",
        "asks for the system prompt or instructions (German)",
        re.compile(
            r"\b(zeig\w*|gib|drucke?\w*|verrat\w*|nenne?\w*|wiederhole?\w*)\b[^.!?\n]{0,40}?"
            r"\b(prompt\w*|anweisungen|eingabeaufforderung\w*|systemnachricht)\b",
            _F,
        ),
        ("prompt", "anweisungen", "eingabeaufforderung", "systemnachricht"),
    ),
    Rule(
        "delimiter",
        "fakes the end of the prompt to start new instructions",
        re.compile(
            r"(={4,}|-{6,}|#{4,})\s*(end|ende)\b|\bend of (the )?(prompt|instructions)\b", _F
        ),
        ("====", "------", "####", "end of"),
    ),
    Rule(
        "new_task",
        "announces a new task to replace the current one",
        re.compile(
            r"\bnow comes? (a )?new (task|assignment)|\bnew tasks?\b[^.!?\n]{0,20}\b(now|follow)|"
            r"\bjetzt kommt? (eine )?neue aufgabe|\bneue aufgaben?\b[^.!?\n]{0,20}\bjetzt\b|"
            r"\bcome new tasks\b|\bkommen neue aufgaben\b",
            _F,
        ),
        ("new task", "neue aufgabe", "come new", "kommen neue"),
    ),
    Rule(
        "jailbreak",
        "uses a known jailbreak persona",
        re.compile(
            r"\b(you are|you're|act as|become|pretend to be|in character as|stay)\b"
            r"[^.!?\n]{0,20}\bdan\b|\bdo anything now\b|"
            r"\b(enable|enter|activate|switch to|now in)\b[^.!?\n]{0,20}\bdeveloper mode\b|"
            r"\bdeveloper mode (enabled|output)\b|\bjailbroken\b|"
            r"\b(no|without any) (ethical|moral) (guidelines|restrictions)\b",
            _F,
        ),
        ("dan", "do anything", "developer mode", "jailbroken", "ethical", "moral"),
    ),
)


def match_rules(text: str) -> list[Rule]:
    """The rules a normalised (lower-cased) text matches, in order."""
    return [
        rule for rule in RULES if any(g in text for g in rule.gate) and rule.pattern.search(text)
    ]
