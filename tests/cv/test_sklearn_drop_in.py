"""nncv.cross_validate as a drop-in for scikit-learn's: keys, parameters, determinism."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.exceptions import FitFailedWarning
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.model_selection import cross_validate as sk_cross_validate
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from nncv import NNClassifier, NNRegressor
from nncv.cv import CVSetupError, cross_validate


@pytest.fixture(scope="module")
def cancer():
    X, y = load_breast_cancer(return_X_y=True)
    return X[:300], y[:300]


def seeded_pipeline(**params) -> Pipeline:
    net = NNClassifier(
        hidden_layer_sizes=8, max_epochs=4, batch_size=32, dtype="float64", random_state=0
    )
    return Pipeline([("scale", StandardScaler()), ("net", net.set_params(**params))])


@pytest.mark.parametrize(
    "scoring", [None, "accuracy", ["accuracy", "f1"], {"acc": "accuracy", "auc": "roc_auc"}]
)
def test_same_keys_indices_and_scores_as_scikit_learn(cancer, scoring):
    X, y = cancer
    options = dict(
        cv=4, scoring=scoring, return_train_score=True, return_indices=True, return_estimator=True
    )
    ours = cross_validate(seeded_pipeline(), X, y, **options)
    with threadpool_limits(limits=1, user_api="blas"):  # as nncv's folds run
        theirs = sk_cross_validate(seeded_pipeline(), X, y, **options)
    assert isinstance(ours, Mapping)
    assert list(ours) == list(theirs)  # same keys, same order
    for kind in ("train", "test"):
        for a, b in zip(ours["indices"][kind], theirs["indices"][kind], strict=True):
            np.testing.assert_array_equal(a, b)
    for key in theirs:
        if key.startswith(("test_", "train_")):
            np.testing.assert_allclose(ours[key], theirs[key], rtol=1e-12, err_msg=key)
    assert len(ours["estimator"]) == 4 and len(ours["fit_time"]) == 4
    # the nncv extras are still there
    assert len(ours.curves) == 4 * 4
    assert ours.mean() == pytest.approx(np.mean(next(iter(ours.scores.values()))))
    assert pd.DataFrame({k: ours[k] for k in ours if k.startswith("test_")}).shape == (
        4,
        len(ours.scores),
    )


def test_only_the_keys_asked_for(cancer):
    X, y = cancer
    result = cross_validate(seeded_pipeline(), X, y, cv=3)
    assert sorted(result) == ["fit_time", "score_time", "test_score"]
    assert len(result) == 3 and "train_score" not in result
    assert dict(result).keys() == result.as_dict().keys()


def test_regressor_train_and_test_r2_match_scikit_learn():
    X, y = load_diabetes(return_X_y=True)
    model = Pipeline(
        [
            ("scale", StandardScaler()),
            ("net", NNRegressor(max_epochs=3, dtype="float64", random_state=1)),
        ]
    )
    ours = cross_validate(model, X, y, cv=3, return_train_score=True)
    with threadpool_limits(limits=1, user_api="blas"):
        theirs = sk_cross_validate(model, X, y, cv=3, return_train_score=True)
    np.testing.assert_allclose(ours["test_score"], theirs["test_score"], rtol=1e-12)
    np.testing.assert_allclose(ours["train_score"], theirs["train_score"], rtol=1e-12)


def test_int_cv_without_random_state_is_deterministic_and_unshuffled(cancer):
    X, y = cancer
    one = cross_validate(seeded_pipeline(), X, y, cv=5)
    two = cross_validate(seeded_pipeline(), X, y, cv=5)
    np.testing.assert_array_equal(one["test_score"], two["test_score"])
    expected = [test for _, test in StratifiedKFold(5).split(X, y)]
    for ours, theirs in zip(one.test_indices, expected, strict=True):
        np.testing.assert_array_equal(ours, theirs)
    X_reg, y_reg = load_diabetes(return_X_y=True)
    result = cross_validate(NNRegressor(max_epochs=1, random_state=0), X_reg, y_reg, cv=3)
    for ours, theirs in zip(result.test_indices, KFold(3).split(X_reg), strict=True):
        np.testing.assert_array_equal(ours, theirs[1])


def test_params_reach_the_steps(cancer):
    X, y = cancer
    weights = np.linspace(0.5, 2.0, len(y))
    by_argument = cross_validate(seeded_pipeline(), X, y, cv=3, sample_weight=weights)
    by_params = cross_validate(seeded_pipeline(), X, y, cv=3, params={"sample_weight": weights})
    by_step = cross_validate(seeded_pipeline(), X, y, cv=3, params={"net__sample_weight": weights})
    unweighted = cross_validate(seeded_pipeline(), X, y, cv=3)
    np.testing.assert_array_equal(by_argument["test_score"], by_params["test_score"])
    np.testing.assert_array_equal(by_argument["test_score"], by_step["test_score"])
    assert not np.array_equal(by_argument.curves.loss, unweighted.curves.loss)
    # a preprocessing step's fit parameter: StandardScaler takes sample_weight
    scaled = cross_validate(seeded_pipeline(), X, y, cv=3, params={"scale__sample_weight": weights})
    assert not np.array_equal(scaled.curves.loss, unweighted.curves.loss)
    with pytest.raises(CVSetupError, match="not supported"):
        cross_validate(seeded_pipeline(), X, y, cv=3, params={"nope__x": 1})
    with pytest.raises(CVSetupError, match="both"):
        cross_validate(
            seeded_pipeline(), X, y, cv=3, sample_weight=weights, params={"sample_weight": weights}
        )


def test_error_score_defaults_to_nan_with_a_warning(cancer):
    X, y = cancer
    model = seeded_pipeline(hidden_layer_sizes=-1)  # invalid: every fit fails
    with pytest.warns(FitFailedWarning, match="fold 0 failed and scores nan"):
        result = cross_validate(model, X, y, cv=3, return_train_score=True)
    assert np.isnan(result["test_score"]).all() and np.isnan(result["train_score"]).all()
    with pytest.raises(ValueError):
        cross_validate(model, X, y, cv=3, error_score="raise")
    with pytest.raises(CVSetupError, match="error_score"):
        cross_validate(model, X, y, cv=3, error_score="ignore")
