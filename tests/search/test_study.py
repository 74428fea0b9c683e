"""Study bookkeeping: seeds, data fingerprints, and fold splits stored on the study."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.model_selection import KFold, ShuffleSplit

from nncv import NNClassifier, NNRegressor
from nncv.cv import splits as cv_splits
from nncv.cv.splits import derive_seed as fold_seed
from nncv.search._study import (
    decode_splits,
    encode_splits,
    fingerprint_data,
    sampler_seed,
    split_seed,
)


def make_splits(cv, X, y, groups, *, classifier, seed):
    """A study's splits: nncv.cv.splits.make_splits shuffled with the study's split seed."""
    estimator = NNClassifier() if classifier else NNRegressor()
    splits = cv_splits.make_splits(
        cv, X, y, estimator=estimator, groups=groups, shuffle_seed=split_seed(seed), compact=False
    )
    return [(np.sort(train), np.sort(test)) for train, test in splits]


def test_fold_seed_is_the_documented_seed_sequence():
    for study_seed, trial, fold in [(0, 0, 0), (123, 7, 4), (2**32 - 1, 10_000, 9)]:
        expected = np.random.SeedSequence([study_seed, trial, fold]).generate_state(1)[0]
        assert fold_seed(study_seed, trial, fold) == int(expected)
    seeds = {fold_seed(1, t, f) for t in range(20) for f in range(5)}
    assert len(seeds) == 100


def test_sampler_seed_moves_on_with_the_study_and_the_worker():
    assert sampler_seed(1, 0, 0) == sampler_seed(1, 0, 0)
    assert len({sampler_seed(1, n, w) for n in range(5) for w in range(3)}) == 15


def test_data_fingerprint_sees_any_change():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(30, 3)), rng.integers(0, 2, 30)
    w = np.ones(30)
    base = fingerprint_data(X, y, w)
    assert base == fingerprint_data(X.copy(), y.copy(), w.copy())
    X2 = X.copy()
    X2[5, 1] += 1e-12
    w2 = w.copy()
    w2[0] = 2
    assert len({base, fingerprint_data(X2, y, w), fingerprint_data(X, y, w2)}) == 3
    assert fingerprint_data(X, y) != fingerprint_data(X.astype(np.float32), y)
    assert fingerprint_data(X, y) != fingerprint_data(X[:-1], y[:-1])
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    renamed = frame.rename(columns={"c": "d"})
    assert fingerprint_data(frame, y) != fingerprint_data(renamed, y)
    labels = np.array(["cat", "dog"] * 15, dtype=object)
    assert fingerprint_data(X, labels) != fingerprint_data(X, labels[::-1])


@settings(max_examples=40, deadline=None)
@given(
    n_samples=st.integers(4, 3000),
    n_splits=st.integers(2, 4),
    seed=st.integers(0, 2**32 - 1),
)
def test_splits_survive_encoding(n_samples, n_splits, seed):
    splits = list(KFold(n_splits, shuffle=True, random_state=seed).split(np.zeros(n_samples)))
    decoded = decode_splits(encode_splits(splits, n_samples))
    assert len(decoded) == n_splits
    for (train, test), (train2, test2) in zip(splits, decoded, strict=True):
        np.testing.assert_array_equal(np.sort(train), train2)
        np.testing.assert_array_equal(np.sort(test), test2)


def test_encoding_is_compact_for_large_data():
    splits = list(KFold(5, shuffle=True, random_state=0).split(np.zeros(100_000)))
    record = encode_splits(splits, 100_000)
    size = sum(len(f["train"]) + len(f["test"]) for f in record["folds"])
    assert size < 200_000  # under 2 bytes per sample for 5 folds × 2 sides


def test_int_cv_is_shuffled_stratified_and_fixed_by_the_seed():
    y = np.repeat([0, 1, 2], 20)
    X = np.zeros((60, 1))
    a = make_splits(3, X, y, None, classifier=True, seed=5)
    b = make_splits(3, X, y, None, classifier=True, seed=5)
    c = make_splits(3, X, y, None, classifier=True, seed=6)
    for (train_a, test_a), (train_b, test_b) in zip(a, b, strict=True):
        np.testing.assert_array_equal(train_a, train_b)
        np.testing.assert_array_equal(test_a, test_b)
    assert any(not np.array_equal(x[1], z[1]) for x, z in zip(a, c, strict=True))
    for _, test in a:
        assert set(np.bincount(y[test], minlength=3).tolist()) <= {6, 7}  # stratified
    # Shuffled: the first test fold is not the first third of the rows.
    assert not np.array_equal(a[0][1], np.arange(20))


def test_splitter_objects_are_used_as_given():
    X = np.zeros((40, 1))
    splitter = ShuffleSplit(n_splits=3, test_size=0.25, random_state=0)
    splits = make_splits(splitter, X, np.arange(40), None, classifier=False, seed=0)
    expected = list(splitter.split(X))
    for (train, test), (train2, test2) in zip(splits, expected, strict=True):
        np.testing.assert_array_equal(train, np.sort(train2))
        np.testing.assert_array_equal(test, np.sort(test2))
