"""k estimators fitted as one stack equal each fitted alone, and work downstream unchanged."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import KFold
from sklearn.preprocessing import StandardScaler

import nncv
from nncv import NNClassifier, NNRegressor
from nncv._stacked_fit import StackedFit
from nncv.exceptions import ConfigurationError
from nncv.network.training import IndexedRows


def _digits():
    X, y = load_digits(return_X_y=True)
    return np.ascontiguousarray(X[:400]), y[:400]


def _folds(X, n_folds=3):
    return [train for train, _ in KFold(n_folds, shuffle=True, random_state=0).split(X)]


def _fit_alone(make, X, y, folds, weights=None):
    estimators = []
    for index, rows in enumerate(folds):
        scaler = StandardScaler().fit(X[rows])
        estimator = make(index)
        w = None if weights is None else weights[rows]
        source = IndexedRows(
            X, np.asarray(rows, dtype=np.intp), scaler.transform, np.dtype(estimator.dtype)
        )
        for _ in estimator.iter_fit(source, y[rows], w):
            pass
        estimators.append(estimator)
    return estimators


def _fit_stacked(make, X, y, folds, weights=None, max_stack=None):
    estimators, data = [], []
    for index, rows in enumerate(folds):
        scaler = StandardScaler().fit(X[rows])
        estimator = make(index)
        inputs = IndexedRows(X, rows, scaler.transform, np.dtype(estimator.dtype))
        data.append((inputs, y[rows], None if weights is None else weights[rows]))
        estimators.append(estimator)
    with StackedFit(estimators, data, max_stack=max_stack) as fit:
        for _ in fit.advance():
            pass
    return estimators


def _assert_fitted_alike(alone, stacked, X):
    for a, b in zip(alone, stacked, strict=True):
        pd.testing.assert_frame_equal(a.history_, b.history_)
        assert (a.n_iter_, a.best_epoch_) == (b.n_iter_, b.best_epoch_)
        meta_a, arrays_a = a._get_fitted_state()
        meta_b, arrays_b = b._get_fitted_state()
        assert meta_a == meta_b  # includes the random generator's state
        assert arrays_a.keys() == arrays_b.keys()
        for key, value in arrays_a.items():
            assert np.array_equal(value, arrays_b[key], equal_nan=True), key
        assert np.array_equal(a.predict(X), b.predict(X))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_classifiers_with_early_stopping_and_dropout_fit_as_alone(dtype):
    X, y = _digits()

    def make(seed):
        return NNClassifier(
            (32,), dropout=0.1, early_stopping=True, patience=2, max_epochs=25,
            learning_rate=0.01, dtype=dtype, random_state=seed,
        )  # fmt: skip

    folds = _folds(X)
    alone = _fit_alone(make, X, y, folds)
    stacked = _fit_stacked(make, X, y, folds)
    _assert_fitted_alike(alone, stacked, X)
    assert len({e.n_iter_ for e in stacked}) > 1, "the folds should stop at different epochs"


def test_weighted_regressors_fit_as_alone_and_save_and_load(tmp_path):
    X, y = _digits()
    target = X[:, 20] + 0.5 * X[:, 30]
    weights = np.random.default_rng(0).uniform(0.2, 2.0, len(X))

    def make(seed):
        return NNRegressor((16,), max_epochs=4, batch_size=24, dtype="float64", random_state=seed)

    folds = _folds(X, 4)
    alone = _fit_alone(make, X, target, folds, weights)
    stacked = _fit_stacked(make, X, target, folds, weights, max_stack=3)
    _assert_fitted_alike(alone, stacked, X)
    path = tmp_path / "fold0.nncv"
    nncv.save(stacked[0], path)
    assert np.array_equal(nncv.load(path).predict(X), alone[0].predict(X))
    # a stacked fit continues like a fit alone
    stacked[0].partial_fit(X[:50], target[:50])
    alone[0].partial_fit(X[:50], target[:50])
    assert np.array_equal(stacked[0].predict(X), alone[0].predict(X))


def test_estimators_of_different_configurations_are_refused():
    X, y = _digits()
    data = [(X[:200], y[:200], None), (X[200:], y[200:], None)]
    with pytest.raises(ConfigurationError, match="max_epochs differ"):
        StackedFit([NNClassifier(max_epochs=2), NNClassifier(max_epochs=3)], data)
    with pytest.raises(ConfigurationError, match="network differs"):
        StackedFit([NNClassifier((4,), max_epochs=2), NNClassifier((5,), max_epochs=2)], data)
