"""Training the verifier: the hidden units learn what a linear model cannot, and the fitted
model saves and loads to the same probabilities."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from lockgate.cache import train_verifier
from lockgate.cache.verifier import Verifier


def xor_set() -> tuple[np.ndarray, np.ndarray]:
    """A replaced word is harmless at a high cosine and fatal at a lower one: the label depends
    on two features together, which no weighted sum of them can express."""
    rng = np.random.default_rng(3)
    x = rng.uniform(-1, 1, (400, 2))
    y = ((x[:, 0] > 0) == (x[:, 1] > 0)).astype(np.float64)
    return x, y


def accuracy(model: Verifier, x: np.ndarray, y: np.ndarray) -> float:
    z = (x - model.mean) / model.scale
    logit = z @ model.weights + model.bias
    if model.hidden is not None:
        logit = logit + np.tanh(z @ model.hidden.weights + model.hidden.bias) @ model.hidden.out
    return float(((logit > 0) == (y == 1)).mean())


def test_the_fit_learns_an_interaction_of_two_features() -> None:
    x, y = xor_set()
    model = train_verifier.fit(x, y, [set() for _ in y])
    assert model.hidden is not None
    assert accuracy(model, x, y) > 0.9
    linear = Verifier(model.weights, model.bias, model.mean, model.scale, 0.5)
    assert accuracy(linear, x, y) < 0.75


def test_a_fitted_model_saves_its_hidden_layer(tmp_path: Path) -> None:
    shipped = Verifier.load()
    assert shipped.hidden is not None
    path = tmp_path / "verifier.npz"
    shipped.save(path)
    again = Verifier.load(path)
    assert again.hidden is not None
    np.testing.assert_allclose(again.hidden.weights, shipped.hidden.weights)
    query, cached = "How do I freeze my card?", "How do I activate my card?"
    assert again.probability(query, cached, 0.86) == pytest.approx(
        shipped.probability(query, cached, 0.86), abs=1e-6
    )
