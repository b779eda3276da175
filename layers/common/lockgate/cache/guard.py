"""The borderline guard: a second opinion on a semantic hit, in plain rules.

Sentence embeddings are good at topic and poor at the details that decide whether an answer is
right: "refund for order 123" and "refund for order 456" sit at cosine 0.96, "cancel my order"
and "don't cancel my order" at 0.9. The guard compares the two questions' surface for exactly
those details and says which one differs, so every refusal can be explained in a log line.

Hard checks run on every hit whose text is not the same: a differing number, negation, named
entity, direction (from/to) or opposite word means a different question at any similarity.
The content check runs only on hits near the threshold (`strict`): there, a content word
replaced by another ("tomato" for "potato"), or more than one added, is a different question.
Pure Python, no model: tens of microseconds per pair.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache


def _split(words: str) -> list[str]:
    return words.split()


# --- vocabulary --------------------------------------------------------------------------------

_CONTRACTIONS = (
    (re.compile(r"\bcan[\u2019']t\b", re.I), "can not"),
    (re.compile(r"\bwon[\u2019']t\b", re.I), "will not"),
    (re.compile(r"\bshan[\u2019']t\b", re.I), "shall not"),
    (re.compile(r"n[\u2019']t\b", re.I), " not"),
    (re.compile(r"\bcannot\b", re.I), "can not"),
    (re.compile(r"[\u2019']s\b", re.I), ""),
    (re.compile(r"[\u2019'](re|ve|ll|d|m)\b", re.I), ""),
)
_TOKEN = re.compile(r"[$€£¥]?\d[\d,]*(?:\.\d+)?%?|[^\W\d_]+(?:[-'][^\W\d_]+)*|[^\W_]+", re.U)

NEGATIONS = frozenset(
    {"not", "no", "never", "none", "nobody", "nothing", "nowhere", "neither", "nor", "without"}
)
NUMBER_WORDS = {
    "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
    "seven": "7", "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12",
    "thirteen": "13", "fourteen": "14", "fifteen": "15", "sixteen": "16", "seventeen": "17",
    "eighteen": "18", "nineteen": "19", "twenty": "20", "thirty": "30", "forty": "40",
    "fifty": "50", "sixty": "60", "seventy": "70", "eighty": "80", "ninety": "90",
    "hundred": "100", "thousand": "1000", "million": "1e6", "billion": "1e9", "trillion": "1e12",
    "dozen": "12", "half": "0.5", "first": "#1", "second": "#2", "third": "#3", "fourth": "#4",
    "fifth": "#5", "last": "#last", "once": "x1", "twice": "x2", "thrice": "x3",
}  # fmt: skip
QUANTIFIERS = frozenset(
    {"all", "every", "each", "both", "either", "most", "few", "several", "many", "only",
     "more", "less", "fewer", "least"}
)  # fmt: skip
_OPPOSITES = (
    ("before", "after"), ("increase", "decrease"), ("rise", "fall"), ("raise", "lower"),
    ("buy", "sell"), ("open", "close"), ("enable", "disable"), ("add", "remove"),
    ("accept", "reject"), ("import", "export"), ("upload", "download"), ("login", "logout"),
    ("subscribe", "unsubscribe"), ("include", "exclude"), ("above", "below"), ("over", "under"),
    ("higher", "lower"), ("larger", "smaller"), ("bigger", "smaller"), ("cheapest", "priciest"),
    ("minimum", "maximum"), ("min", "max"), ("start", "stop"), ("on", "off"), ("win", "lose"),
    ("true", "false"), ("yes", "no"), ("up", "down"), ("early", "late"), ("earlier", "later"),
    ("man", "woman"), ("men", "women"), ("boy", "girl"), ("male", "female"), ("he", "she"),
    ("his", "her"), ("husband", "wife"), ("father", "mother"), ("son", "daughter"),
    ("brother", "sister"), ("left", "right"), ("north", "south"), ("east", "west"),
    ("inbound", "outbound"), ("incoming", "outgoing"), ("debit", "credit"), ("day", "night"),
    ("hot", "cold"), ("old", "new"), ("lose", "find"), ("cancel", "confirm"),
    ("refund", "charge"), ("encrypt", "decrypt"), ("import", "export"), ("push", "pull"),
    ("send", "receive"), ("sent", "received"), ("win", "loss"), ("gain", "loss"),
    ("positive", "negative"), ("legal", "illegal"), ("possible", "impossible"),
    ("am", "pm"), ("within", "after"), ("within", "outside"), ("within", "beyond"),
    ("inside", "outside"), ("during", "after"), ("during", "before"), ("until", "after"),
    ("until", "since"), ("internal", "external"), ("domestic", "international"),
    ("public", "private"), ("temporary", "permanent"), ("monthly", "annual"),
    ("lowest", "highest"), ("fastest", "slowest"), ("best", "worst"), ("full", "partial"),
    ("oldest", "newest"), ("latest", "earliest"), ("noon", "midnight"), ("sender", "recipient"),
)  # fmt: skip
OPPOSITES: dict[str, frozenset[str]] = {}
for _a, _b in _OPPOSITES:
    OPPOSITES[_a] = OPPOSITES.get(_a, frozenset()) | {_b}
    OPPOSITES[_b] = OPPOSITES.get(_b, frozenset()) | {_a}
TIME_WORDS = frozenset(
    {"today", "tomorrow", "yesterday", "tonight", "now", "currently", "later", "weekend",
     "morning", "afternoon", "evening", "daily", "weekly", "monthly", "yearly", "annual",
     "annually", "hourly", "past", "future", "next", "previous", "recent", "upcoming"}
)  # fmt: skip
CONTENT_ALLOWANCE = 1
"""Near the threshold, one content word may be unmatched (an added "exactly" or "online");
two or more, or one replaced by another ("tomato" for "potato"), make a different question."""
DIRECTIONS = frozenset({"from", "to", "into", "between", "via", "toward", "towards", "onto"})
ORDERED = frozenset({"from", "to", "into", "onto", "than", "toward", "towards", "per", "over"})
"""Words whose next content word's role depends on order: "usd to eur" is not "eur to usd"."""
ANTONYM_PREFIXES = ("non-", "non", "un", "in", "im", "il", "ir", "dis", "de", "anti")
STOPWORDS = frozenset(
    _split(
        """
        a an the and or but if then so of in on at by for with about as into like through over to
        from up down out off again further once here there when where why how what which who whom
        this that these those i me my mine myself we our ours you your yours he him his she her hers
        it its they them their theirs am is are was were be been being have has had having do does
        did doing will would shall should can could may might must also just very too quite really s
        t d ll m re ve please thanks thank hi hello hey any some there's let get got getting is are
        was were kindly tell know want need like one ones way ok okay
        """
    )
)


