"""Small data and estimators that keep the search tests fast."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from nncv import NNClassifier, NNRegressor
from nncv.datasets import load
from nncv.search import Float, Int, SearchSpace


@pytest.fixture(autouse=True)
def _quiet_optuna():
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    yield
    optuna.logging.set_verbosity(verbosity)


@pytest.fixture
def iris():
    return load("iris")


@pytest.fixture
def regression():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 3))
    y = X @ np.array([2.0, -1.0, 0.5]) + 0.1 * rng.normal(size=120)
    return X, y


def small_classifier(**params) -> Pipeline:
    """Standard scaler + a tiny NNClassifier that trains in milliseconds."""
    defaults = {"hidden_layer_sizes": 8, "max_epochs": 8, "batch_size": 16}
    return Pipeline([("scale", StandardScaler()), ("net", NNClassifier(**{**defaults, **params}))])


def small_regressor(**params) -> Pipeline:
    defaults = {"hidden_layer_sizes": 8, "max_epochs": 6, "batch_size": 16}
    return Pipeline([("scale", StandardScaler()), ("net", NNRegressor(**{**defaults, **params}))])


def small_space(**extra) -> SearchSpace:
    return SearchSpace(learning_rate=Float(1e-3, 1e-1, log=True), hidden_size=Int(4, 8), **extra)
