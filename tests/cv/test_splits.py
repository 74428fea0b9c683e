"""make_splits refuses splits that do not index the data, naming the fold and the problem."""

from __future__ import annotations

import numpy as np
import pytest

import nncv
from nncv import NNClassifier
from nncv.cv.splits import make_splits
from nncv.exceptions import CVSetupError

X = np.random.default_rng(0).normal(size=(20, 3))
y = np.arange(20) % 2


@pytest.mark.parametrize(
    ("split", "message"),
    [
        ((np.arange(10), np.arange(15, 25)), r"fold 0's test rows hold indices outside 0\.\.19"),
        ((np.arange(-3, 10), np.arange(10, 20)), r"fold 0's training rows hold indices outside"),
        ((np.arange(10.0), np.arange(10, 20)), r"training rows must be integer row indices"),
        ((np.arange(10), np.ones((2, 5), int)), r"test rows must be a 1-d array"),
        ((np.ones(7, bool), np.arange(10, 20)), r"boolean mask of shape \(7,\)"),
    ],
)
def test_a_split_that_does_not_index_the_data_is_refused(split, message):
    with pytest.raises(CVSetupError, match=message):
        make_splits([split], X, y, estimator=NNClassifier(), shuffle_seed=None)


def test_boolean_masks_are_taken_as_the_rows_they_select():
    train = np.arange(20) < 12
    splits = make_splits([(train, ~train)], X, y, estimator=NNClassifier(), shuffle_seed=None)
    assert splits[0][0].dtype == bool and np.array_equal(splits[0][0], train)
    np.testing.assert_array_equal(splits[0][1], np.arange(12, 20))


def test_cross_validate_refuses_out_of_range_rows_instead_of_scoring_nan():
    with pytest.raises(CVSetupError, match="outside"):
        nncv.cross_validate(NNClassifier(4, max_epochs=1), X, y, cv=[(np.arange(10), [30])])
