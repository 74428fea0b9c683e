"""The search stands on the cross-validation engine: what cross_validate accepts, tune does."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from sklearn.model_selection import GroupKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler

import nncv
from nncv import NNClassifier
from nncv.search import Categorical, SearchSpace

SPACE = SearchSpace(learning_rate=Categorical([0.01]))


def nested(**params) -> Pipeline:
    net = NNClassifier(hidden_layer_sizes=8, max_epochs=3, batch_size=16, **params)
    inner = Pipeline([("minmax", MinMaxScaler()), ("net", net)])
    return Pipeline([("scale", StandardScaler()), ("model", inner)])


def test_tune_takes_a_nested_pipeline_groups_and_per_fold_weights(iris):
    X, y = iris
    groups = np.arange(len(y)) % 5
    weights = np.where(y == 0, 0.0, 1.0)
    space = SearchSpace(learning_rate=Categorical([0.01]), model__minmax__clip=Categorical([True]))
    common = {"n_trials": 1, "cv": GroupKFold(5), "random_state": 0, "refit": False}
    plain = nncv.tune(X, y, nested(), space, groups=groups, **common)
    weighted = nncv.tune(X, y, nested(), space, groups=groups, sample_weight=weights, **common)
    (trial,) = plain.study.trials
    assert trial.state.name == "COMPLETE"
    splits = plain.study.user_attrs["nncv_splits"]
    assert len(splits["folds"]) == 5
    # GroupKFold keeps every group in one test fold
    from nncv.search._study import decode_splits

    for _, test in decode_splits(splits):
        assert len(set(groups[test])) == 1
    # the weights reach the fits and the scorers: class 0 no longer counts
    assert weighted.best_score != plain.best_score


def test_a_fold_of_a_trial_trains_straight_from_x():
    # 24 MB of float32: a trial that copied its folds' rows held several times that (7.8 x X)
    X = np.random.default_rng(0).standard_normal((60_000, 100), dtype=np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int64)
    estimator = Pipeline(
        [("scale", StandardScaler()), ("net", NNClassifier(hidden_layer_sizes=8, max_epochs=1))]
    )
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        result = nncv.tune(
            X, y, estimator, SPACE, n_trials=1, cv=5, random_state=0, refit=False, pruner="none"
        )
        peak = tracemalloc.get_traced_memory()[1] - start
    finally:
        tracemalloc.stop()
    assert result.best_score > 0.8
    assert peak < 0.75 * X.nbytes  # blocks, batch buffers and per-row vectors


def test_a_trial_scores_as_cross_validate_does_with_the_same_seeds(iris):
    from nncv.cv.splits import derive_seed
    from nncv.search._study import decode_splits

    X, y = iris
    estimator = Pipeline(
        [("scale", StandardScaler()), ("net", NNClassifier(hidden_layer_sizes=8, max_epochs=4))]
    )
    result = nncv.tune(X, y, estimator, SPACE, n_trials=1, cv=3, random_state=7, refit=False)
    splits = decode_splits(result.study.user_attrs["nncv_splits"])
    for fold, split in enumerate(splits):
        seeded = estimator.set_params(
            net__random_state=derive_seed(7, 0, fold), net__learning_rate=0.01
        )
        one = nncv.cross_validate(seeded, X, y, cv=[split], random_state=0)
        assert one.scores["score"][0] == pytest.approx(
            result.fold_scores["score"][fold], abs=0, rel=0
        )


def test_samplers_by_name_or_object_in_tune_nnsearchcv_and_the_cli(iris):
    import optuna
    from typer.testing import CliRunner

    from nncv.cli import app
    from nncv.search import NNSearchCV

    X, y = iris
    space = SearchSpace(learning_rate=nncv.Float(1e-3, 1e-1, log=True))
    estimator = Pipeline([("scale", StandardScaler()), ("net", NNClassifier(max_epochs=2))])
    common = {"n_trials": 2, "cv": 2, "random_state": 0, "refit": False}
    result = nncv.tune(X, y, estimator, space, sampler="random", **common)
    assert isinstance(result.study.sampler, optuna.samplers.RandomSampler)
    again = nncv.tune(X, y, estimator, space, sampler="random", **common)
    assert result.study.trials[1].params == again.study.trials[1].params  # seeded by the study
    search = NNSearchCV(estimator, space, sampler=optuna.samplers.RandomSampler(seed=1), **common)
    assert isinstance(search.fit(X, y).study_.sampler, optuna.samplers.RandomSampler)
    with pytest.raises(nncv.SearchError, match="unknown sampler 'tpee'"):
        NNSearchCV(estimator, space, sampler="tpee", **common).fit(X, y)
    cli = CliRunner().invoke(
        app, ["tune", "iris", "-n", "1", "--cv", "2", "-p", "max_epochs=2", "--sampler", "bogus"]
    )
    assert cli.exit_code != 0
    assert "unknown sampler 'bogus'" in cli.output
