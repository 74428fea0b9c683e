"""The final held-out scores of cross_validate (nncv/cv/held_out.py): predicted block by
block where that is exact, bit for bit what the scorers give on all held-out rows."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.decomposition import PCA
from sklearn.metrics import get_scorer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from nncv import NNClassifier, NNRegressor
from nncv.cv import cross_validate
from nncv.cv import held_out as _held_out
from nncv.cv import rows as _rowwise
from nncv.network import model as network_model


@pytest.fixture
def small_chunks(monkeypatch):
    """Prediction chunks and held-out blocks of a few rows, so a fold spans several."""
    monkeypatch.setattr(network_model, "PREDICT_CHUNK_ROWS", 32)
    monkeypatch.setattr(_rowwise, "BLOCK_ROWS", 45)


@pytest.fixture
def blockwise(monkeypatch):
    """Counts the folds scored block by block."""
    calls = []
    original = _held_out._BlockwisePredictions.__init__

    def spy(self, *args):
        calls.append(1)
        original(self, *args)

    monkeypatch.setattr(_held_out._BlockwisePredictions, "__init__", spy)
    return calls


def default_scores(result, X, y):
    """The fitted pipelines' own ``score`` on the folds' whole held-out rows."""
    pairs = zip(result.estimators, result.test_indices, strict=True)
    return np.array([estimator.score(X[test], y[test]) for estimator, test in pairs])


def reference_scores(result, X, y, scoring, sample_weight=None):
    """Each scorer applied by scikit-learn to the fold's whole held-out rows."""
    scores = {name: [] for name in scoring}
    for estimator, test in zip(result.estimators, result.test_indices, strict=True):
        weights = {} if sample_weight is None else {"sample_weight": sample_weight[test]}
        for name in scoring:
            scorer = get_scorer(name)
            scores[name].append(scorer(estimator, X[test], y[test], **weights))
    return {name: np.array(values) for name, values in scores.items()}


@pytest.mark.parametrize("weighted", [False, True])
def test_classifier_scores_match_scoring_all_held_out_rows(small_chunks, blockwise, weighted):
    X, y = load_breast_cancer(return_X_y=True)
    X = X.astype(np.float32)
    weights = np.random.default_rng(0).uniform(0.5, 2.0, len(y)) if weighted else None
    scoring = ["accuracy", "neg_log_loss", "roc_auc", "f1", "neg_brier_score"]
    model = make_pipeline(StandardScaler(), NNClassifier(hidden_layer_sizes=(8,), max_epochs=4))
    result = cross_validate(
        model,
        X,
        y,
        cv=3,
        scoring=scoring,
        sample_weight=weights,
        random_state=0,
        return_estimator=True,
    )
    assert len(blockwise) == 3
    expected = reference_scores(result, X, y, scoring, weights)
    for name in scoring:
        np.testing.assert_array_equal(result.scores[name], expected[name])


def test_default_score_of_a_regressor_and_a_multiclass_network(small_chunks, blockwise):
    X, y = load_diabetes(return_X_y=True)
    model = make_pipeline(
        MinMaxScaler(), NNRegressor(hidden_layer_sizes=(8,), max_epochs=3, learning_rate=0.01)
    )
    result = cross_validate(model, X, y, cv=3, random_state=1, return_estimator=True)
    np.testing.assert_array_equal(result.scores["score"], default_scores(result, X, y))
    labels = np.digitize(y, [100, 200])
    classifier = make_pipeline(StandardScaler(), NNClassifier(hidden_layer_sizes=(8,)))
    result = cross_validate(classifier, X, labels, cv=3, random_state=1, return_estimator=True)
    np.testing.assert_array_equal(result.scores["score"], default_scores(result, X, labels))
    assert len(blockwise) == 6


def test_other_scorers_and_transformers_score_all_rows_at_once(small_chunks, blockwise):
    X, y = load_breast_cancer(return_X_y=True)
    net = NNClassifier(hidden_layer_sizes=(8,), max_epochs=3)

    def error_count(estimator, X_test, y_test):
        return float(np.sum(estimator.predict(X_test) != y_test))

    plain = make_pipeline(StandardScaler(), net)
    counted = cross_validate(plain, X, y, cv=3, scoring=error_count, random_state=0)
    accuracy = cross_validate(plain, X, y, cv=3, scoring="accuracy", random_state=0)
    sizes = np.array([len(test) for test in counted.test_indices])
    np.testing.assert_allclose(counted.scores["score"], sizes * (1 - accuracy.scores["accuracy"]))
    assert len(blockwise) == 3  # the accuracy run only
    reduced = make_pipeline(StandardScaler(), PCA(4), net)
    result = cross_validate(reduced, X, y, cv=3, random_state=0, return_estimator=True)
    np.testing.assert_array_equal(result.scores["score"], default_scores(result, X, y))
    assert len(blockwise) == 3
