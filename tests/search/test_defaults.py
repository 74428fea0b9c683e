"""One default estimator for tune, NNSearchCV and the CLI (nncv.pipeline.infer_task)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_diabetes, load_digits

import nncv
from nncv import NNClassifier, NNRegressor
from nncv.pipeline import default_estimator, infer_task
from nncv.search import Categorical, Int, NNSearchCV, SearchSpace

# Few epochs, one trial, two folds: these tests check which network is built, not its skill.
SPACE = SearchSpace(max_epochs=Int(2, 3), hidden_layer_sizes=Categorical([8]))


@pytest.mark.parametrize(
    ("y", "task"),
    [
        (np.arange(100) % 3, "classification"),  # integers
        (np.arange(100) % 2 == 0, "classification"),  # bools
        (np.array(["a", "b"] * 50), "classification"),  # strings
        (pd.Series(pd.Categorical([0.5, 1.5] * 50)), "classification"),  # categorical
        ((np.arange(1000) % 10).astype(float), "classification"),  # 0.0 … 9.0
        (np.arange(100) % 30 * 1.0, "regression"),  # 30 whole-numbered values, 30 % of rows
        ((np.arange(1000) % 30).astype(float), "classification"),  # 30 values, 3 % of rows
        (np.linspace(0, 1, 10), "regression"),  # not whole numbers
        (load_diabetes().target, "regression"),  # 214 distinct of 442
    ],
)
def test_infer_task_follows_the_target(y, task):
    assert infer_task(y) == task


def test_task_overrides_the_inference_and_is_checked():
    assert infer_task(np.arange(10.0), "classification") == "classification"
    assert isinstance(default_estimator([0, 1], task="regression")[-1], NNRegressor)
    with pytest.raises(ValueError, match="task must be"):
        infer_task([0, 1], "ranking")


def test_tune_and_nnsearchcv_build_a_regressor_for_diabetes():
    X, y = load_diabetes(return_X_y=True)
    result = nncv.tune(X, y, space=SPACE, n_trials=1, cv=2, random_state=0)
    assert isinstance(result.best_estimator[-1], NNRegressor)
    assert np.isfinite(result.best_score)
    search = NNSearchCV(space=SPACE, n_trials=1, cv=2, random_state=0).fit(X, y)
    assert isinstance(search.best_estimator_[-1], NNRegressor)
    assert search.score(X, y) == pytest.approx(search.best_estimator_.score(X, y))


@pytest.mark.parametrize("as_float", [False, True])
def test_tune_and_nnsearchcv_build_a_classifier_for_digits(as_float):
    X, y = load_digits(return_X_y=True)
    X, y = X[:400], y[:400].astype(float) if as_float else y[:400]
    result = nncv.tune(X, y, space=SPACE, n_trials=1, cv=2, random_state=0)
    assert isinstance(result.best_estimator[-1], NNClassifier)
    assert len(result.best_estimator.classes_) == 10
    search = NNSearchCV(space=SPACE, n_trials=1, cv=2, random_state=0).fit(X, y)
    assert isinstance(search.best_estimator_[-1], NNClassifier)


def test_a_completed_trial_reports_once_per_epoch():
    X, y = load_digits(return_X_y=True)
    estimator = default_estimator(y[:300], hidden_layer_sizes=8, max_epochs=4)
    space = SearchSpace(learning_rate=Categorical([0.01]))
    result = nncv.tune(
        X[:300], y[:300], estimator, space, n_trials=1, cv=3, pruner="none", random_state=0
    )
    (trial,) = result.study.trials
    assert sorted(trial.intermediate_values) == [1, 2, 3, 4]
