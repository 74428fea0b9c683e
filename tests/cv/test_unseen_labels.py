"""Held-out rows whose class a fold never trained on are scored as scikit-learn scores
them (accuracy: errors), left out of the per-epoch curves with a warning."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.model_selection import cross_validate as sk_cross_validate

import nncv
from nncv import NNClassifier

X, y = nncv.datasets.load("iris")  # sorted by class: 50 rows of each
y = y.copy()
y[0] = 7  # a class of one row: the fold holding it out never trains on it


def classifier() -> NNClassifier:
    return NNClassifier(8, max_epochs=4, random_state=0)


@pytest.mark.parametrize("stack_folds", [True, False])
def test_a_class_missing_from_a_training_fold_scores_as_in_scikit_learn(stack_folds):
    cv = [(np.arange(1, 150), np.arange(0, 30)), (np.arange(30, 150), np.arange(0, 30))]
    with pytest.warns(UserWarning, match="1 of 30 held-out rows have a class"):
        result = nncv.cross_validate(classifier(), X, y, cv=cv, stack_folds=stack_folds)
    expected = sk_cross_validate(classifier(), X, y, cv=cv)["test_score"]
    np.testing.assert_array_equal(result["test_score"], expected)
    assert np.isfinite(result.curves["val_score"]).all()
    assert np.isfinite(result.curves["val_loss"]).all()


def test_held_out_rows_all_of_an_unknown_class_give_nan_curves_and_a_zero_score():
    cv = [(np.arange(1, 100), np.arange(100, 150))]
    with pytest.warns(UserWarning, match="50 of 50 held-out rows"):
        result = nncv.cross_validate(classifier(), X, y, cv=cv)
    assert result["test_score"][0] == 0.0
    assert result.curves["val_score"].isna().all()


def test_a_study_over_data_with_a_rare_class_completes():
    with pytest.warns(UserWarning, match="held-out rows have a class"):
        result = nncv.tune(
            X, y, space={"max_epochs": [3]}, n_trials=2, cv=3, random_state=0, refit=False
        )
    assert np.isfinite(result.best_value)