# --- features ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Features:
    words: tuple[str, ...]
    """Lower-cased tokens, contractions expanded."""
    numbers: Counter[str]
    negations: int
    entities: frozenset[str]
    directions: frozenset[tuple[str, str]]
    """(preposition, entity) pairs: "from NYC" is not "to NYC"."""
    content: frozenset[str]
    ordered: frozenset[tuple[str, str]]
    """(order word, stem of the next content word): "usd to eur" has ("to", "eur")."""


@lru_cache(maxsize=4096)
def features(text: str) -> Features:
    """What the checks compare; cached because the same stored question is checked often."""
    expanded = text
    if "'" in text or "\u2019" in text or "annot" in text:
        for pattern, repl in _CONTRACTIONS:
            expanded = pattern.sub(repl, expanded)
    raw = [(m.group(), m.start()) for m in _TOKEN.finditer(expanded)]
    words = tuple(token.lower() for token, _ in raw)
    numbers: Counter[str] = Counter()
    for word in words:
        if word[0] in _NUMERIC_START or word in NUMBER_WORDS:
            numbers[_number(word)] += 1
    capitalised = sum(1 for token, _ in raw if token[:1].isupper())
    title_case = len(raw) >= 3 and capitalised / len(raw) > 0.6
    entities = set()
    directions = set()
    for i, (token, start) in enumerate(raw):
        if not token.islower() and _is_entity(token, expanded, start, title_case):
            entities.add(token.lower())
            if i and words[i - 1] in DIRECTIONS:
                directions.add((words[i - 1], token.lower()))
    content = frozenset(
        _stem(w) for w in words if w not in STOPWORDS and w not in NEGATIONS and not w.isdigit()
    )
    return Features(
        words=words,
        numbers=numbers,
        negations=sum(1 for w in words if w in NEGATIONS),
        entities=frozenset(entities),
        directions=frozenset(directions),
        content=content,
        ordered=_ordered(words),
    )


def _ordered(words: tuple[str, ...]) -> frozenset[tuple[str, str]]:
    pairs = set()
    for i, word in enumerate(words):
        if word in ORDERED:
            for following in words[i + 1 : i + 4]:
                if following not in STOPWORDS and following not in NEGATIONS:
                    pairs.add((word, _stem(following)))
                    break
    return frozenset(pairs)


_NUMERIC_START = frozenset("0123456789$€£¥")


