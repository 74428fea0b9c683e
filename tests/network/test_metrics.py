"""Validation metrics of the training loop against scikit-learn's definitions."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, r2_score

from nncv.network import metrics


@pytest.mark.parametrize("weighted", [False, True])
def test_accuracy_multiclass_binary_and_multilabel(weighted):
    rng = np.random.default_rng(0)
    weights = rng.uniform(0.1, 2.0, 50) if weighted else None
    probabilities = rng.dirichlet(np.ones(4), 50)
    labels = rng.integers(0, 4, 50)
    assert metrics.accuracy(probabilities, np.eye(4)[labels], weights) == pytest.approx(
        accuracy_score(labels, probabilities.argmax(axis=1), sample_weight=weights)
    )
    scores = rng.random((50, 1))
    binary = rng.integers(0, 2, (50, 1)).astype(float)
    assert metrics.accuracy(scores, binary, weights) == pytest.approx(
        accuracy_score(binary.ravel(), scores.ravel() > 0.5, sample_weight=weights)
    )
    multilabel_scores = rng.random((50, 3))
    multilabel = rng.integers(0, 2, (50, 3))
    assert metrics.accuracy(multilabel_scores, multilabel.astype(float), weights) == pytest.approx(
        accuracy_score(multilabel, multilabel_scores > 0.5, sample_weight=weights)
    )


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("n_outputs", [1, 3])
def test_r2_matches_scikit_learn(weighted, n_outputs):
    rng = np.random.default_rng(1)
    weights = rng.uniform(0.1, 2.0, 40) if weighted else None
    y = rng.standard_normal((40, n_outputs))
    predictions = y + 0.5 * rng.standard_normal((40, n_outputs))
    assert metrics.r2(predictions, y, weights) == pytest.approx(
        r2_score(y, predictions, sample_weight=weights)
    )


def test_r2_of_a_constant_target():
    """scikit-learn: 1 for a perfect prediction of a constant, 0 otherwise."""
    y = np.full((5, 1), 3.0)
    assert metrics.r2(y.copy(), y) == 1.0
    assert metrics.r2(y + 1, y) == 0.0
