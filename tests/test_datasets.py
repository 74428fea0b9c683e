"""nncv.datasets: the NNFS spiral, the bundled scikit-learn sets, CSV/Parquet tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn import datasets as sk_datasets

from nncv import datasets


# --------------------------------------------------------------------------------- spiral
def test_spiral_shape_labels_and_dtypes():
    X, y = datasets.spiral(100, 3, random_state=0)
    assert X.shape == (300, 2) and X.dtype == np.float64
    assert y.shape == (300,) and y.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(y), [100, 100, 100])
    np.testing.assert_array_equal(y, np.repeat([0, 1, 2], 100))  # grouped by class, as NNFS


def test_spiral_seeding():
    first, _ = datasets.spiral(50, 4, random_state=7)
    again, _ = datasets.spiral(50, 4, random_state=7)
    other, _ = datasets.spiral(50, 4, random_state=8)
    from_generator, _ = datasets.spiral(50, 4, random_state=np.random.default_rng(7))
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(first, from_generator)
    assert not np.allclose(first, other)


def test_spiral_without_noise_is_the_nnfs_formula():
    """``r = linspace(0, 1, n)``, ``t = linspace(4k, 4(k+1), n)``, ``r·(sin 2.5t, cos 2.5t)``."""
    n, k = 40, 3
    X, y = datasets.spiral(n, k, noise=0.0, random_state=0)
    for label in range(k):
        r = np.linspace(0.0, 1.0, n)
        t = np.linspace(label * 4, (label + 1) * 4, n)
        expected = np.column_stack([r * np.sin(t * 2.5), r * np.cos(t * 2.5)])
        np.testing.assert_allclose(X[y == label], expected, rtol=1e-12, atol=1e-15)


def test_spiral_noise_is_angular_with_the_given_std():
    """The noise moves points along their circle (radius unchanged) by ``noise·N(0, 1)`` in t."""
    n, k, noise = 2_000, 3, 0.2
    X, y = datasets.spiral(n, k, noise=noise, random_state=1)
    clean, _ = datasets.spiral(n, k, noise=0.0)
    np.testing.assert_allclose(np.hypot(X[:, 0], X[:, 1]), np.tile(np.linspace(0, 1, n), k))
    angle = np.arctan2(X[:, 0], X[:, 1])
    clean_angle = np.arctan2(clean[:, 0], clean[:, 1])
    shift = np.angle(np.exp(1j * (angle - clean_angle)))[np.tile(np.arange(n), k) > 0] / 2.5
    assert shift.std() == pytest.approx(noise, rel=0.05)
    assert abs(shift.mean()) < 0.02


@pytest.mark.parametrize(("n_per_class", "n_classes"), [(0, 3), (10, 0), (-1, 2)])
def test_spiral_rejects_empty_sizes(n_per_class, n_classes):
    with pytest.raises(ValueError, match="n_per_class >= 1 and n_classes >= 1"):
        datasets.spiral(n_per_class, n_classes)


# ---------------------------------------------------------------------------------- load
@pytest.mark.parametrize("name", ["digits", "breast_cancer", "iris", "wine", "diabetes"])
def test_load_bundled_scikit_learn_sets(name):
    X, y = datasets.load(name)
    X_expected, y_expected = getattr(sk_datasets, f"load_{name}")(return_X_y=True)
    np.testing.assert_array_equal(X, X_expected)
    np.testing.assert_array_equal(y, y_expected)


def test_load_spiral():
    X, y = datasets.load("spiral")
    assert X.shape == (3000, 2)
    X_expected, y_expected = datasets.spiral(1000, 3, random_state=0)
    np.testing.assert_array_equal(X, X_expected)
    np.testing.assert_array_equal(y, y_expected)


def test_load_unknown_name_lists_the_choices():
    with pytest.raises(ValueError, match="unknown data set 'mnist'; choose one of: .*digits"):
        datasets.load("mnist")


# ---------------------------------------------------------------------------- read_table
@pytest.fixture
def frame():
    return pd.DataFrame(
        {"height": [1.5, 1.7, 1.8], "weight": [50.0, 70.0, 80.5], "label": ["a", "b", "a"]}
    )


@pytest.mark.parametrize("name", ["table.csv", "table.csv.gz", "table.parquet", "table.pq"])
def test_read_table_round_trip(tmp_path, frame, name):
    path = tmp_path / name
    if ".csv" in name:
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    X, y = datasets.read_table(path, "label")
    pd.testing.assert_frame_equal(X, frame[["height", "weight"]])
    assert list(y) == ["a", "b", "a"] and y.name == "label"
    X_from_str, _ = datasets.read_table(str(path), "label")
    pd.testing.assert_frame_equal(X_from_str, X)


def test_read_table_tsv(tmp_path, frame):
    path = tmp_path / "table.tsv"
    frame.to_csv(path, sep="\t", index=False)
    X, _ = datasets.read_table(path, "label")
    assert list(X.columns) == ["height", "weight"]


def test_read_table_missing_target_names_the_columns(tmp_path, frame):
    path = tmp_path / "table.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(ValueError, match=r"target column 'species' not in .*\['height', 'weight'"):
        datasets.read_table(path, "species")


def test_read_table_unknown_format(tmp_path):
    path = tmp_path / "table.xlsx"
    path.write_bytes(b"not a table")
    with pytest.raises(ValueError, match="cannot tell the format"):
        datasets.read_table(path, "label")