def _number(word: str) -> str:
    if word[:1].isdigit() or (word[:1] in "$€£¥" and word[1:2].isdigit()):
        digits = word.lstrip("$€£¥").rstrip("%").replace(",", "")
        try:
            value = float(digits)
        except ValueError:
            return word
        return f"{value:g}" + ("%" if word.endswith("%") else "")
    return NUMBER_WORDS.get(word, word)


def _sentence_start(text: str, start: int) -> bool:
    """Whether the token at `start` opens a sentence (so its capital says nothing)."""
    i = start - 1
    while i >= 0 and text[i] in " \t\"'([":
        i -= 1
    return i < 0 or text[i] in ".!?:;\n"


def _is_entity(token: str, text: str, start: int, title_case: bool) -> bool:
    if any(c.isdigit() for c in token) and any(c.isalpha() for c in token):
        return True  # codes and models: A4, iPhone15, ORD-77
    letters = [c for c in token if c.isalpha()]
    if len(letters) >= 2 and all(c.isupper() for c in letters):
        return token.lower() not in _SHOUTED  # NYC, LA, USA; not "I" nor a shouted "NOT"
    if title_case or not token[:1].isupper() or token == "I":
        return False
    return not _sentence_start(text, start)


_SHOUTED = NEGATIONS | STOPWORDS | frozenset({"ok", "asap", "pls", "fyi"})


@lru_cache(maxsize=16384)
def _stem(word: str) -> str:
    """A crude suffix strip: enough to match "orders"/"order" and "cancelled"/"cancel"."""
    for suffix in ("ations", "ation", "ings", "ing", "ies", "ied", "ed", "es", "ly", "s"):
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            word = word[: -len(suffix)]
            break
    if len(word) > 3 and word[-1] == word[-2]:
        word = word[:-1]  # cancell -> cancel, stopp -> stop
    return word


def stem(word: str) -> str:
    """The stem the content words are compared by (so callers match words the same way)."""
    return _stem(word)


# --- verdict -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Verdict:
    ok: bool
    rule: str = ""
    """A short name for the check that refused, safe to log and count ("numbers", ...)."""
    reason: str = ""
    """The human explanation; it quotes the differing words, so it holds user text."""


PASS = Verdict(True)


def check(query: str, cached: str, *, strict: bool = True, soft: bool = True) -> Verdict:
    """Whether `cached`'s answer may be served for `query`, and if not, why. `soft=False`
    skips the checks that refuse many true paraphrases, for the verifier to weigh instead:
    quantifiers and time words ("save all my mails" / "save my mails"), a spelled number on one
    side only, and a negation in an otherwise reworded question ("wasn't correct" / "wrong")."""
    if query == cached:
        return PASS
    a, b = features(query), features(cached)
    if a.words == b.words:
        return PASS
    if a.numbers != b.numbers and (soft or not spelled_number_only(a, b) or not reworded(a, b)):
        return Verdict(False, "numbers", _differ("numbers", a.numbers, b.numbers))
    if a.negations != b.negations and (soft or not reworded(a, b)):
        return Verdict(
            False, "negation", f"negation differs ({a.negations} vs {b.negations} negations)"
        )
    if a.entities != b.entities:
        only_a = {e for e in a.entities - b.entities if e not in b.words}
        only_b = {e for e in b.entities - a.entities if e not in a.words}
        if only_a or only_b:
            return Verdict(False, "entities", _differ("names", only_a, only_b))
    if a.directions != b.directions:
        shared = {e for _, e in a.directions} & {e for _, e in b.directions}
        if shared:
            return Verdict(False, "direction", _differ("direction", a.directions, b.directions))
    verdict = _opposites(a, b) or _prefixed_antonyms(a, b) or _swapped(a, b) or _person(a, b)
    if verdict is not None:
        return verdict
    if soft:
        verdict = soft_difference(a, b)
        if verdict is not None:
            return verdict
    if strict:
        only_a, only_b = unmatched(a.content, b.content), unmatched(b.content, a.content)
        if len(only_a) + len(only_b) > CONTENT_ALLOWANCE:
            return Verdict(False, "content", _differ("content words", only_a, only_b))
    return PASS


def spelled_number_only(a: Features, b: Features) -> bool:
    """Only one side has a number, and it is spelled out: "how do I get one", "my card was
    stolen last night" next to a question with no number at all. Digits ("order 123"), two
    different numbers and a question that differs by the number alone ("this month" / "last
    month") always refuse; a spelled number in a reworded question is left to the verifier."""
    if a.numbers and b.numbers:
        return False
    return not any(w[0] in _NUMERIC_START for w in a.words + b.words)


