"""Adversarial question pairs made by rule, for training and measuring the cache's verifier.

Public duplicate-question sets rarely hold the near misses a cache gets wrong: the same question
with the other direction, time of day, scope, antonym, number, entity or a negation. These rules
make them from any list of real questions, together with the true pairs they must not be
confused with (near repeats, and paraphrase pairs that get the same added detail).

Every rule has two vocabularies: `train` for the shipped verifier and `test` for the benchmark's
held-out split, so the reported numbers are on word instantiations the verifier never saw.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

Vocabulary = Literal["train", "test"]


@dataclass(frozen=True, slots=True)
class Pair:
    a: str
    b: str
    same: bool
    kind: str
    source: str = ""


def _pairs(
    train: list[tuple[str, str]], test: list[tuple[str, str]]
) -> dict[str, list[tuple[str, str]]]:
    return {"train": train, "test": test}


TIME = _pairs(
    [("at 7am", "at 7pm"), ("at 8 am", "at 8 pm"), ("at 9:30am", "at 9:30pm"),
     ("in the morning", "in the evening"), ("today", "tomorrow")],
    [("at 6am", "at 6pm"), ("at 10 am", "at 10 pm"), ("at 11:15am", "at 11:15pm"),
     ("at noon", "at midnight"), ("tonight", "tomorrow")],
)  # fmt: skip
DATE = _pairs(
    [("on March 3", "on March 5"), ("on 12 May", "on 21 May"), ("in January", "in February"),
     ("this week", "next week")],
    [("on June 1", "on June 10"), ("on the 2nd", "on the 4th"), ("in October", "in December"),
     ("this month", "last month")],
)  # fmt: skip
SCOPE = _pairs(
    [("within 30 days", "after 30 days"), ("before the deadline", "after the deadline"),
     ("during the trial", "after the trial")],
    [("within two weeks", "after two weeks"), ("inside the EU", "outside the EU"),
     ("until Friday", "after Friday"), ("within the warranty period", "after the warranty period")],
)  # fmt: skip
ANTONYM = _pairs(
    [("safe", "unsafe"), ("available", "unavailable"), ("secure", "insecure"),
     ("active", "inactive"), ("valid", "invalid"), ("connected", "disconnected")],
    [("able", "unable"), ("correct", "incorrect"), ("refundable", "non-refundable"),
     ("authorized", "unauthorized"), ("eligible", "ineligible"), ("visible", "invisible"),
     ("responsive", "unresponsive"), ("possible", "impossible")],
)  # fmt: skip
DIRECTION = _pairs(
    [("savings", "checking"), ("usd", "eur"), ("celsius", "fahrenheit"), ("kilometers", "miles"),
     ("paypal", "bank account"), ("english", "french")],
    [("pounds", "dollars"), ("inches", "centimeters"), ("german", "italian"),
     ("my card", "my wallet"), ("the app", "the website"), ("gbp", "jpy")],
)  # fmt: skip
ENTITY = _pairs(
    [("Visa", "Mastercard"), ("Paris", "London"), ("Amazon", "eBay"), ("iPhone", "Android"),
     ("Spain", "Portugal"), ("FedEx", "DHL")],
    [("Berlin", "Madrid"), ("Apple Pay", "Google Pay"), ("Canada", "Mexico"), ("UPS", "USPS"),
     ("Windows", "Linux"), ("Chrome", "Firefox")],
)  # fmt: skip
NUMBER = _pairs(
    [("2 items", "3 items"), ("$20", "$50"), ("5 days", "7 days"), ("order 1234", "order 1243")],
    [("4 units", "6 units"), ("$35", "$85"), ("10 business days", "14 business days"),
     ("version 2.1", "version 2.2")],
)  # fmt: skip
PRODUCT = _pairs(
    [("paypal", "venmo"), ("gmail", "outlook"), ("netflix", "hulu"), ("spotify", "pandora"),
     ("whatsapp", "telegram"), ("excel", "sheets"), ("instagram", "pinterest")],
    [("twitter", "tumblr"), ("dropbox", "onedrive"), ("zoom", "skype"), ("uber", "lyft"),
     ("slack", "discord"), ("youtube", "vimeo"), ("wordpress", "blogger")],
)  # fmt: skip
"""Products and services as users type them, lower case, so the entity rule (which goes by
capitals) cannot see them: only the verifier can tell "my venmo account" from "my paypal one"."""
PRODUCT_SHARE = 0.2
"""Share of the questions (and of the true pairs) that also get a product near miss."""
_PRODUCT_SUFFIX = ("{q} I mean on {x}.", "{q} This is for my {x} account.", "{q} (using {x})")
_SUFFIX = {
    "time": ("{q} I mean {x}.", "{q} ({x})"),
    "date": ("{q} I mean {x}.", "{q} I need it {x}."),
    "scope": ("{q} I mean {x}.", "{q} What about {x}?"),
    "antonym": ("{q} The item is {x}.", "{q} My account shows as {x}."),
    "direction": ("{q} It goes from {x} to {y}.", "{q} I want to convert {x} to {y}."),
    "entity": ("{q} I use {x}.", "{q} This is about {x}."),
    "number": ("{q} It is about {x}.", "{q} I have {x}."),
}
_VOCAB = {
    "time": TIME, "date": DATE, "scope": SCOPE, "antonym": ANTONYM, "direction": DIRECTION,
    "entity": ENTITY, "number": NUMBER,
}  # fmt: skip
_AUX = re.compile(
    r"\b(is|are|was|were|can|could|do|does|did|will|would|should|has|have)\b(?! not)", re.I
)
_IRREGULAR = {"can": "can't", "will": "won't", "do": "don't", "does": "doesn't", "did": "didn't"}
_REPEATS = {
    "train": (
        lambda q: q.lower(),
        lambda q: q.rstrip("?.! "),
        lambda q: f"Hi, {q}",
        lambda q: f"{q} Thanks!",
        lambda q: q.replace("How do I", "How can I"),
    ),
    "test": (
        lambda q: q.upper(),
        lambda q: f"{q.rstrip('?.! ')}??",
        lambda q: f"Hello! {q}",
        lambda q: f"Please help: {q}",
        lambda q: q.replace("What is", "What's"),
    ),
}


def _sentence(text: str) -> str:
    text = " ".join(text.split())
    return text if not text or text[-1] in ".?!" else f"{text}?"


def negate(question: str, vocabulary: Vocabulary) -> str | None:
    """The question with its first auxiliary negated, or None when it has none."""
    match = _AUX.search(question)
    if match is None:
        return None
    aux = match.group(1)
    if vocabulary == "test":
        negated = _IRREGULAR.get(aux.lower(), f"{aux}n't")
        if aux[0].isupper():
            negated = negated.capitalize()
    else:
        negated = f"{aux} not"
    return question[: match.start()] + negated + question[match.end() :]


def near_misses(
    questions: Sequence[str],
    positives: Sequence[tuple[str, str]],
    vocabulary: Vocabulary,
    *,
    seed: int = 20240613,
    source: str = "",
) -> list[Pair]:
    """For each question: one near miss by a random rule and one near repeat; for each positive
    pair: the same added detail on both sides (a true pair that looks like a near miss)."""
    rng = random.Random(seed)
    out: list[Pair] = []
    families = list(_VOCAB)
    for question in questions:
        q = _sentence(question)
        if not q:
            continue
        family = rng.choice([*families, "negation"])
        if family == "negation":
            negated = negate(q, vocabulary)
            if negated is not None:
                out.append(Pair(q, negated, False, "negation", source))
                continue
            family = rng.choice(families)
        x, y = rng.choice(_VOCAB[family][vocabulary])
        template = rng.choice(_SUFFIX[family])
        if family == "direction":
            a, b = template.format(q=q, x=x, y=y), template.format(q=q, x=y, y=x)
        else:
            a, b = template.format(q=q, x=x), template.format(q=q, x=y)
        out.append(Pair(a, b, False, family, source))
        repeat = rng.choice(_REPEATS[vocabulary])(q)
        if repeat != q:
            out.append(Pair(q, repeat, True, "near_repeat", source))
    for first, second in positives:
        family = rng.choice(families)
        x, y = rng.choice(_VOCAB[family][vocabulary])
        template = rng.choice(_SUFFIX[family])
        a = template.format(q=_sentence(first), x=x, y=y)
        b = template.format(q=_sentence(second), x=x, y=y)
        out.append(Pair(a, b, True, f"paraphrase+{family}", source))
    return out + _products(questions, positives, vocabulary, random.Random(seed + 1), source)


def _products(
    questions: Sequence[str],
    positives: Sequence[tuple[str, str]],
    vocabulary: Vocabulary,
    rng: random.Random,
    source: str,
) -> list[Pair]:
    """Lower-case product swaps for a share of the questions, and the same product on both
    sides of a share of the true pairs (drawn apart from the other rules, which stay as they
    were)."""
    out = []
    for question in questions:
        q = _sentence(question)
        if q and rng.random() < PRODUCT_SHARE:
            x, y = rng.sample(rng.choice(PRODUCT[vocabulary]), 2)
            template = rng.choice(_PRODUCT_SUFFIX)
            out.append(
                Pair(template.format(q=q, x=x), template.format(q=q, x=y), False, "product", source)
            )
    for first, second in positives:
        if rng.random() < PRODUCT_SHARE:
            x = rng.choice(rng.choice(PRODUCT[vocabulary]))
            template = rng.choice(_PRODUCT_SUFFIX)
            a, b = (
                template.format(q=_sentence(first), x=x),
                template.format(q=_sentence(second), x=x),
            )
            out.append(Pair(a, b, True, "paraphrase+product", source))
    return out
