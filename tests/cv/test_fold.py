"""Fold and FoldGroup: the one fold engine behind cross_validate and the search."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_iris
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from nncv import NNClassifier
from nncv.cv.fold import Fold, FoldGroup, fit_fold, pipeline_steps
from nncv.cv.splits import fold_seed, make_splits


def model(**params) -> Pipeline:
    net = NNClassifier(hidden_layer_sizes=8, max_epochs=5, batch_size=16, **params)
    return Pipeline([("scale", StandardScaler()), ("inner", Pipeline([("net", net)]))])


def test_pipeline_steps_flattens_nested_pipelines():
    pipe = Pipeline(
        [("a", StandardScaler()), ("b", Pipeline([("c", MinMaxScaler()), ("d", NNClassifier())]))]
    )
    steps, (path, final) = pipeline_steps(pipe)
    assert [name for name, _ in steps] == ["a", "b__c"]
    assert path == "b__d" and isinstance(final, NNClassifier)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("early_stopping", [False, True])
def test_a_group_advanced_in_chunks_equals_each_fold_drained(early_stopping):
    X, y = load_iris(return_X_y=True)
    estimator = model(early_stopping=early_stopping, patience=1)
    splits = make_splits(3, X, y, estimator=estimator, shuffle_seed=0)
    seeds = [fold_seed(0, k) for k in range(3)]
    group = FoldGroup(
        [
            Fold(estimator, X, y, train, test, index=k, seed=seeds[k])
            for k, (train, test) in enumerate(splits)
        ]
    )
    group.start()
    reported = []
    while not group.finished:
        if group.advance(2):
            reported.append(group.epochs)
    assert reported == sorted(set(reported)) and reported[-1] <= 5
    for fold, (train, test) in zip(group.folds, splits, strict=True):
        drained = fit_fold(
            estimator,
            X,
            y,
            None,
            train,
            test,
            fold=fold.index,
            seed=seeds[fold.index],
            scoring="accuracy",
            return_estimator=False,
            error_score="raise",
        )
        pd.testing.assert_frame_equal(fold.curves(), drained.curves, check_exact=True)
        assert fold.score("accuracy") == drained.scores
    if not early_stopping:
        assert reported == [2, 4, 5]


def test_closing_a_group_leaves_its_folds_fitted_with_the_epochs_done():
    X, y = load_iris(return_X_y=True)
    splits = make_splits(2, X, y, estimator=model(), shuffle_seed=0)
    group = FoldGroup([Fold(model(), X, y, train, test, seed=1) for train, test in splits])
    group.start()
    group.advance(2)
    group.close()
    assert group.finished
    assert all(fold.final.n_iter_ == 2 for fold in group.folds)
    assert np.isfinite(group.val_score())