def reworded(a: Features, b: Features) -> bool:
    """Whether other content words differ too. "Cancel my order" / "Don't cancel my order" is
    the same sentence negated (refused at any similarity); "Why is my transfer taking so long?"
    / "Why has my transfer not arrived yet?" says the same thing another way, which the verifier
    weighs."""
    return bool(
        unmatched(a.content, b.content) - _SPELLED or unmatched(b.content, a.content) - _SPELLED
    )


_SPELLED = frozenset(_stem(w) for w in NUMBER_WORDS)
"""Spelled numbers are content words too, but "this month" / "last month" is not reworded."""


def soft_difference(a: Features, b: Features) -> Verdict | None:
    a_quant = {w for w in a.words if w in QUANTIFIERS}
    b_quant = {w for w in b.words if w in QUANTIFIERS}
    if a_quant != b_quant:
        return Verdict(False, "quantifier", _differ("quantifiers", a_quant, b_quant))
    a_time = {w for w in a.words if w in TIME_WORDS}
    b_time = {w for w in b.words if w in TIME_WORDS}
    if a_time != b_time:
        return Verdict(False, "time", _differ("time", a_time, b_time))
    return None


def _opposites(a: Features, b: Features) -> Verdict | None:
    a_set, b_set = set(a.words), set(b.words)
    for word in a_set - b_set:
        for opposite in OPPOSITES.get(word, ()):
            if opposite in b_set and opposite not in a_set:
                return Verdict(False, "opposite", f"opposite words: {word!r} vs {opposite!r}")
    return None


def _prefixed_antonyms(a: Features, b: Features) -> Verdict | None:
    """ "safe" / "unsafe", "refundable" / "non-refundable", "connect" / "disconnect"."""
    a_set, b_set = set(a.words), set(b.words)
    only_a, only_b = a_set - b_set, b_set - a_set
    for x in only_a:
        for y in only_b:
            longer, shorter = (x, y) if len(x) > len(y) else (y, x)
            for prefix in ANTONYM_PREFIXES:
                if (
                    len(shorter) >= 3
                    and longer.startswith(prefix)
                    and _stem(longer[len(prefix) :]) == _stem(shorter)
                ):
                    return Verdict(False, "opposite", f"opposite words: {x!r} vs {y!r}")
    return None


FIRST_PERSON = frozenset({"i", "me", "my", "mine", "myself"})
SECOND_PERSON = frozenset({"you", "your", "yours", "yourself"})
_PERSON_VERBS = frozenset({"am", "are", "is", "was", "were", "do", "does"})
"""Verbs that change with the person ("how old am I" / "how old are you"), so not compared."""


def _person(a: Features, b: Features) -> Verdict | None:
    """The same question about the other person: "what's my name" / "what's your name", "where
    are you from" / "where am I from". Only word-for-word swaps refuse; a reworded question
    with another pronoun ("how can you reset my password") is left to the verifier."""
    words_a = [w for w in a.words if w not in _PERSON_VERBS]
    words_b = [w for w in b.words if w not in _PERSON_VERBS]
    if len(words_a) != len(words_b):
        return None
    differ = [(x, y) for x, y in zip(words_a, words_b, strict=True) if x != y]
    swapped = all(
        (x in FIRST_PERSON and y in SECOND_PERSON) or (x in SECOND_PERSON and y in FIRST_PERSON)
        for x, y in differ
    )
    if differ and swapped:
        return Verdict(False, "person", _differ("person", {differ[0][0]}, {differ[0][1]}))
    return None


def _swapped(a: Features, b: Features) -> Verdict | None:
    """The same words on the other side of "to"/"from"/"than": a swapped direction or order."""
    only_a = {(d, w) for d, w in a.ordered - b.ordered if w in b.content}
    only_b = {(d, w) for d, w in b.ordered - a.ordered if w in a.content}
    if {d for d, _ in only_a} & {d for d, _ in only_b}:
        return Verdict(False, "direction", _differ("order", only_a, only_b))
    return None


def unmatched(mine: frozenset[str], theirs: frozenset[str]) -> set[str]:
    """Content words with no counterpart: not the same stem nor sharing a 5-letter prefix."""
    prefixes = {w[:5] for w in theirs if len(w) >= 5}
    return {w for w in mine - theirs if not (len(w) >= 5 and w[:5] in prefixes)}


def _differ(what: str, a: object, b: object) -> str:
    def show(value: object) -> str:
        if isinstance(value, Counter):
            return ", ".join(sorted(value.elements())) or "none"
        if isinstance(value, (set, frozenset)):
            return ", ".join(sorted(map(str, value))) or "none"
        return str(value)

    return f"{what} differ: {show(a)} vs {show(b)}"
