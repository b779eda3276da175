"""The shipped verifier: topical near misses the rules cannot name are refused, paraphrases and
near repeats are served, and it costs far less than the 1 ms a hit can spare."""

from __future__ import annotations

import time

import pytest
from lockgate.cache.near_misses import near_misses, negate
from lockgate.cache.semantic import DEFAULT_THRESHOLD
from lockgate.cache.verifier import FEATURE_NAMES, Verifier, pair_features, read_card

from tests.unit.cache.support import minilm

EMBEDDER = minilm()


@pytest.fixture(scope="module")
def verifier() -> Verifier:
    return Verifier.load()


def test_the_shipped_model_matches_its_card(verifier: Verifier) -> None:
    card = read_card()
    point = card["operating_point"]
    assert isinstance(point, dict)
    assert point["probability"] == pytest.approx(verifier.threshold)
    assert point["floor"] == DEFAULT_THRESHOLD
    assert "BANKING77" in str(card["training"]) and "StackFAQ" not in str(card["training"])
    assert pair_features("a b", "a c", 0.9).shape == (len(FEATURE_NAMES),)


def cosine(a: str, b: str) -> float:
    vectors = EMBEDDER.embed_sync([a, b])
    return float(vectors[0] @ vectors[1])


@pytest.mark.parametrize(
    ("query", "cached"),
    [
        ("What is your return policy?", "What's your return policy?"),
        ("how can i reset my password", "How do I reset my password?"),
    ],
)
def test_serves_near_repeats(verifier: Verifier, query: str, cached: str) -> None:
    assert verifier.probability(query, cached, cosine(query, cached)) >= verifier.threshold


@pytest.mark.parametrize(
    ("query", "cached"),
    [
        ("Can I link to a location on google maps?", "Can I link to a location in a google doc?"),
        ("How long does standard shipping take?", "How long does express shipping take?"),
        ("Can I return a gift card?", "Can I return a gift?"),
    ],
)
def test_refuses_a_replaced_content_word(verifier: Verifier, query: str, cached: str) -> None:
    """Topical near misses the rules cannot name: the cosine alone would serve them."""
    similarity = cosine(query, cached)
    assert similarity >= DEFAULT_THRESHOLD
    assert verifier.probability(query, cached, similarity) < verifier.threshold


def test_is_fast(verifier: Verifier) -> None:
    cached = "How can I get a refund for an order that arrived broken?"
    started = time.thread_time()
    for i in range(2000):
        verifier.probability(
            f"How do I get my money back for order {i} that came damaged?", cached, 0.9
        )
    per_call = (time.thread_time() - started) / 2000
    assert per_call < 0.0005, f"{per_call * 1e3:.3f} ms per candidate"


def test_rules_make_near_misses_and_true_pairs_from_questions() -> None:
    pairs = near_misses(
        ["How do I cancel my order?", "Where is my parcel?"],
        [("How do I cancel my order?", "Can I cancel an order?")],
        "test",
        seed=1,
    )
    assert any(not p.same for p in pairs) and any(p.same for p in pairs)
    assert all(p.a != p.b for p in pairs)
    assert negate("Is it refundable?", "train") == "Is not it refundable?"
    assert negate("Can I pay later?", "test") == "Can't I pay later?"
    assert negate("Where is my parcel", "test") == "Where isn't my parcel"
