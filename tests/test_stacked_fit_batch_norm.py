"""Batch-normalised estimators fitted as one stack equal each fitted alone (fitted state,
running statistics, history and predictions bit for bit), and save and load unchanged."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import KFold

import nncv
from nncv import NNClassifier, NNRegressor
from nncv._stacked_fit import StackedFit


def _data():
    X, y = load_digits(return_X_y=True)
    return np.ascontiguousarray(X[:300] / 16.0), y[:300]


def _folds(X):
    return [train for train, _ in KFold(3, shuffle=True, random_state=0).split(X)]


def _assert_fitted_alike(alone, stacked, X):
    for a, b in zip(alone, stacked, strict=True):
        pd.testing.assert_frame_equal(a.history_, b.history_)
        assert (a.n_iter_, a.best_epoch_) == (b.n_iter_, b.best_epoch_)
        meta_a, arrays_a = a._get_fitted_state()
        meta_b, arrays_b = b._get_fitted_state()
        assert meta_a == meta_b
        assert arrays_a.keys() == arrays_b.keys()
        for key, value in arrays_a.items():
            assert np.array_equal(value, arrays_b[key], equal_nan=True), key
        assert np.array_equal(a.network_.running_statistics, b.network_.running_statistics)
        assert np.array_equal(a.predict(X), b.predict(X))


@pytest.mark.filterwarnings("ignore:max_epochs=20 reached")  # some folds do not stop early
@pytest.mark.parametrize(
    ("kind", "params"),
    [
        ("classifier", {"batch_norm": True, "dropout": 0.1, "early_stopping": True,
                        "patience": 2, "max_epochs": 20}),
        ("classifier", {"batch_norm": (True, False), "dtype": "float32", "max_epochs": 4}),
        ("regressor", {"batch_norm": True, "max_epochs": 4}),
    ],
)  # fmt: skip
def test_batch_normalised_estimators_fit_as_one_stack_as_alone(kind, params, tmp_path):
    X, y = _data()
    weights = None
    if kind == "regressor":
        y = X[:, 20] * 3 + X[:, 30] - X[:, 42]
        weights = np.random.default_rng(0).uniform(0.2, 2.0, len(y))
    hidden = (24, 12) if kind == "classifier" else (16,)
    cls = NNClassifier if kind == "classifier" else NNRegressor

    def make(seed):
        return cls(hidden, learning_rate=0.01, batch_size=32, random_state=seed, **params)

    folds = _folds(X)
    alone = []
    for index, rows in enumerate(folds):
        estimator = make(index)
        w = None if weights is None else weights[rows]
        for _ in estimator.iter_fit(X[rows], y[rows], w):
            pass
        alone.append(estimator)
    stacked = [make(index) for index in range(len(folds))]
    data = [(X[rows], y[rows], None if weights is None else weights[rows]) for rows in folds]
    with StackedFit(stacked, data) as fit:
        for _ in fit.advance():
            pass
    _assert_fitted_alike(alone, stacked, X)
    assert stacked[0].network_.running_statistics.any()
    if params.get("early_stopping"):
        assert any(e.n_iter_ < params["max_epochs"] for e in stacked)
    path = tmp_path / "fold.nncv"
    nncv.save(stacked[1], path)
    assert np.array_equal(nncv.load(path).predict(X), stacked[1].predict(X))
