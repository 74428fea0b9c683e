"""Targets encoded without the binarizer's overhead equal ``LabelBinarizer``'s encoding."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.preprocessing import LabelBinarizer

from nncv import NNClassifier
from nncv.estimators import _one_hot

RNG = np.random.default_rng(0)


@pytest.mark.parametrize(
    "y",
    [
        RNG.integers(0, 5, 60),
        RNG.integers(3, 5, 60),  # binary: one column
        RNG.integers(0, 4, 60).astype(np.uint8),
        RNG.random(40) > 0.5,
        np.array([1.0, 2.0, -3.0, 1.0, 2.0]),
        np.array(["cat", "dog", "emu", "dog"]),
        np.array(["no", "yes", "yes"]),
    ],
    ids=["multiclass", "binary", "uint8", "bool", "float", "strings", "binary-strings"],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_one_hot_equals_the_label_binarizer(y, dtype):
    expected = LabelBinarizer().fit(y).transform(y).astype(dtype)
    encoded = _one_hot(y, np.unique(y), dtype)
    assert encoded.dtype == dtype
    assert encoded.shape == expected.shape
    assert np.array_equal(encoded, expected)


@pytest.mark.parametrize(
    ("y", "classes"),
    [
        (np.array([1, 7]), np.array([1, 2, 3])),  # an unknown label
        (np.array([9, 1]), np.array([1, 2, 3])),  # past the last class
        (np.array([1.0, np.nan]), np.array([1.0, 2.0])),
        (np.array([1, 2]), np.array(["1", "2"])),  # mixed kinds
        (np.array([1, "a"], dtype=object), np.array([1, "a"], dtype=object)),
        (np.eye(3, dtype=int), np.array([0, 1])),
    ],
)
def test_one_hot_leaves_the_rest_to_the_binarizer(y, classes):
    assert _one_hot(y, classes, np.float32) is None


def test_classifier_encodings_and_errors_are_unchanged():
    X = RNG.normal(size=(30, 3))
    y = np.array(["a", "b", "c"] * 10)
    net = NNClassifier(4, max_epochs=1, random_state=0).fit(X, y)
    expected = LabelBinarizer().fit(y).transform(y[:7])
    assert np.array_equal(net._encode_targets(y[:7], reset=False), expected)
    with pytest.raises(ValueError, match=r"not seen in the first fit: \['z'\]"):
        net._encode_targets(np.array(["a", "z"]), reset=False)


@pytest.mark.parametrize(
    "y",
    [RNG.integers(0, 4, 30), RNG.integers(5, 7, 30), RNG.random(30) > 0.5],
    ids=["multiclass", "binary", "bool"],
)
def test_plain_labels_fit_as_the_checked_path(y):
    X = RNG.normal(size=(len(y), 3))
    plain = NNClassifier(4, max_epochs=1, random_state=0)
    checked = NNClassifier(4, max_epochs=1, random_state=0)  # a list takes sklearn's checks
    encoded = plain._encode_targets(y, reset=True)
    assert np.array_equal(encoded, checked._encode_targets(y.tolist(), reset=True))
    assert np.array_equal(plain.classes_, checked.classes_)
    assert plain.classes_.dtype == checked.classes_.dtype
    assert plain._target_type == checked._target_type
    # another kind of labels later goes through the binarizer, made when needed
    later = plain.classes_[[1, 0, 1]].astype(float)
    expected = LabelBinarizer().fit(y).transform(later)
    assert np.array_equal(plain._encode_targets(later, reset=False), expected)
    plain.fit(X, y)
    assert np.array_equal(plain.predict_proba(X), checked.fit(X, y.tolist()).predict_proba(X))


def test_one_plain_class_is_refused_as_before():
    with pytest.raises(ValueError, match=r"only one class \(np.int64\(3\)\)"):
        NNClassifier(max_epochs=1).fit(RNG.normal(size=(5, 2)), np.full(5, 3))
